#!/usr/bin/env python
"""Peak memory and time against picture size, for the feed-forward methods: each run is the
real command, ``impasto stylize PHOTO [STYLE] --method M -o OUT`` with the method's defaults,
in a fresh process, so the figure is the whole process's peak resident memory (torch, the
model, reading and writing the picture included), read from the kernel when the child exits
(``os.wait4``'s ru_maxrss).

Sizes are in megapixels (``--sizes``, default 1 4 16 64), 4:3, made from the bundled
washington_monument.jpg enlarged (Lanczos) and written as JPEG (quality 92) into a temporary
folder. Methods (``--methods``): fast (``--model vangogh-bedroom``), adain, wct, photo and
color, the last four with the bundled Van Gogh bedroom as the style image.

The reference, measured in the same run: the same command with tiling turned off
(``impasto.tiling.TILE_PIXELS``, and color's ``BAND_PIXELS``, set above the picture: the
picture goes through whole, as before tiling), where it fits in the memory free (estimated
from the 1 MP run; otherwise skipped and said so). Per run: ``peak_gb``, ``seconds``; per
size and method with a reference: ``memory_ratio`` = untiled peak / tiled peak (> 1: tiling
saves memory) and ``time_ratio`` = untiled seconds / tiled seconds (> 1: tiling is faster).
The color method goes through in bands of rows rather than tiles.

Prints a table on stdout, writes the JSON document to ``--out`` (rewritten after every run);
notes on stderr. ``--quick`` (smoke test): sizes 0.05 and 0.2 MP, fast and adain only.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import git_commit, machine_info, note  # noqa: E402
from report import to_json, write_atomic  # noqa: E402

import impasto  # noqa: E402
from impasto.memory import free_memory_bytes  # noqa: E402

ASSETS = Path(impasto.__file__).resolve().parent / "assets"
PHOTO = ASSETS / "washington_monument.jpg"
STYLE = ASSETS / "vangogh_bedroom_in_arles.jpg"
METHODS = {  # method: the arguments after the photo
    "fast": ["--method", "fast", "--model", "vangogh-bedroom"],
    "adain": [str(STYLE), "--method", "adain"],
    "wct": [str(STYLE), "--method", "wct"],
    "photo": [str(STYLE), "--method", "photo"],
    "color": [str(STYLE), "--method", "color"],
}
CHILD = """import sys
from impasto import tiling
from impasto.cli.main import main
from impasto.methods import color
if sys.argv[1] == "whole":
    tiling.TILE_PIXELS = 10**12
    color.BAND_PIXELS = 10**12
sys.exit(main(sys.argv[2:]))
"""


def make_photo(folder: Path, megapixels: float) -> Path:
    from PIL import Image

    width = round(math.sqrt(megapixels * 1e6 * 4 / 3))
    height = round(width * 3 / 4)
    path = folder / f"photo-{width}x{height}.jpg"
    if not path.exists():
        with Image.open(PHOTO) as photo:
            photo.convert("RGB").resize((width, height), Image.LANCZOS).save(path, quality=92)
    return path


def run(mode: str, photo: Path, method: str, out: Path) -> dict:
    """One command in a fresh process: its peak memory and time, or the error it gave."""
    argv = [sys.executable, "-c", CHILD, mode, "stylize", str(photo), *METHODS[method],
            "-o", str(out), "--quiet", "--max-pixels", "100000000"]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    error = child.stderr.read().decode(errors="replace").strip().splitlines()
    child.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    result = {"peak_gb": round(usage.ru_maxrss / 2**20, 3), "seconds": round(seconds, 2),
              "exit_code": code}  # fmt: skip
    if code != 0:
        result["error"] = error[-1] if error else "no message"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1, 4, 16, 64],
                        help="megapixels (1 4 16 64)")  # fmt: skip
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--no-reference", action="store_true", help="skip the untiled runs")
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument("--out", type=Path, default=None, help="JSON document")
    args = parser.parse_args(argv)
    sizes, methods = args.sizes, args.methods
    if args.quick:
        sizes, methods = [0.05, 0.2], ["fast", "adain"]
    document = {
        "benchmark": "bench_memory",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "commit": git_commit(),
        "settings": {
            "sizes_megapixels": sizes,
            "methods": methods,
            "photo": PHOTO.name,
            "style": STYLE.name,
            "quick": args.quick,
        },  # fmt: skip
        "runs": [],
    }
    print(f"{'method':>7} {'MP':>6} {'tiled GB':>9} {'s':>7} {'whole GB':>9} {'s':>7} "
          f"{'mem x':>6} {'time x':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        per_pixel = {}  # method -> peak bytes per pixel of the smallest untiled run
        for megapixels in sizes:
            photo = make_photo(folder, megapixels)
            for method in methods:
                note(f"{method} at {megapixels} MP")
                entry = {"method": method, "megapixels": megapixels, "file": photo.name}
                entry["tiled"] = run("tiled", photo, method, folder / "out.jpg")
                need = per_pixel.get(method, 0) * megapixels * 1e6
                free = free_memory_bytes() or 0
                if args.no_reference:
                    entry["whole"] = None
                elif need and need > 0.8 * free:
                    entry["whole"] = None
                    entry["whole_skipped"] = (f"would need about {need / 2**30:.0f} GB, "
                                              f"{free / 2**30:.0f} GB free")  # fmt: skip
                else:
                    entry["whole"] = run("whole", photo, method, folder / "out.jpg")
                    if method not in per_pixel and entry["whole"]["exit_code"] == 0:
                        per_pixel[method] = entry["whole"]["peak_gb"] * 2**30 / (megapixels * 1e6)
                tiled, whole = entry["tiled"], entry["whole"]
                if whole and whole["exit_code"] == 0 and tiled["exit_code"] == 0:
                    entry["memory_ratio"] = round(whole["peak_gb"] / tiled["peak_gb"], 2)
                    entry["time_ratio"] = round(whole["seconds"] / tiled["seconds"], 2)
                document["runs"].append(entry)
                if args.out:
                    write_atomic(args.out, to_json(document))
                shown = whole or {"peak_gb": float("nan"), "seconds": float("nan")}
                print(f"{method:>7} {megapixels:>6g} {tiled['peak_gb']:>9.2f} "
                      f"{tiled['seconds']:>7.1f} {shown['peak_gb']:>9.2f} {shown['seconds']:>7.1f} "
                      f"{entry.get('memory_ratio', float('nan')):>6.2f} "
                      f"{entry.get('time_ratio', float('nan')):>6.2f}", flush=True)  # fmt: skip
                if tiled["exit_code"] != 0:
                    note(f"  {method} failed: {tiled.get('error')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
