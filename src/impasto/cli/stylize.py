"""``impasto stylize``: any method of the table on an image, several images or folders.

The flags are the chosen method's config fields (``--method M --help`` lists M's flags and
only those); everything else is the library's: impasto.pipeline checks the options and
prepares the method, impasto.batch runs it over the inputs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..methods.registry import (
    DEFAULT_METHOD,
    METHOD_CHOICES,
    entry,
    load_method,
)
from .args import add_config_flags, given_options, option_value, positive_int
from .terminal import ProgressView, Terminal

if TYPE_CHECKING:  # the library imports torch: only when the command runs
    from ..batch import Job
    from ..progress import ProgressEvent


def explain(argv: Sequence[str], message: str) -> str | None:
    """For "unrecognized arguments: --steps" under --method fast: which methods have it."""
    method = option_value(argv, "--method") or DEFAULT_METHOD
    if not message.startswith("unrecognized arguments:"):
        return None
    for word in message.split(":", 1)[1].split():
        flag = word.split("=")[0]
        owners = _methods_with_flag(flag) if flag.startswith("--") else []
        if owners:
            return f"{flag}: not an option of --method {method} (an option of: {', '.join(owners)})"
    return None


def _methods_with_flag(flag: str) -> list[str]:
    from ..config import flag_name
    from ..methods.registry import available_methods

    found = []
    for name in available_methods():
        config_class = load_method(name).config_class
        if any(flag_name(field) == flag for field in config_class.__dataclass_fields__):
            found.append(name)
    return found


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    parser = commands.add_parser(
        "stylize",
        help="stylise images with any method (gatys, fast, ...)",
        description="Stylise CONTENT with the STYLE image(s) (methods that take style images) "
        "and write OUT; with methods whose style is in a model (fast), every positional "
        "argument is an input. A folder as input is searched recursively and OUT is then a "
        "folder. Give the images before options that take several values (--style-blend, ...). "
        "`impasto stylize --method M --help` lists M's options.",
    )
    parser.set_defaults(handler=run)
    if not selected:
        return
    from ..images import OUTPUT_FORMATS

    method = option_value(argv, "--method") or DEFAULT_METHOD
    if method in METHOD_CHOICES and not entry(method).takes_styles:
        help_text = "input images or folders (the style is in the model)"
        parser.add_argument("inputs", metavar="INPUT", nargs="+", help=help_text)
    else:
        help_text = "the photo, or a folder of photos"
        parser.add_argument("inputs", metavar="CONTENT", nargs=1, help=help_text)
        # "+", not "*": with "*" argparse takes no style before an option (CONTENT -o OUT STYLE)
        parser.add_argument("styles", metavar="STYLE", nargs="+", help="the style image(s)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        required=True,
        help=f"output image ({', '.join(OUTPUT_FORMATS)}) or folder",
    )
    parser.add_argument(
        "--method",
        choices=METHOD_CHOICES,
        default=DEFAULT_METHOD,
        help="style transfer method (default: %(default)s)",
    )
    if method in METHOD_CHOICES:  # a method whose extra is missing: one line, what to install
        row = entry(method)
        group = parser.add_argument_group(f"options of --method {method} ({row.summary})")
        add_config_flags(group, load_method(method).config_class)
    other = parser.add_argument_group("other options")
    other.add_argument(
        "--max-pixels",
        dest="max_pixels",
        metavar="N",
        type=positive_int,
        help="refuse input images with more pixels than this "
        "(default: $IMPASTO_MAX_PIXELS or 64 million)",
    )
    other.add_argument("--quiet", action="store_true", help="no progress bar")


class PreviewSaver:
    """Writes the previews that ``--save-every`` asks for next to the output being made:
    ``out.png`` -> ``out.step0050.png``, with that input's alpha."""

    def __init__(self, view: ProgressView, jobs: Sequence[Job], protected: Sequence[Path]):
        self.view, self.protected = view, protected
        self.jobs = {str(job.target): job for job in jobs}
        self.job = jobs[0]

    def __call__(self, event: ProgressEvent) -> None:
        from .. import images

        if event.kind == "stage" and event.item in self.jobs:
            self.job = self.jobs[event.item]
        if event.image is not None:
            out = self.job.target
            path = images.check_output_path(
                out.with_name(f"{out.stem}.step{event.step:04d}{out.suffix}"),
                inputs=self.protected,
            )
            alpha = self.job.image.alpha if self.job.image is not None else None
            if alpha is not None:
                alpha = images.resize_to(alpha, *event.image.shape[-2:])
            images.save_image(event.image, path, alpha=alpha)
        return self.view(event)


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    from .. import batch, images, pipeline

    method = args.method
    row = entry(method)
    config_class = load_method(method).config_class
    if row.takes_styles:
        inputs, styles = args.inputs, args.styles
    else:
        inputs, styles = args.inputs, []

    # 1. Option values (cheap): nothing is read or loaded before these are right.
    config = pipeline.make_config(method, given_options(args, config_class), len(styles))

    # 2. Outputs and inputs: bad paths and files fail here, in well under a second.
    jobs, single = batch.plan(inputs, args.output, protected=styles)
    if single:
        jobs[0].image = images.load_image(jobs[0].source, max_pixels=args.max_pixels)
    style_images = [images.load_image(path, max_pixels=args.max_pixels) for path in styles]

    # 3. The method: backbone resolved and fetched (with a download bar), weights loaded.
    with ProgressView(terminal, quiet=args.quiet, items=not single) as view:
        saver = PreviewSaver(view, jobs, [*map(Path, styles), *(j.source for j in jobs)])
        prepared = pipeline.prepare(
            method, config, style_images, progress=saver, notify=terminal.line
        )
        # 4. The work.
        report = batch.run(
            prepared,
            jobs,
            policy="stop" if single else "skip",
            max_pixels=args.max_pixels,
            progress=saver,
        )
    if report.skipped:
        terminal.line(f"skipped {len(report.skipped)} bad file(s): {'; '.join(report.skipped[:3])}")
    what = prepared.summary()
    if single:
        width, height = report.sizes[0]
        terminal.line(
            f"wrote {report.written[0]} ({width}x{height}) in {report.seconds:.1f} s "
            f"— {method}, {what}"
        )
    else:
        count = len(report.written)
        terminal.line(
            f"wrote {Path(args.output)} ({count} image{'s' if count != 1 else ''}) "
            f"in {report.seconds:.1f} s — {method}, {what}"
        )
    return 0
