"""Make the README's screenshots of impasto studio: a real ``impasto serve`` (default backbone,
offline), a headless Chromium (Debian's chromium + chromium-driver, Selenium), the bundled pair.

    .venv/bin/python docs/studio_screenshots.py [--out examples] [--size 256] [--steps 80]

Writes studio_progress.jpg (a Gatys job forming), studio_gallery.jpg (results and their
settings), studio_compare.jpg (two results side by side with the slider) and studio_train.jpg
(the training form). Minutes on a CPU.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def save(driver, path: Path) -> None:
    picture = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    picture.save(path, quality=86, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def setting(driver, name: str, value: str) -> None:
    field = driver.find_element(By.CSS_SELECTOR, f'#settings [name="opt-{name}"]')
    if field.tag_name == "select":
        Select(field).select_by_value(value)
    else:
        field.clear()
        field.send_keys(value)


def cards(driver) -> dict[str, str]:
    return driver.execute_script(
        "const out = {}; for (const c of document.querySelectorAll('#gallery .job-card')) "
        "out[c.dataset.job] = c.dataset.state; return out;"
    )


def start(driver) -> str:
    before = set(cards(driver))
    driver.find_element(By.CSS_SELECTOR, "#start").click()
    return wait(lambda: set(cards(driver)) - before, 20, "the job's card").pop()


def progress_fraction(driver) -> float:
    bar = driver.find_element(By.CSS_SELECTOR, "#progress")
    total = float(bar.get_attribute("max") or 1)
    return float(bar.get_attribute("value") or 0) / total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="examples")
    parser.add_argument("--size", default="256")
    parser.add_argument("--steps", default="80")
    args = parser.parse_args(argv)
    out = Path(args.out)
    data = Path(tempfile.mkdtemp(prefix="impasto-studio-shots-"))
    port = free_port()
    env = {**os.environ, "IMPASTO_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(port),
                               "--data-dir", str(data), "--no-open"], env=env)  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1440,1000",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)  # fmt: skip
    os.environ.setdefault("SE_OFFLINE", "true")
    service = webdriver.ChromeService(shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        wait(lambda: driver.get(f"http://127.0.0.1:{port}/") or
             driver.find_elements(By.CSS_SELECTOR, "#method option"), 60, "the page")  # fmt: skip
        setting(driver, "size", args.size)
        setting(driver, "steps", args.steps)
        first = start(driver)
        wait(lambda: progress_fraction(driver) > 0.55, 600, "the image to form")
        save(driver, out / "studio_progress.jpg")
        wait(lambda: cards(driver).get(first) == "done", 600, "the Gatys job")
        Select(driver.find_element(By.CSS_SELECTOR, "#method")).select_by_value("adain")
        setting(driver, "size", args.size)
        second = start(driver)
        wait(lambda: cards(driver).get(second) == "done", 300, "the AdaIN job")
        driver.execute_script("document.querySelector('#gallery-section').scrollIntoView()")
        time.sleep(1)
        save(driver, out / "studio_gallery.jpg")
        for job in (first, second):
            driver.execute_script("document.querySelector(arguments[0]).click()",
                                  f'.job-card[data-job="{job}"] input.compare-pick')  # fmt: skip
        driver.find_element(By.CSS_SELECTOR, "#compare-open").click()
        time.sleep(2)
        save(driver, out / "studio_compare.jpg")
        driver.find_element(By.CSS_SELECTOR, "#compare-close").click()
        driver.execute_script("document.querySelector('#train').scrollIntoView()")
        time.sleep(1)
        save(driver, out / "studio_train.jpg")
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
