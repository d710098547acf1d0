"""``impasto stylize``: any method of the table on an image, several images or folders.

The flags are the chosen method's config fields (``--method M --help`` lists M's flags and
only those); everything else is the library's: impasto.pipeline checks the options and
prepares the method, impasto.batch runs it over the inputs and writes each image with its
provenance record (and a sidecar with ``--save-settings``).

The method: ``--method``, else the one an image's record names (``--from``), else ``fast``
when ``--model`` is given, else the default. ``--from OUTPUT`` re-runs what OUTPUT records
(impasto.provenance): its method and every setting, flags given overriding them, on the
recorded inputs when they are unchanged (sha256) or on the images given.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..methods.registry import (
    DEFAULT_METHOD,
    METHOD_CHOICES,
    available_methods,
    entry,
    load_method,
)
from .args import (
    add_config_flags,
    add_methods_flags,
    asks_for_help,
    given_options,
    option_value,
    positive_int,
)
from .stylize_clip import add_clip_flags, is_clip_job, run_clip
from .terminal import ProgressView, Terminal
from .tune import TARGET_CHOICES

if TYPE_CHECKING:  # the library imports torch: only when the command runs
    from ..batch import Job
    from ..progress import ProgressEvent
    from ..provenance import Recipe

FORMAT_CHOICES = ("png", "jpg", "webp", "tif")  # impasto.batch.FORMAT_CHOICES (no torch here)


def chosen_method(argv: Sequence[str], record: dict | None = None) -> str:
    """``--method``, else the method of ``record`` (``--from``), else ``fast`` when
    ``--model`` is given (only fast has models), else the default."""
    given = option_value(argv, "--method")
    if given is not None:
        return given
    if record is not None:
        return str(record["method"])
    options = argv[: list(argv).index("--")] if "--" in argv else argv
    if any(arg == "--model" or arg.startswith("--model=") for arg in options):
        return "fast"
    return DEFAULT_METHOD


def read_recorded(argv: Sequence[str]) -> dict | None:
    """The record of ``--from OUTPUT``, or None without ``--from``."""
    path = option_value(argv, "--from")
    if path is None:
        return None
    from ..errors import InputError
    from ..provenance import read_record

    record = read_record(path)
    if record["method"] not in METHOD_CHOICES:
        raise InputError(
            f"{path} was made with method '{record['method']}', which this impasto does not "
            f"have ({', '.join(METHOD_CHOICES)})"
        )
    return record


def explain(argv: Sequence[str], message: str) -> str | None:
    """For "unrecognized arguments: --steps" under --method fast: which methods have it."""
    if not message.startswith("unrecognized arguments:"):
        return None
    from ..errors import ImpastoError

    try:
        method = chosen_method(argv, read_recorded(argv))
    except ImpastoError:
        method = chosen_method(argv)
    for word in message.split(":", 1)[1].split():
        flag = word.split("=")[0]
        owners = _methods_with_flag(flag) if flag.startswith("--") else []
        if owners:
            return f"{flag}: not an option of --method {method} (an option of: {', '.join(owners)})"
    return None


def _methods_with_flag(flag: str) -> list[str]:
    from ..config import flag_name

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
        "`impasto stylize --method M --help` lists M's options. "
        "`impasto stylize --from OUTPUT [IMAGE ...] -o NEW` re-runs what OUTPUT records.",
    )
    parser.set_defaults(handler=run, recorded=None)
    if not selected:
        return
    from ..images import OUTPUT_FORMATS

    record = read_recorded(argv)
    method = chosen_method(argv, record)
    if record is not None:
        parser.set_defaults(recorded=record)
        help_text = "images instead of the recorded ones: the content, then style images"
        if method in METHOD_CHOICES and not entry(method).takes_styles:
            help_text = "input images or folders instead of the recorded one"
        parser.add_argument("inputs", metavar="IMAGE", nargs="*", help=help_text)
    elif method in METHOD_CHOICES and not entry(method).takes_styles:
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
        default=method if method in METHOD_CHOICES else DEFAULT_METHOD,
        help="style transfer method (default: %(default)s; with --model: fast; with --from: "
        "the recorded one)",
    )
    by_default = record is None and option_value(argv, "--method") is None
    if by_default and method == DEFAULT_METHOD and asks_for_help(argv):
        # `impasto stylize --help` with no method chosen: every method's options, each once
        configs = {name: load_method(name).config_class for name in available_methods()}
        add_methods_flags(parser, configs)
    elif method in METHOD_CHOICES:  # a method whose extra is missing: one line, what to install
        row = entry(method)
        group = parser.add_argument_group(f"options of --method {method} ({row.summary})")
        add_config_flags(group, load_method(method).config_class)
    other = parser.add_argument_group("other options")
    other.add_argument(
        "--from",
        dest="from_output",
        metavar="OUTPUT",
        help="re-run the method and settings recorded in OUTPUT (an image impasto wrote, or "
        "its .json sidecar); flags given override them; on the recorded inputs if unchanged "
        "(sha256), else on the images given",
    )
    other.add_argument(
        "--format",
        dest="output_format",
        choices=FORMAT_CHOICES,
        help="format of the images written into an output folder (default: each input's own)",
    )
    other.add_argument(
        "--save-settings",
        action="store_true",
        help="also write each output's provenance record as JSON beside it (OUT.png.json)",
    )
    other.add_argument(
        "--max-pixels",
        dest="max_pixels",
        metavar="N",
        type=positive_int,
        help="refuse input images with more pixels than this "
        "(default: $IMPASTO_MAX_PIXELS or 64 million)",
    )
    other.add_argument(
        "--auto",
        action="store_true",
        help="first tune the method's main setting for this photo and style (gatys: its style "
        "weight; adain, wct, photo: alpha) at 256 px, as `impasto tune` does, and print the "
        "curve",
    )
    other.add_argument(
        "--target",
        choices=TARGET_CHOICES,
        help="the balance --auto aims for: balanced (default), stronger (style counts twice), "
        "subtle (structure counts twice)",
    )
    other.add_argument("--quiet", action="store_true", help="no progress bar")
    add_clip_flags(parser)


class PreviewSaver:
    """Writes the previews that ``--save-every`` asks for next to the output being made:
    ``out.png`` -> ``out.step0050.png``, with that input's alpha and a provenance record
    holding the step (``recipe``, set once the method is prepared)."""

    def __init__(self, view: ProgressView, jobs: Sequence[Job], protected: Sequence[Path]):
        self.view, self.protected = view, protected
        self.jobs = {str(job.target): job for job in jobs}
        self.job = jobs[0]
        self.recipe: Recipe | None = None

    def __call__(self, event: ProgressEvent) -> None:
        from .. import batch, images

        if event.kind == "step" and not event.losses and event.image is None:
            return None  # a one-pass method's step (fast): a bar would show nothing more
        if event.kind == "stage" and event.item in self.jobs:
            self.job = self.jobs[event.item]
        if event.image is not None:  # previews come during the run: recipe is set by then
            out = self.job.target
            path = images.check_output_path(
                out.with_name(f"{out.stem}.step{event.step:04d}{out.suffix}"),
                inputs=self.protected,
            )
            batch.write_result(
                self.recipe, self.job, self.job.image, event.image, path, step=event.step
            )
        return self.view(event)


def recorded_run(
    args: argparse.Namespace, takes_styles: bool, given: dict[str, Any], takes_model: bool
) -> tuple[list[str], list[str], dict[str, Any]]:
    """(inputs, styles, options) of ``--from``: the record's settings with the flags given
    over them; the images given, else the recorded ones (checked: there and unchanged)."""
    from ..errors import InputError
    from ..provenance import recorded_file, recorded_model, recorded_settings, recorded_styles

    record, origin = args.recorded, args.from_output
    if args.method != record["method"]:
        raise InputError(
            f"{origin} was made with --method {record['method']}; --from re-runs that method "
            f"(leave out --method {args.method})"
        )
    options = {**recorded_settings(record, load_method(args.method).config_class, origin)}
    options.update(given)
    if takes_model and "model" not in given:
        options["model"] = recorded_model(record, origin)
    if "decoder" in options and "decoder" not in given:
        options["decoder"] = recorded_model(record, origin, "decoder")
    images = list(args.inputs)
    if not images:
        images = [str(recorded_file(record["inputs"].get("content"), "the content image", origin))]
    if not takes_styles:
        return images, [], options
    styles = images[1:] or [str(path) for path in recorded_styles(record, origin)]
    return images[:1], styles, options


def refuse_style_image(method: str, inputs: Sequence[str], output: str) -> None:
    """With a method whose style is in a model: two or more image files for one output file
    are most likely a photo and a style image; say so, not "2 images need a folder"."""
    from ..errors import InputError
    from ..images import OUTPUT_FORMATS

    files = [Path(item).expanduser() for item in inputs]
    if len(files) < 2 or any(file.is_dir() for file in files):
        return
    if Path(output).suffix.lower() in OUTPUT_FORMATS:
        raise InputError(
            f"method '{method}' takes no style image: the style is in the model (--model); "
            f"to stylise these {len(files)} images, give an output folder instead of '{output}'"
        )


def refuse_clip_flags(args: argparse.Namespace) -> None:
    """Video options given for images: say so rather than ignore them."""
    from ..errors import InputError

    given = [flag for flag, value in (("--temporal", args.temporal), ("--start", args.start),
             ("--duration", args.duration), ("--every", args.every != 1), ("--fps", args.fps),
             ("--resume", args.resume)) if value]  # fmt: skip
    if given:
        raise InputError(
            f"{', '.join(given)}: options for clips (a video file, or a folder with --frames)"
        )


def check_auto(args: argparse.Namespace, method: str) -> None:
    """``--target`` only with ``--auto``, and ``--auto`` only for a method it can tune."""
    from ..errors import InputError

    if args.target is not None and not args.auto:
        raise InputError("--target: the balance that --auto aims for; give --auto too")
    if args.auto:
        from ..tune import tunable

        tunable(method)


def auto_tuned(args: argparse.Namespace, terminal: Terminal, method: str, config: Any, job: Job,
               style_images) -> Any:  # fmt: skip
    """``config`` with the setting impasto.tune chooses on ``job``'s image, the curve printed."""
    from .. import images, tune

    target = args.target or "balanced"
    photo = job.image or images.load_image(job.source, max_pixels=args.max_pixels)
    with ProgressView(terminal, quiet=args.quiet) as view:
        tuning = tune.tune(method, config, photo.rgb, [image.rgb for image in style_images],
                           target=target, progress=view, notify=terminal.line)  # fmt: skip
    flag = "--" + tuning.parameter.replace("_", "-")
    terminal.line(f"--auto ({target}): {len(tuning.candidates)} values of {flag} tried on "
                  f"{job.source.name} at {tuning.size} px in {tuning.seconds:.0f} s")  # fmt: skip
    for line in tuning.table():
        terminal.line("  " + line)
    terminal.line(f"--auto chose {flag} {tuning.chosen:g}")
    return tuning.config


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    from .. import batch, images, pipeline

    method = args.method
    row = entry(method)
    config_class = load_method(method).config_class
    options = given_options(args, config_class)
    if args.recorded is not None:
        inputs, styles, options = recorded_run(args, row.takes_styles, options, row.takes_model)
    elif row.takes_styles:
        inputs, styles = args.inputs, args.styles
    else:
        inputs, styles = args.inputs, []
    if not row.takes_styles:
        refuse_style_image(method, inputs, args.output)

    # 1. Option values (cheap): nothing is read or loaded before these are right.
    config = pipeline.make_config(method, options, len(styles))
    check_auto(args, method)
    if is_clip_job(args, inputs):  # a video, or a folder of frames with --frames
        if args.auto:
            from ..errors import InputError

            raise InputError("--auto tunes on an image: run `impasto tune` on a frame of the "
                             "clip and give its setting")  # fmt: skip
        return run_clip(args, terminal, method, config, inputs, styles)
    refuse_clip_flags(args)

    # 2. Outputs and inputs: bad paths and files fail here, in well under a second.
    jobs, single = batch.plan(
        inputs, args.output, protected=styles, output_format=args.output_format
    )
    if single:
        jobs[0].image = images.load_image(jobs[0].source, max_pixels=args.max_pixels)
    style_images = [images.load_image(path, max_pixels=args.max_pixels) for path in styles]
    if args.auto:
        config = auto_tuned(args, terminal, method, config, jobs[0], style_images)

    # 3. The method: backbone resolved and fetched (with a download bar), weights loaded.
    with ProgressView(terminal, quiet=args.quiet, items=not single) as view:
        saver = PreviewSaver(view, jobs, [*map(Path, styles), *(j.source for j in jobs)])
        prepared = pipeline.prepare(
            method, config, style_images, progress=saver, notify=terminal.line
        )
        saver.recipe = pipeline.recipe_of(prepared)
        # 4. The work.
        report = batch.run(
            prepared,
            jobs,
            policy="stop" if single else "skip",
            max_pixels=args.max_pixels,
            progress=saver,
            save_settings=args.save_settings,
        )
    if report.skipped:
        terminal.line(f"skipped {len(report.skipped)} bad file(s): {'; '.join(report.skipped[:3])}")
    what = f"{method}, {prepared.summary()}"
    settings = " (settings also in a .json beside each)" if args.save_settings else ""
    if single:
        width, height = report.sizes[0]
        if args.save_settings:
            settings = f" (settings also in {report.written[0].name}.json)"
        terminal.line(
            f"wrote {report.written[0]} ({width}x{height}) in {report.seconds:.1f} s{settings} "
            f"— {what}"
        )
    else:
        count = len(report.written)
        each = report.seconds / count
        rate = count / report.seconds if report.seconds > 0 else float("inf")
        terminal.line(
            f"wrote {Path(args.output)} ({count} image{'s' if count != 1 else ''}) in "
            f"{report.seconds:.1f} s: {each:.3g} s per image, {rate:.3g} images/s{settings} "
            f"— {what}"
        )
    return 0
