#!/usr/bin/env python
"""Quality of the photorealistic method (impasto.methods.photo) on the 15 shared photo pairs of
../shared/data/photoreal (Luan et al., Deep Photo Style Transfer: pair N is inN.jpg, the
content, with tarN.jpg, the look; inN_seg.png and tarN_seg.png are their label masks).

For each pair: ``impasto.stylize(content, [look], method="photo")`` with the method's defaults
(smoothing ``fast``); with ``--masks`` also with ``content_mask``/``style_mask`` (region to
matching region); with ``--gatys`` also ``method="gatys"`` at its defaults (output size = the
content's long side, 512 px here), for contrast: about a minute per pair on a small CPU.

Scores, impasto's own pixel metrics (impasto.metrics.pixels):
- ``ssim`` = ssim(result, content): luminance SSIM, how much of the photo's structure is kept;
- ``color_distance`` = color_distance(result, look), beside ``content_color_distance`` =
  color_distance(content, look), and ``color_ratio`` = their quotient: how much of the gap to
  the look's colours is left.
The bars (issue): ``ssim >= 0.6`` and ``color_ratio <= 0.5`` (colour distance to the look at
most half the content's own). Per pair and variant: the scores, ``meets_ssim``, ``meets_color``,
``meets_both``, ``seconds`` (the whole ``impasto.stylize`` call, preparing included), for photo
``look_taken`` (the share of the look its structure floor let through); under
``summary`` per variant: medians and means, and how many pairs meet each bar and both.

The photos' licence is non-commercial research only: they are read where they are and never
copied here. ``--sheet PATH`` writes a contact sheet to look at (a row per pair: content, look,
each result) and refuses a path inside the repository (exit code 2). The JSON document (file
names and scores only) goes to ``--out``, rewritten after every pair; notes go to stderr.
``--quick`` (smoke test): the first 2 pairs shrunk to 128 px, Gatys on the tiny test network
for 2 steps.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import git_commit, machine_info, note  # noqa: E402
from report import to_json, write_atomic  # noqa: E402

import impasto  # noqa: E402
from impasto.errors import InputError  # noqa: E402
from impasto.images import load_image, resize_long_side, resize_to, save_image  # noqa: E402
from impasto.images.sheet import draw_rows  # noqa: E402
from impasto.metrics.pixels import color_distance, ssim  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTOREAL = ROOT.parent / "shared" / "data" / "photoreal"
SSIM_BAR = 0.6  # ssim(result, content) at least this
COLOR_BAR = 0.5  # color_distance(result, look) at most this times color_distance(content, look)
QUICK_SIDE = 128
QUICK_PAIRS = 2


def available_pairs(data: Path) -> list[int]:
    """The pair numbers N with both inN.jpg and tarN.jpg in ``data``, ascending."""
    numbers = [path.stem[2:] for path in data.glob("in*.jpg")]
    return sorted(int(n) for n in numbers if n.isdigit() and (data / f"tar{n}.jpg").is_file())


def inside_repository(path: Path) -> bool:
    return path.expanduser().resolve().is_relative_to(ROOT.resolve())


def variants(args) -> dict[str, tuple[str, dict]]:
    """name -> (method, options besides the per-pair ones)."""
    quick = {"style_size": QUICK_SIDE} if args.quick else {}
    chosen = {"photo": ("photo", dict(quick))}
    if args.masks:
        chosen["photo_masks"] = ("photo", dict(quick))
    if args.gatys:
        chosen["gatys"] = ("gatys", {"backbone": "tiny", "steps": 2} if args.quick else {})
    return chosen


def score(image, content, style, content_distance: float) -> dict:
    distance = color_distance(image, style)
    ratio = distance / content_distance if content_distance > 0 else None
    value = ssim(image, content)
    return {
        "ssim": round(value, 4),
        "color_distance": round(distance, 4),
        "color_ratio": None if ratio is None else round(ratio, 4),
        "meets_ssim": value >= SSIM_BAR,
        "meets_color": ratio is not None and ratio <= COLOR_BAR,
        "meets_both": value >= SSIM_BAR and ratio is not None and ratio <= COLOR_BAR,
    }


def run_pair(number: int, data: Path, chosen: dict, quick: bool) -> tuple[dict, list]:
    """One pair's entry for the document, and its sheet row (content, look, each result)."""
    content = load_image(data / f"in{number}.jpg").rgb
    style = load_image(data / f"tar{number}.jpg").rgb
    if quick:
        content, style = resize_long_side(content, QUICK_SIDE), resize_long_side(style, QUICK_SIDE)
    height, width = content.shape[-2:]
    masks = (data / f"in{number}_seg.png", data / f"tar{number}_seg.png")
    content_distance = color_distance(content, style)
    entry = {
        "pair": number,
        "content": f"in{number}.jpg",
        "style": f"tar{number}.jpg",
        "size": f"{width}x{height}",
        "content_color_distance": round(content_distance, 4),
        "results": {},
    }
    row = [
        (content, [f"pair {number}: content"]),
        (style, [f"look, colour distance {content_distance:.3f}"]),
    ]
    for name, (method, options) in chosen.items():
        options = dict(options)
        if name == "photo_masks":
            if not all(path.is_file() for path in masks):
                entry["results"][name] = {"error": f"no label masks for pair {number}"}
                row.append((content * 0 + 1, [name, "no label masks"]))
                continue
            options.update(content_mask=str(masks[0]), style_mask=str(masks[1]))
        if method == "gatys":
            options.setdefault("size", max(height, width))
        started = time.perf_counter()
        try:
            result = impasto.stylize(content, [style], method=method, notify=note, **options)
        except InputError as error:
            entry["results"][name] = {"error": str(error)}
            row.append((content * 0 + 1, [name, "failed"]))
            note(f"pair {number} {name}: {error}")
            continue
        seconds = time.perf_counter() - started
        image = result.image
        if tuple(image.shape[-2:]) != (height, width):
            image = resize_to(image, height, width)
        scores = score(image, content, style, content_distance)
        entry["results"][name] = {
            **scores,
            "seconds": round(seconds, 3),
            "backbone": result.backbone,
        }
        if "structure" in result.details:  # photo: how much of the look its floor let through
            entry["results"][name]["look_taken"] = result.details["structure"]["look_taken"]
        ratio = "?" if scores["color_ratio"] is None else f"{scores['color_ratio']:.2f}"
        row.append((image, [name, f"SSIM {scores['ssim']:.2f}, colour x{ratio}"]))
    return entry, row


def summary(pairs: list[dict], names: list[str]) -> dict:
    def stats(values: list[float]) -> dict:
        if not values:
            return {"median": None, "mean": None}
        return {
            "median": round(statistics.median(values), 4),
            "mean": round(statistics.fmean(values), 4),
        }

    result = {"content_color_distance": stats([p["content_color_distance"] for p in pairs])}
    for name in names:
        scored = [p["results"][name] for p in pairs if "ssim" in p["results"].get(name, {})]
        result[name] = {
            "pairs": len(scored),
            "failed": sum("error" in p["results"].get(name, {}) for p in pairs),
            **{
                key: stats([s[key] for s in scored if s[key] is not None])
                for key in ("ssim", "color_distance", "color_ratio", "seconds")
            },
            "meets_ssim": sum(s["meets_ssim"] for s in scored),
            "meets_color": sum(s["meets_color"] for s in scored),
            "meets_both": sum(s["meets_both"] for s in scored),
        }
    return result


def table(document: dict) -> str:
    names = list(document["summary"])[1:]
    lines = [
        f"{'pair':>5} {'variant':>12} {'SSIM':>6} {'colour':>7} {'content':>8} {'ratio':>6} "
        f"{'both':>5}"
    ]
    for pair in document["pairs"]:
        for name in names:
            s = pair["results"].get(name, {})
            if "ssim" not in s:
                lines.append(f"{pair['pair']:>5} {name:>12} {s.get('error', '')[:60]}")
                continue
            ratio = "" if s["color_ratio"] is None else f"{s['color_ratio']:.2f}"
            lines.append(
                f"{pair['pair']:>5} {name:>12} {s['ssim']:>6.3f} "
                f"{s['color_distance']:>7.3f} {pair['content_color_distance']:>8.3f} "
                f"{ratio:>6} {'yes' if s['meets_both'] else 'no':>5}"
            )
    for name in names:
        s = document["summary"][name]
        lines.append(
            f"{name}: {s['pairs']} pairs, median SSIM {s['ssim']['median']}, median "
            f"colour ratio {s['color_ratio']['median']}; SSIM >= {SSIM_BAR}: "
            f"{s['meets_ssim']}, colour <= {COLOR_BAR}x: {s['meets_color']}, both: "
            f"{s['meets_both']}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    today = datetime.date.today().isoformat()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=PHOTOREAL, help="the photoreal folder")
    parser.add_argument("--pairs", nargs="+", type=int, default=None, help="pair numbers (all)")
    parser.add_argument("--masks", action="store_true", help="also photo with the label masks")
    parser.add_argument("--gatys", action="store_true", help="also gatys (about a minute a pair)")
    parser.add_argument(
        "--sheet",
        type=Path,
        default=None,
        help="write a contact sheet here (outside the repository)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke test: {QUICK_PAIRS} pairs at {QUICK_SIDE} px"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / f"{today}-photo-pairs.json"
    )
    args = parser.parse_args(argv)
    if args.sheet is not None and inside_repository(args.sheet):
        print(
            f"photo_pairs: refusing --sheet {args.sheet}: it is inside the repository {ROOT}, "
            "and these photos are licensed for non-commercial research only and must not be "
            "shipped; write the sheet outside it (e.g. /tmp/photo-pairs.png)",
            file=sys.stderr,
        )
        return 2
    found = available_pairs(args.data) if args.data.is_dir() else []
    if not found:
        print(f"photo_pairs: no photo pairs (inN.jpg + tarN.jpg) in {args.data}", file=sys.stderr)
        return 2
    numbers = args.pairs or found[: QUICK_PAIRS if args.quick else None]
    missing = sorted(set(numbers) - set(found))
    if missing:
        print(f"photo_pairs: no pair {missing} in {args.data}; there are {found}", file=sys.stderr)
        return 2
    chosen = variants(args)
    document = {
        "benchmark": "photo_pairs",
        "machine": machine_info(),
        "commit": git_commit(),
        "settings": {
            "data": str(args.data),
            "pairs": numbers,
            "quick": args.quick,
            "side": QUICK_SIDE if args.quick else "as stored (512 px long side)",
            "variants": {
                name: {
                    "method": method,
                    **options,
                    **(
                        {"content_mask": "inN_seg.png", "style_mask": "tarN_seg.png"}
                        if name == "photo_masks"
                        else {}
                    ),
                }
                for name, (method, options) in chosen.items()
            },
            "bars": {"ssim_at_least": SSIM_BAR, "color_ratio_at_most": COLOR_BAR},
        },
        "pairs": [],
        "summary": {},
    }
    rows = []
    for number in numbers:
        note(f"pair {number}: {', '.join(chosen)}")
        entry, row = run_pair(number, args.data, chosen, args.quick)
        document["pairs"].append(entry)
        document["summary"] = summary(document["pairs"], list(chosen))
        write_atomic(args.out, to_json(document))
        if args.sheet is not None:
            rows.append(row)
    print(table(document))
    note(f"wrote {args.out}")
    if args.sheet is not None:
        headers = ["content", "look", *chosen]
        title = ["photo pairs (non-commercial research only: do not ship)"]
        cell = QUICK_SIDE if args.quick else 256
        sheet = draw_rows(rows, cell=cell, headers=headers, title=title)
        save_image(sheet, args.sheet)
        note(f"wrote the contact sheet {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
