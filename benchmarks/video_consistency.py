#!/usr/bin/env python
"""Temporal consistency of every method on the project's two clips: each clip stylised frame
by frame (``--temporal off``, the reference) and with consistency on (the default strength and
design, or ``--designs``), both scored by ``impasto.metrics.evaluate_clip``: the warping error
(OpenCV DIS medium on the input frames, reliable pixels only), and SSIM and the style ratio on
EfficientNet-Lite2 (the network no method trains on), averaged over scored frames.

The issue's bars, checked per clip and method (``meets``): warping error with consistency at
most half the per-frame output's, style ratio within 10% of the per-frame output's.

Honesty note: the post-process of feed-forward methods follows the same flow family (DIS) as
the metric. To show that the drop is not an artefact of sharing it, every output is also
scored with an independent flow (OpenCV Farneback, ``cross_check``), which no part of impasto
uses to make frames.

Prints one JSON document (``--out FILE`` also writes it), a Markdown table on stderr, and with
``--strip FILE`` a picture: four frames of one clip and method, per-frame above, consistent
below (``--strip-clip``, ``--strip-method``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import git_commit, machine_info, note  # noqa: E402
from report import to_json, write_atomic  # noqa: E402

from impasto import frames, images, pipeline  # noqa: E402
from impasto.metrics import evaluate_clip  # noqa: E402
from impasto.temporal import DEFAULT_DESIGN, DEFAULT_STRENGTH  # noqa: E402
from impasto.video import list_frames  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "video"
STYLE = ROOT / "src" / "impasto" / "assets" / "vangogh_bedroom_in_arles.jpg"
SETTINGS = {  # method -> options (gatys: smaller and shorter than its default, for the CPU)
    "fast": {"model": "vangogh-bedroom-rt"},
    "adain": {},
    "wct": {},
    "color": {},
    "gatys": {"size": 256, "steps": 60},
}


def farneback_error(outputs: list[Path], inputs: list[Path]) -> float:
    """Warping error with OpenCV's Farneback flow and a forward-backward check: the
    cross-check (module docstring)."""
    import cv2
    import numpy as np

    def grey(path, size=None):
        rgb = images.load_image(path).rgb
        if size is not None:
            rgb = torch.nn.functional.interpolate(rgb, size=size, mode="area")
        return rgb, (rgb[0].mean(0) * 255).to(torch.uint8).numpy()

    errors = []
    previous = None
    for out_path, in_path in zip(outputs, inputs, strict=True):
        out = images.load_image(out_path).rgb[0].permute(1, 2, 0).numpy()
        _, g = grey(in_path, out.shape[:2])
        if previous is not None:
            prev_out, prev_g = previous
            args = (None, 0.5, 4, 21, 5, 7, 1.5, 0)
            back = cv2.calcOpticalFlowFarneback(g, prev_g, *args)
            forth = cv2.calcOpticalFlowFarneback(prev_g, g, *args)
            h, w = g.shape
            xs = (np.arange(w)[None, :] + back[..., 0]).astype(np.float32)
            ys = (np.arange(h)[:, None] + back[..., 1]).astype(np.float32)
            forth_there = cv2.remap(forth, xs, ys, cv2.INTER_LINEAR)
            total = ((back + forth_there) ** 2).sum(-1)
            scale = (back**2).sum(-1) + (forth_there**2).sum(-1)
            inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
            mask = (total <= 0.01 * scale + 0.5) & inside
            warped = cv2.remap(prev_out, xs, ys, cv2.INTER_LINEAR)
            squared = ((out - warped) ** 2).mean(-1)
            errors.append(float(squared[mask].mean()))
        previous = (out, g)
    return sum(errors) / len(errors)


def run_one(method: str, clip_folder: Path, out: Path, strength: float, design: str) -> Path:
    style = images.load_image(STYLE)
    takes_style = method != "fast"
    config = pipeline.make_config(method, SETTINGS[method], 1 if takes_style else 0)
    prepared = pipeline.prepare(method, config, [style] if takes_style else [])
    clip = frames.open_clip(clip_folder)
    frames.stylize_clip(prepared, clip, frames.clip_target(out, clip), temporal=strength,
                        design=design)  # fmt: skip
    return out


def score(out: Path, clip_folder: Path) -> dict:
    report = evaluate_clip(out, clip_folder, STYLE, backbone="efficientnet-lite2",
                           metrics=["ssim", "style_ratio"], references=False)  # fmt: skip
    values = report.to_dict()
    return {
        "ssim": values["metrics"]["ssim"],
        "style_ratio": values["metrics"]["style_ratio"],
        "warping_error": values["temporal"]["warping_error"],
        "input_warping_error": values["temporal"]["input_warping_error"],
        "cross_check_warping_error": farneback_error(list_frames(out), list_frames(clip_folder)),
    }


def strip(folder: Path, clip: str, method: str, path: Path) -> None:
    """Four frames: per-frame (top), consistent (bottom)."""
    rows = []
    for name in ("off", "on"):
        files = list_frames(folder / f"{clip}-{method}-{name}")
        picks = [files[i * (len(files) - 1) // 6 + 1] for i in range(4)]
        rows.append(torch.cat([images.load_image(p).rgb for p in picks], dim=-1))
    gap = torch.ones(1, 3, 6, rows[0].shape[-1])
    images.save_image(torch.cat([rows[0], gap, rows[1]], dim=-2), path, quality=88)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(SETTINGS))
    parser.add_argument("--clips", nargs="+", default=["sintel_raft_demo", "davis_bike_packing"])
    parser.add_argument("--designs", nargs="+", default=[DEFAULT_DESIGN])
    parser.add_argument("--strength", type=float, default=DEFAULT_STRENGTH)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--strip", type=Path)
    parser.add_argument("--strip-clip", default="davis_bike_packing")
    parser.add_argument("--strip-method", default="fast")
    parser.add_argument("--keep", type=Path, help="keep the stylised frames in this folder")
    parser.add_argument("--gatys-size", type=int, default=SETTINGS["gatys"]["size"])
    parser.add_argument("--gatys-steps", type=int, default=SETTINGS["gatys"]["steps"])
    args = parser.parse_args(argv)
    SETTINGS["gatys"] = {"size": args.gatys_size, "steps": args.gatys_steps}
    document = {"benchmark": "video_consistency", "machine": machine_info(),
                "commit": git_commit(), "style": STYLE.name, "strength": args.strength,
                "settings": SETTINGS, "results": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        for clip in args.clips:
            for method in args.methods:
                source = CLIPS / clip
                note(f"{clip} / {method}: per-frame")
                off = score(run_one(method, source, folder / f"{clip}-{method}-off", 0.0,
                                    DEFAULT_DESIGN), source)  # fmt: skip
                for design in args.designs:
                    note(f"{clip} / {method}: consistent ({design})")
                    name = "on" if design == DEFAULT_DESIGN else f"on-{design}"
                    out = run_one(method, source, folder / f"{clip}-{method}-{name}",
                                  args.strength, design)  # fmt: skip
                    on = score(out, source)
                    row = {"clip": clip, "method": method, "design": design, "off": off,
                           "on": on,
                           "warping_ratio": on["warping_error"] / off["warping_error"],
                           "cross_check_ratio": on["cross_check_warping_error"]
                           / off["cross_check_warping_error"],
                           "style_change": on["style_ratio"] / off["style_ratio"] - 1}  # fmt: skip
                    row["meets"] = row["warping_ratio"] <= 0.5 and row["style_change"] <= 0.1
                    document["results"].append(row)
                    note(f"  warping x{row['warping_ratio']:.2f} (cross-check "
                         f"x{row['cross_check_ratio']:.2f}), style ratio "
                         f"{off['style_ratio']:.3f} -> {on['style_ratio']:.3f}")  # fmt: skip
                    if args.out:
                        write_atomic(args.out, to_json(document))
        if args.strip:
            strip(folder, args.strip_clip, args.strip_method, args.strip)
    print(
        "| clip | method | design | warping error per-frame -> consistent | cross-check | "
        "style ratio | SSIM | meets |\n|---|---|---|---|---|---|---|---|",
        file=sys.stderr,
    )
    for r in document["results"]:
        print(f"| {r['clip']} | {r['method']} | {r['design']} | {r['off']['warping_error']:.5f}"
              f" -> {r['on']['warping_error']:.5f} (x{r['warping_ratio']:.2f}) | "
              f"x{r['cross_check_ratio']:.2f} | {r['off']['style_ratio']:.3f} -> "
              f"{r['on']['style_ratio']:.3f} ({r['style_change'] * 100:+.0f}%) | "
              f"{r['off']['ssim']:.3f} -> {r['on']['ssim']:.3f} | {r['meets']} |",
              file=sys.stderr)  # fmt: skip
    print(to_json(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
