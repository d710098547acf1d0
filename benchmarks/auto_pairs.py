#!/usr/bin/env python
"""``--auto`` against the defaults on the six developer pairs (../shared/data/images, content i
with style i in name order; see that folder's SOURCES.md), the check of issue 17.

For each method (default: gatys and adain) and pair: the method's default settings, and the
setting ``impasto.tune`` chooses (target ``balanced``, tried at 256 px, scored on
EfficientNet-Lite1), each run at ``--size`` (512) and then scored as ``impasto evaluate`` scores
(EfficientNet-Lite2, the independent network): SSIM with the photo and style ratio, each read
as a share between the photo and the painting (impasto.metrics.reference.share, the painting
cropped to the photo's shape as the reference), and "together" as their mean. A pair counts
for --auto when its mean is at least the default's. Prints a table, writes the JSON to
``--json`` and a before/after sheet (photo, default, --auto) of the first method to ``--sheet``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import git_commit, machine_info, note  # noqa: E402

from impasto import pipeline, tune  # noqa: E402
from impasto.images import draw_sheet, load_image, resize_to, save_image  # noqa: E402
from impasto.metrics import load_scoring_backbone, ssim, style_ratio, style_stand_in  # noqa: E402
from impasto.metrics.reference import share  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "data" / "images"
EVALUATOR = "efficientnet-lite2"


def pairs() -> list[tuple[Path, Path]]:
    contents = sorted((IMAGES / "content").iterdir())
    styles = sorted((IMAGES / "style").iterdir())
    return list(zip(contents, styles, strict=True))


def scores(image, photo, style, scorer) -> dict:
    """SSIM and style ratio on the evaluator, their shares, and their mean."""
    painting = style_stand_in(style, photo)
    similarity, ratio = ssim(image, photo), style_ratio(image, style, photo, scorer)
    structure = share("ssim", similarity, 1.0, ssim(painting, photo))
    styled = share("style_ratio", ratio, 1.0, style_ratio(painting, style, photo, scorer))
    return {"ssim": round(similarity, 4), "style_ratio": round(ratio, 4),
            "structure": round(structure, 4), "style": round(styled, 4),
            "together": round((structure + styled) / 2, 4)}  # fmt: skip


def stylise(method, config, photo, style):
    prepared = pipeline.prepare(method, config, [style])
    return prepared.checked_run(photo).image[:1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["gatys", "adain"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", type=int, default=6, help="the first N pairs")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--sheet", type=Path, help="before/after sheet of the first method")
    args = parser.parse_args(argv)
    scorer = load_scoring_backbone(EVALUATOR)
    rows, sheet = [], []
    for method in args.methods:
        for content_path, style_path in pairs()[: args.pairs]:
            content = load_image(content_path).rgb
            style = load_image(style_path).rgb
            config = pipeline.make_config(method, {"size": args.size}, 1)
            started = time.perf_counter()
            tuning = tune.tune(method, config, content, [style])
            tuned_seconds = time.perf_counter() - started
            default = stylise(method, config, content, style)
            auto = stylise(method, tuning.config, content, style)
            photo = resize_to(content, *default.shape[-2:])
            row = {"method": method, "pair": f"{content_path.name} + {style_path.name}",
                   "parameter": tuning.parameter,
                   "default_value": getattr(config, tuning.parameter), "auto_value": tuning.chosen,
                   "tuning_seconds": round(tuned_seconds, 1),
                   "default": scores(default, photo, style, scorer),
                   "auto": scores(auto, photo, style, scorer),
                   "curve": [dataclasses.asdict(c) for c in tuning.candidates]}  # fmt: skip
            row["auto_at_least_as_good"] = row["auto"]["together"] >= row["default"]["together"]
            rows.append(row)
            note(f"{method} {row['pair']}: {tuning.parameter} {row['default_value']:g} -> "
                 f"{tuning.chosen:g}; together {row['default']['together']:.3f} -> "
                 f"{row['auto']['together']:.3f} (tuning {tuned_seconds:.0f} s)")  # fmt: skip
            if method == args.methods[0]:
                name = content_path.stem
                sheet += [(photo, [name]), (default, [f"default: {row['default_value']:g}"]),
                          (auto, [f"--auto: {tuning.chosen:g}"])]  # fmt: skip
    print("| method | pair | default | --auto | SSIM (default, auto) | style ratio | together |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        d, a = row["default"], row["auto"]
        print(f"| {row['method']} | {row['pair']} | {row['default_value']:g} | "
              f"{row['auto_value']:g} | {d['ssim']:.3f}, {a['ssim']:.3f} | "
              f"{d['style_ratio']:.3f}, {a['style_ratio']:.3f} | "
              f"{d['together']:.3f}, {a['together']:.3f} |")  # fmt: skip
    for method in args.methods:
        mine = [row for row in rows if row["method"] == method]
        wins = sum(row["auto_at_least_as_good"] for row in mine)
        print(f"{method}: --auto at least as good together on {wins} of {len(mine)} pairs")
    if args.json:
        document = {"machine": machine_info(), "commit": git_commit(), "size": args.size,
                    "evaluator": EVALUATOR, "tuning_network": tune.TUNE_BACKBONE,
                    "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    if args.sheet and sheet:
        save_image(draw_sheet(sheet, cell=256, columns=3,
                              headers=["photo", "default", "--auto"]), args.sheet)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
