"""``impasto tune CONTENT STYLE``: the setting ``--auto`` would choose for a pair, with the curve
it measured (impasto.tune), printed and optionally drawn (``--plot``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .terminal import ProgressView, Terminal

TUNABLE = ("gatys", "adain", "wct", "photo")  # impasto.tune.SEARCHES (no torch here)
TARGET_CHOICES = ("balanced", "stronger", "subtle")  # impasto.tune.TARGET_CHOICES


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    parser = commands.add_parser(
        "tune",
        help="find the style weight (gatys) or alpha (adain, wct, photo) for a pair",
        description="Try a ladder of settings on CONTENT shrunk to 256 px, score each by style "
        "(Gram distance on EfficientNet-Lite1) and structure (SSIM), and print the curve and "
        "the best setting for the target balance: what `impasto stylize` uses with its auto "
        "option.",
    )
    parser.add_argument("content", metavar="CONTENT", help="the photo")
    parser.add_argument("styles", metavar="STYLE", nargs="+", help="the style image(s)")
    parser.add_argument("--method", choices=TUNABLE, default="gatys",
                        help="the method to tune (default: %(default)s)")  # fmt: skip
    parser.add_argument("--target", choices=TARGET_CHOICES, default="balanced",
                        help="balanced: style and structure alike; stronger: style counts twice; "
                        "subtle: structure counts twice (default: %(default)s)")  # fmt: skip
    parser.add_argument("--plot", metavar="PNG", help="also draw the curve into this image")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    from .. import images, pipeline, tune

    config = pipeline.make_config(args.method, {}, len(args.styles))
    plot = None
    if args.plot:
        plot = images.check_output_path(args.plot, inputs=[args.content, *args.styles])
    content = images.load_image(args.content).rgb
    styles = [images.load_image(path).rgb for path in args.styles]
    with ProgressView(terminal, quiet=args.quiet) as view:
        tuning = tune.tune(args.method, config, content, styles, target=args.target,
                           progress=view, notify=terminal.line)  # fmt: skip
    for line in tuning.table():
        print(line)
    name = tuning.parameter.replace("_", " ")
    print(f"chosen: {name} {tuning.chosen:g} (target {args.target}; {tuning.seconds:.0f} s)")
    if plot is not None:
        images.save_image(tuning.plot(), plot)
        terminal.line(f"wrote {plot}")
    return 0
