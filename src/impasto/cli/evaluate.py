"""``impasto evaluate``: score a stylised image or clip (impasto.metrics), as a table or JSON."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .terminal import Terminal, print_table


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="score a stylised image or clip: structure, content, style, colour and flicker",
        description="Score OUTPUT against the CONTENT and STYLE images it was made from. "
        "Next to each score: what the content itself and the style itself score (the "
        "references), and a one-line verdict placing OUTPUT between them. Feature metrics use "
        "a network other than --made-with when one is available. OUTPUT and CONTENT may be "
        "clips (video files or folders of frames, frame for frame): the metrics are averaged "
        "over the frames, and the warping error (flicker) of OUTPUT and of CONTENT is added.",
    )
    parser.set_defaults(handler=run)
    # Choices are checked by the library (impasto.metrics), which would import torch here.
    parser.add_argument(
        "output", metavar="OUTPUT", help="the stylised image, video or frame folder to score"
    )
    parser.add_argument(
        "--content",
        required=True,
        metavar="C",
        help="the content image, or the video or frame folder OUTPUT was made from",
    )
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
    parser.add_argument(
        "--frame-step",
        dest="frame_step",
        type=int,
        metavar="N",
        help="clips: score the per-frame metrics on every N-th frame (default: the smallest N "
        "that scores at most 20 frames); the warping error always uses every frame",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    import json

    from .. import metrics
    from ..errors import InputError

    names = metrics.check_metrics(args.metrics)  # cheap checks before any image is read
    options = {"backbone": args.backbone, "made_with": args.made_with, "metrics": names}
    options["clip_weights"] = args.clip_weights
    clip = None
    if metrics.is_clip(args.output) or metrics.is_clip(args.content):
        clip = metrics.evaluate_clip(
            args.output, args.content, args.style, frame_step=args.frame_step, **options
        )
        report = clip.evaluation
    elif args.frame_step is not None:
        raise InputError("--frame-step applies to clips (a video or a folder of frames) only")
    else:
        report = metrics.evaluate(args.output, args.content, args.style, **options)
    for note in report.notes:
        terminal.line(note)
    if args.json:
        print(json.dumps((clip or report).to_dict(), indent=2, ensure_ascii=False))
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
    if clip is not None:
        rows += _temporal_rows(clip.temporal)
        footer += _clip_lines(clip)
    footer += [f"{name}: {reason}" for name, reason in report.unavailable.items()]
    if report.verdict:
        footer.append(f"verdict: {report.verdict}")
    print_table(header, rows, footer, fixed=(0, 1, 2, 3, 4), right=(1, 2, 3))
    return 0


def _temporal_rows(temporal) -> list[tuple[str, ...]]:
    """The warping error as a row of the table: the content clip's own as its reference."""
    if temporal is None:
        return []
    meaning = "mean squared change from the previous frame moved by the flow (0 = steady)"
    # Significant digits, not 4 decimals: warping errors are often below 0.001.
    row = ("warping_error", f"{temporal.output:.4g}", f"{temporal.input:.4g}", "-")
    return [(*row, "lower = steadier", meaning)]


def _clip_lines(clip) -> list[str]:
    """Footer lines for a clip: which frames were scored, and how the warping error was taken."""
    scored = clip.scored_frames
    shown = ", ".join(str(index) for index in scored[:6]) + (", ..." if len(scored) > 6 else "")
    lines = [
        f"frames: {clip.frame_count}; per-frame metrics averaged over {len(scored)} of them "
        f"(every {clip.frame_step}: {shown})"
    ]
    temporal = clip.temporal
    if temporal is not None:
        ratio = "-" if temporal.ratio is None else f"{temporal.ratio:.2f}"
        lines.append(
            f"warping_error: {ratio} x the content's; flow {temporal.flow}; {temporal.pairs} "
            f"frame pairs; {temporal.reliable_fraction:.0%} of pixels reliable"
        )
    return lines


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
