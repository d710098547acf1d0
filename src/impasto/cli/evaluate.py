"""``impasto evaluate``: score a stylised image (impasto.metrics), as a table or JSON."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .terminal import Terminal, print_table


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="score a stylised image: structure, content, style and colour metrics",
        description="Score OUTPUT against the CONTENT and STYLE images it was made from. "
        "Next to each score: what the content itself and the style itself score (the "
        "references), and a one-line verdict placing OUTPUT between them. Feature metrics use "
        "a network other than --made-with when one is available.",
    )
    parser.set_defaults(handler=run)
    # Choices are checked by the library (impasto.metrics), which would import torch here.
    parser.add_argument("output", metavar="OUTPUT", help="the stylised image to score")
    parser.add_argument("--content", required=True, metavar="C", help="the content image")
    parser.add_argument("--style", required=True, metavar="S", help="the style image")
    parser.add_argument(
        "--backbone",
        default="auto",
        metavar="NAME",
        help="network for the feature metrics; 'auto' prefers efficientnet-lite2, then "
        "efficientnet-lite0, then vgg19, avoiding --made-with (default: %(default)s)",
    )
    parser.add_argument(
        "--made-with",
        dest="made_with",
        metavar="NAME",
        help="backbone that made OUTPUT (so 'auto' scores with a different one)",
    )
    parser.add_argument(
        "--metrics",
        metavar="NAME",
        nargs="+",
        help="metrics to compute (default: all): ssim, content_distance, style_ratio, "
        "meanstd_distance, color_distance, clip_content, clip_style",
    )
    parser.add_argument(
        "--clip-weights",
        dest="clip_weights",
        metavar="PATH",
        help="CLIP weights for the clip_* metrics (default: $IMPASTO_CLIP_WEIGHTS, else the "
        "file `impasto download clip-vit-b32` caches)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    import json

    from .. import metrics

    names = metrics.check_metrics(args.metrics)  # cheap checks before any image is read
    report = metrics.evaluate(
        args.output,
        args.content,
        args.style,
        backbone=args.backbone,
        made_with=args.made_with,
        metrics=names,
        clip_weights=args.clip_weights,
    )
    for note in report.notes:
        terminal.line(note)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0
    header = ("metric", "result", "content itself", "style itself", "direction", "meaning")
    rows = [
        (
            name,
            _number(value),
            _number(report.references.get("content", {}).get(name)),
            _number(report.references.get("style", {}).get(name)),
            metrics.METRICS[name].direction_text,
            metrics.METRICS[name].description,
        )
        for name, value in report.metrics.items()
    ]
    footer = [f"backbone: {report.backbone}"]
    footer += [f"{name}: {reason}" for name, reason in report.unavailable.items()]
    if report.verdict:
        footer.append(f"verdict: {report.verdict}")
    print_table(header, rows, footer, fixed=(0, 1, 2, 3, 4), right=(1, 2, 3))
    return 0


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
