#!/usr/bin/env python
"""Speed benchmark of video stylisation (impasto.frames): seconds per frame of every method on
a 720p clip, with temporal consistency off (plain per-frame output: the reference) and on
(the default strength), measured in the same run, interleaved, on the same frames.

The clip: the first ``--frames`` frames of ../shared/data/video/davis_bike_packing (a real
camera clip, 512x270) resized to 1280x720 and written as PNG frames into a temporary folder;
each run stylises that folder into an .mp4 (decode, method, consistency, encode: the whole
job), and the figure is the median over ``--rounds`` of the job's seconds per frame.

Prints one JSON document (notes on stderr; ``--out FILE`` also writes it). Per method:
``off_s_per_frame``, ``on_s_per_frame``, ``overhead`` (on / off - 1) and
``ratio_vs_reference`` (off / on: > 1 would be faster than the reference). The target from the
issue: the feed-forward post-process adds at most 30% to the fast method's time at 720p
(``meets_target`` on the fast rows). Gatys runs with fewer steps than its default (``--gatys-
steps``): its consistency is a temporal loss, not a post-process, and its cost is in its steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import git_commit, machine_info, note  # noqa: E402
from report import to_json, write_atomic  # noqa: E402

from impasto import frames, images, pipeline  # noqa: E402
from impasto.temporal import DEFAULT_DESIGN, DEFAULT_STRENGTH  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "video" / "davis_bike_packing"
STYLE = ROOT / "src" / "impasto" / "assets" / "vangogh_bedroom_in_arles.jpg"
OVERHEAD_TARGET = 0.30  # the fast method, 720p


def rows(gatys_steps: int) -> list[tuple[str, str, dict]]:
    """(label, method, options) of each measured setting, every output at 1280 px wide."""
    return [
        ("fast vangogh-bedroom-rt", "fast", {"model": "vangogh-bedroom-rt"}),
        ("fast vangogh-bedroom", "fast", {"model": "vangogh-bedroom"}),
        ("adain", "adain", {"size": 1280}),
        ("wct", "wct", {"size": 1280}),
        ("color", "color", {}),
        (f"gatys ({gatys_steps} steps)", "gatys", {"size": 1280, "steps": gatys_steps}),
    ]


def make_clip(folder: Path, count: int, size: tuple[int, int]) -> Path:
    clip = folder / "clip720"
    clip.mkdir()
    for path in sorted(CLIP.glob("*.jpg"))[:count]:
        frame = images.load_image(path).rgb
        frame = F.interpolate(frame, size=size, mode="bicubic", align_corners=False)
        images.save_image(frame.clamp(0, 1), clip / f"{path.stem}.png")
    return clip


def job_seconds(prepared, clip_folder: Path, out: Path, temporal: float) -> float:
    clip = frames.open_clip(clip_folder)
    target = frames.clip_target(out, clip)
    started = time.perf_counter()
    report = frames.stylize_clip(prepared, clip, target, temporal=temporal)
    seconds = time.perf_counter() - started
    out.unlink()
    return seconds / report.frames


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gatys-steps", type=int, default=20)
    parser.add_argument("--only", nargs="+", help="labels (or their first word) to measure")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    document = {"benchmark": "bench_video", "machine": machine_info(), "commit": git_commit(),
                "clip": f"{CLIP.name}, first {args.frames} frames, resized to 1280x720",
                "temporal": {"strength": DEFAULT_STRENGTH, "design": DEFAULT_DESIGN},
                "results": []}  # fmt: skip
    style = images.load_image(STYLE)
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        clip = make_clip(folder, args.frames, (720, 1280))
        for label, method, options in rows(args.gatys_steps):
            if args.only and label not in args.only and label.split()[0] not in args.only:
                continue
            note(f"{label}: {args.rounds} rounds of {args.frames} frames, off and on")
            takes_style = method != "fast"
            config = pipeline.make_config(method, options, 1 if takes_style else 0)
            prepared = pipeline.prepare(method, config, [style] if takes_style else [])
            job_seconds(prepared, clip, folder / "warm.mp4", 0.0)  # warm-up
            samples: dict[str, list[float]] = {"off": [], "on": []}
            for index in range(args.rounds):
                order = ["off", "on"] if index % 2 == 0 else ["on", "off"]
                for name in order:
                    strength = DEFAULT_STRENGTH if name == "on" else 0.0
                    samples[name].append(job_seconds(prepared, clip, folder / "x.mp4", strength))
            off, on = statistics.median(samples["off"]), statistics.median(samples["on"])
            row = {"label": label, "method": method, "options": options,
                   "off_s_per_frame": round(off, 4), "on_s_per_frame": round(on, 4),
                   "overhead": round(on / off - 1, 4), "ratio_vs_reference": round(off / on, 4),
                   "samples": samples}  # fmt: skip
            if method == "fast":
                row["target_overhead"] = OVERHEAD_TARGET
                row["meets_target"] = on / off - 1 <= OVERHEAD_TARGET
            document["results"].append(row)
            note(f"  off {off:.3f} s/frame, on {on:.3f} s/frame: +{(on / off - 1) * 100:.0f}%")
            if args.out:
                write_atomic(args.out, to_json(document))
    print(to_json(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
