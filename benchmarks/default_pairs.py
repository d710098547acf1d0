#!/usr/bin/env python
"""The Gatys default against candidate settings on the six developer pairs (issue 18, item 1):
docs/defaults.md's before/after.

The pairs are ../shared/data/images, content i with style i in name order (that folder's
SOURCES.md). Each variant (VARIANTS: a name and the GatysConfig fields it changes from today's
defaults) stylises every pair at ``--size`` with ``impasto.methods.gatys.stylize`` on the
offline network (EfficientNet-Lite0) and is scored as the issue scores, by the independent
network (EfficientNet-Lite2) with the result and the photo shrunk to ``--score-size`` (384):

- ``style_ratio``: Gram distance to the painting over the photo's own (lower: more painted);
- ``ssim``: luminance SSIM against the photo (higher: more of the scene kept);
- ``color_ratio``: sliced Wasserstein colour distance to the painting over the photo's own.

``seconds`` is each run's wall time on this machine; the variants of one run share the machine,
so their ratios are comparable. Prints a table of medians, writes every figure to ``--json`` and
a contact sheet (photo, then one column per variant) to ``--sheet``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import git_commit, machine_info, note  # noqa: E402

from impasto.backbones import load_backbone  # noqa: E402
from impasto.images import (  # noqa: E402
    draw_sheet,
    load_image,
    resize_long_side,
    resize_to,
    save_image,  # noqa: E402
)
from impasto.methods.gatys import GatysConfig, stylize  # noqa: E402
from impasto.metrics import color_distance, load_scoring_backbone, ssim, style_ratio  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "data" / "images"
EVALUATOR = "efficientnet-lite2"
# The settings before issue 18 (every scale 200 steps from the photo, content weight 50), today's
# defaults, and the candidates tried on the way (docs/defaults.md), each from the old settings.
BEFORE = {"step_decay": 1.0, "init": "content", "content_weight": 50.0}
VARIANTS: dict[str, dict] = {
    "before": BEFORE,
    "today": {},
    "decay_half": {**BEFORE, "step_decay": 0.5},
    "decay_quarter": {**BEFORE, "step_decay": 0.25},
    "three_half": {**BEFORE, "scales": 3, "step_decay": 0.5},
    "graded_half": {**BEFORE, "init": "graded", "step_decay": 0.5},
    "graded_quarter": {**BEFORE, "init": "graded", "step_decay": 0.25},
    "gq_cw20": {**BEFORE, "init": "graded", "step_decay": 0.25, "content_weight": 20.0},
    "gq_sw3e4": {**BEFORE, "init": "graded", "step_decay": 0.25, "style_weight": 3e4},
}


def pairs(shift: int = 0) -> list[tuple[Path, Path]]:
    """Content i with style i + ``shift`` (mod 6): 0 gives the six developer pairs, any other
    shift six pairs none of the settings were chosen on."""
    contents = sorted((IMAGES / "content").iterdir())
    styles = sorted((IMAGES / "style").iterdir())
    return [(content, styles[(i + shift) % len(styles)]) for i, content in enumerate(contents)]


def scores(image, photo, style, scorer, side: int) -> dict:
    """The issue's three scores of ``image`` (photo's size) at ``side`` px."""
    image, photo = resize_long_side(image, side), resize_long_side(photo, side)
    return {
        "style_ratio": round(style_ratio(image, style, photo, scorer), 4),
        "ssim": round(ssim(image, photo), 4),
        "color_ratio": round(color_distance(image, style) / color_distance(photo, style), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["before", "today"],
                        choices=list(VARIANTS))  # fmt: skip
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--score-size", type=int, default=384)
    parser.add_argument("--pairs", type=int, nargs="+", help="pair numbers, 1 to 6 (default all)")
    parser.add_argument("--shift", type=int, default=0, help="pair photo i with painting i + "
                        "SHIFT (other pairs than the developer pairs)")  # fmt: skip
    parser.add_argument("--also-scored-by", nargs="*", default=[], metavar="NETWORK",
                        help="networks that also score the style ratio (e.g. "
                        "efficientnet-lite1): the gain should not be one network's")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--sheet", type=Path, help="contact sheet: photo, then each variant")
    args = parser.parse_args(argv)
    scorer = load_scoring_backbone(EVALUATOR)
    others = {name: load_scoring_backbone(name) for name in args.also_scored_by}
    network = load_backbone("efficientnet-lite0")
    found = pairs(args.shift)
    chosen = [found[n - 1] for n in args.pairs] if args.pairs else found
    rows, cells = [], []
    for content_path, style_path in chosen:
        photo = load_image(content_path).rgb
        style = load_image(style_path).rgb
        cells.append((resize_long_side(photo, args.size), [content_path.stem]))
        for name in args.variants:
            config = dataclasses.replace(GatysConfig(size=args.size, backbone=network.name),
                                         **VARIANTS[name])  # fmt: skip
            started = time.perf_counter()
            result = stylize(photo, [style], config, backbone=network).image
            seconds = time.perf_counter() - started
            here = resize_to(photo, *result.shape[-2:])
            row = {"pair": f"{content_path.name} + {style_path.name}", "variant": name,
                   "seconds": round(seconds, 1),
                   **scores(result, here, style, scorer, args.score_size)}  # fmt: skip
            for other, network in others.items():
                small = [resize_long_side(image, args.score_size) for image in (result, here)]
                row[f"style_ratio {other}"] = round(style_ratio(small[0], style, small[1],
                                                                network), 4)  # fmt: skip
            rows.append(row)
            note(f"{name:>12} {content_path.stem:>26}: {row['seconds']:6.1f} s, style ratio "
                 f"{row['style_ratio']:.3f}, SSIM {row['ssim']:.3f}, colour "
                 f"{row['color_ratio']:.3f}")  # fmt: skip
            cells.append((result, [f"{name}: style {row['style_ratio']:.2f}, "
                                   f"SSIM {row['ssim']:.2f}"]))  # fmt: skip
    print("| variant | style ratio | SSIM | colour ratio | seconds |")
    print("|---|---|---|---|---|")
    medians = {}
    for name in args.variants:
        mine = [row for row in rows if row["variant"] == name]
        keys = [key for key in mine[0] if key not in ("pair", "variant")]
        medians[name] = {key: round(statistics.median(row[key] for row in mine), 4)
                         for key in keys}  # fmt: skip
        m = medians[name]
        print(f"| {name} | {m['style_ratio']:.3f} | {m['ssim']:.3f} | {m['color_ratio']:.3f} | "
              f"{m['seconds']:.1f} |", *(f"{k}: {v:.3f}" for k, v in m.items()
                                         if k.startswith("style_ratio ")))  # fmt: skip
    if args.json:
        document = {"machine": machine_info(), "commit": git_commit(), "size": args.size,
                    "score_size": args.score_size, "evaluator": EVALUATOR,
                    "also_scored_by": args.also_scored_by,
                    "shift": args.shift,
                    "variants": {name: VARIANTS[name] for name in args.variants},
                    "medians": medians, "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    if args.sheet:
        headers = ["photo", *args.variants]
        save_image(draw_sheet(cells, cell=256, columns=len(headers), headers=headers),
                   args.sheet)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
