"""The studio's page in a real headless Chromium (Debian's chromium + chromium-driver, which
.ci/run installs), against a real ``impasto serve``: the bundled pair stylised with the image
forming, the gallery, compare, run again, cancel, delete, a bad upload's message.

Skipped where Chromium is missing, except in CI (CI=true), where a missing browser fails.
Set IMPASTO_STUDIO_SHOTS=FOLDER to keep a screenshot of each view (the README's come from here).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from studio_support import loopback_only, running_server, wait_for  # noqa: F401

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (BROWSER and DRIVER):
    if os.environ.get("CI"):
        pytest.fail("CI needs chromium and chromedriver (apt-get install chromium "
                    "chromium-driver)", pytrace=False)  # fmt: skip
    pytest.skip("no chromium + chromedriver here (apt-get install chromium chromium-driver)",
                allow_module_level=True)  # fmt: skip
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the dev extra) missing")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

QUICK = {"size": "64", "steps": "30"}
"""What the tests type in the form: the bundled pair at 64 px with the tiny backbone."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("studio") / "data") as running:
        yield running


@pytest.fixture
def page(server, loopback_only):  # noqa: F811
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1440,1000",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)  # fmt: skip
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium look for drivers online
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    driver.set_page_load_timeout(30)
    driver.get(server.url + "/")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#method option"), 20, "the form")
    yield driver
    driver.quit()


def shot(driver, name: str) -> None:
    folder = os.environ.get("IMPASTO_STUDIO_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def one(driver, css: str):
    return driver.find_element(By.CSS_SELECTOR, css)


def setting(driver, name: str, value: str) -> None:
    field = one(driver, f'#settings [name="opt-{name}"]')
    if not field.is_displayed():  # an advanced setting: open the details first
        one(driver, "#advanced summary").click()
    if field.tag_name == "select":
        Select(field).select_by_value(value)
    else:
        field.clear()
        field.send_keys(value)


def quick_settings(driver, **more: str) -> None:
    for name, value in {**QUICK, **more}.items():
        setting(driver, name, value)
    setting(driver, "backbone", "tiny")


def loaded(driver, css: str) -> bool:
    script = (
        "const e = document.querySelector(arguments[0]); return !!e && "
        "(e.tagName === 'VIDEO' ? e.readyState > 0 : e.complete && e.naturalWidth > 0);"
    )
    return driver.execute_script(script, css)


def cards(driver) -> dict[str, str]:
    """The gallery as {job id: state}, read in one go (cards are redrawn as events come)."""
    return driver.execute_script(
        "const out = {}; for (const c of document.querySelectorAll('#gallery .job-card')) "
        "out[c.dataset.job] = c.dataset.state; return out;"
    )


def start_job(driver) -> str:
    before = set(cards(driver))
    one(driver, "#start").click()
    new = wait_for(lambda: set(cards(driver)) - before, 20, "the new job's card")
    return new.pop()


def state_of(driver, job: str) -> str | None:
    return cards(driver).get(job)


def click(driver, css: str) -> None:
    """Click the element ``css`` finds now (not one found before a redraw)."""
    driver.execute_script("document.querySelector(arguments[0]).click()", css)


def test_a_newcomer_stylises_the_bundled_pair_and_sees_it_form(page, server):
    assert page.find_elements(By.CSS_SELECTOR, "#photo-chosen img"), "the sample photo is chosen"
    assert len(page.find_elements(By.CSS_SELECTOR, "#paintings-chosen img")) == 1
    assert Select(one(page, "#method")).first_selected_option.get_attribute("value") == "gatys"
    quick_settings(page, steps="120")
    job = start_job(page)
    wait_for(lambda: loaded(page, "#preview"), 60, "the image forming in #preview")
    wait_for(lambda: float(one(page, "#progress").get_attribute("value") or 0) > 0, 30,
             "the progress bar to move")  # fmt: skip
    assert one(page, "#stage").text.strip()
    shot(page, "progress")
    wait_for(lambda: state_of(page, job) == "done", 120, "the job to be done in the gallery")
    wait_for(lambda: loaded(page, "#result"), 20, "the result in the current panel")
    assert server.job(job)["state"] == "done"
    wait_for(lambda: loaded(page, f'.job-card[data-job="{job}"] .thumb'), 20, "the thumbnail")
    link = page.execute_script("return document.querySelector(arguments[0]).href",
                               f'.job-card[data-job="{job}"] a.download')  # fmt: skip
    assert link.endswith(f"/api/jobs/{job}/result")
    shot(page, "result")


def test_compare_two_results_side_by_side_with_a_slider(page, server):
    done = []
    for weight in ("100", "100000"):
        quick_settings(page, style_weight=weight)
        done.append(start_job(page))
    for job in done:
        wait_for(lambda job=job: state_of(page, job) == "done", 120, f"job {job}")
    for job in done:
        click(page, f'.job-card[data-job="{job}"] input.compare-pick')
    one(page, "#compare-open").click()
    wait_for(lambda: one(page, "#compare").is_displayed(), 10, "the compare view")
    items = page.find_elements(By.CSS_SELECTOR, "#compare .compare-item")
    assert len(items) == 2
    wait_for(lambda: all(loaded(page, f"#compare .compare-item:nth-of-type({i}) img")
                         for i in (1, 2)), 20, "both results")  # fmt: skip
    texts = [item.text for item in items]  # each result shows its settings
    assert all("style weight" in text for text in texts) and texts[0] != texts[1]
    assert one(page, "#compare-slider").is_displayed()
    shot(page, "compare")
    one(page, "#compare-close").click()


def test_run_again_fills_the_form_with_that_jobs_settings(page, server):
    quick_settings(page, steps="17")
    job = start_job(page)
    wait_for(lambda: state_of(page, job) in ("done", "failed"), 120, "the job to end")
    setting(page, "steps", "99")
    click(page, f'.job-card[data-job="{job}"] .again')
    steps = '#settings [name="opt-steps"]'  # the form is built anew: find the field each time
    wait_for(lambda: one(page, steps).get_attribute("value") == "17", 10, "steps 17 in the form")


def test_cancel_a_running_job_from_the_page(page, server):
    quick_settings(page, steps="20000", size="96")
    job = start_job(page)
    wait_for(lambda: state_of(page, job) == "running", 60, "the job to run")
    one(page, "#cancel").click()
    wait_for(lambda: state_of(page, job) == "cancelled", 20, "the card to say cancelled")
    assert server.job(job)["state"] == "cancelled"


def test_delete_removes_the_card_and_the_job(page, server):
    finished = [job for job, state in cards(page).items() if state in ("done", "cancelled")]
    assert finished, "earlier tests left finished jobs"
    job = finished[0]
    click(page, f'.job-card[data-job="{job}"] .delete')
    alerts = page.switch_to
    try:
        alerts.alert.accept()  # a confirmation, if the page asks
    except Exception:
        pass
    wait_for(lambda: state_of(page, job) is None, 10, "the card to go")
    assert server.http.get(f"/api/jobs/{job}").status_code == 404


def test_a_bad_upload_shows_one_clear_message(page, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_text("this is not a picture")
    one(page, "#photo-file").send_keys(str(fake))
    message = wait_for(lambda: one(page, "#message").text.strip(), 10, "the message")
    assert "holiday.png" in message and "not an image" in message
    shot(page, "bad-upload")


def test_the_train_view(page, server):
    tab = page.find_elements(By.CSS_SELECTOR, "[data-view='train'], #train-tab, a[href='#train']")
    if tab:
        tab[0].click()
    kinds = [o.get_attribute("value") for o in Select(one(page, "#train-kind")).options]
    assert {"fast", "decoder"} <= set(kinds)
    shot(page, "train")


def test_upload_a_photo_and_a_painting_and_stylise_them(page, server, tmp_path):
    from PIL import Image

    photo, painting = tmp_path / "my photo.png", tmp_path / "my painting.jpg"
    Image.new("RGB", (90, 60), (30, 120, 200)).save(photo)
    Image.effect_noise((64, 64), 80).convert("RGB").save(painting)
    one(page, "#photo-file").send_keys(str(photo))
    wait_for(lambda: "my photo.png" in one(page, "#photo-chosen").text
             or page.find_elements(By.CSS_SELECTOR, "#photo-chosen img[src*='/api/uploads/']"),
             20, "the uploaded photo in the form")  # fmt: skip
    for remove in page.find_elements(By.CSS_SELECTOR, "#paintings-chosen .remove"):
        remove.click()  # drop the sample painting
    one(page, "#painting-file").send_keys(str(painting))
    wait_for(lambda: page.find_elements(By.CSS_SELECTOR,
                                        "#paintings-chosen img[src*='/api/uploads/']"),
             20, "the uploaded painting in the form")  # fmt: skip
    assert len(page.find_elements(By.CSS_SELECTOR, "#paintings-chosen img")) == 1
    quick_settings(page)
    job = start_job(page)
    wait_for(lambda: state_of(page, job) == "done", 120, "the job on the uploads")
    request = server.job(job)["request"]
    assert request["content"].startswith("u-") and request["styles"][0].startswith("u-")
    assert one(page, "#message").text.strip() == ""
