"""The ``impasto`` command line: stylize, download, backbones, evaluate, recommend, compare.

A thin layer over the public API. Every error a user can fix (an ``ImpastoError`` or a usage
mistake) becomes one line ``impasto: error: ...`` on stderr and exit code 2; Ctrl-C prints
``impasto: interrupted`` and exits 130; anything else is an internal error (exit 1). Tracebacks
appear only with ``--debug``.

The flags of ``stylize`` are built from the fields of ``GatysConfig`` (name, type, default,
choices and help), so they cannot drift from the library. Building them imports torch, so that
happens only when the command is ``stylize``: ``impasto --help`` and ``impasto download`` stay
quick.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import ImpastoError, InputError, WeightsError

PROG = "impasto"


# --------------------------------------------------------------------------- argument parsing


class UsageError(Exception):
    """A command-line mistake found by argparse; shown as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """ArgumentParser that raises UsageError instead of printing the usage and exiting.

    Abbreviated long options are refused so that adding a flag never changes what an
    existing command line means.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(message)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _layer_weight(text: str) -> tuple[str, float]:
    """``NAME`` or ``NAME:WEIGHT`` (weight >= 0, default 1.0) for --style-layers."""
    name, colon, weight_text = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"expected NAME or NAME:WEIGHT, got {text!r}")
    if not colon:
        return name, 1.0
    weight = _finite_float(weight_text)
    if weight < 0:
        raise argparse.ArgumentTypeError(f"layer weight must be >= 0, got {text!r}")
    return name, weight


_TYPES: dict[type, tuple[Callable[[str], typing.Any], str]] = {
    int: (int, "N"),
    float: (_finite_float, "X"),
    str: (str, "TEXT"),
}


def _scalar_type(annotation: typing.Any) -> type:
    """``int`` for ``int`` or ``int | None`` (likewise float, str, bool); TypeError otherwise."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            annotation = members[0]
    if annotation in (bool, int, float, str):
        return annotation
    raise TypeError(f"no command-line type for {annotation!r}")


def _help(text: str) -> str:
    return text.replace("%", "%%")  # argparse %-formats help strings


def _add_config_flags(
    group, config_class: type, shared: dict | None = None, absent_when_unset: bool = False
) -> None:
    """One flag per field of ``config_class`` whose metadata has ``cli`` set.

    ``absent_when_unset``: a flag the user did not give is absent from the namespace (so the
    caller knows what was given and each method applies its own defaults). ``shared``: field
    name -> the choices of every method using that flag (None: no choices); argparse shows them
    and the chosen method's config checks its own (validate_config).
    """
    shared = shared or {}
    from .config import flag_name

    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        meta = field.metadata
        if not meta.get("cli", True):
            continue
        kind = _scalar_type(hints[field.name])
        help_text = _help(meta.get("help", ""))
        if kind is bool:
            action = argparse.BooleanOptionalAction if field.default else "store_true"
            group.add_argument(
                flag_name(field.name),
                dest=field.name,
                action=action,
                default=argparse.SUPPRESS if absent_when_unset else field.default,
                help=help_text,
            )
            continue
        convert, metavar = _TYPES[kind]
        choices = meta.get("choices")
        default = field.default
        if field.name in shared:
            if shared[field.name]:
                metavar = "{" + ",".join(map(str, shared[field.name])) + "}"
            choices = None
        if absent_when_unset:
            if default is not None:
                help_text += f" (default: {default})"
            default = argparse.SUPPRESS
        elif default is not None:
            help_text += " (default: %(default)s)"
        group.add_argument(
            flag_name(field.name),
            dest=field.name,
            type=convert,
            default=default,
            choices=choices,
            metavar=None if choices else metavar,
            help=help_text,
        )


def _add_stylize_arguments(parser: argparse.ArgumentParser) -> None:
    from .api import METHOD_CHOICES
    from .images import OUTPUT_FORMATS
    from .methods.fast import FastConfig
    from .methods.gatys import GatysConfig

    meta = {field.name: field.metadata for field in dataclasses.fields(GatysConfig)}
    parser.add_argument(
        "content",
        metavar="CONTENT",
        help="content image (the photo); with --method fast, "
        "every positional argument is an input image or folder",
    )
    parser.add_argument(
        "styles", metavar="STYLE", nargs="*", help="one or more style images (gatys)"
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        required=True,
        help=f"output image ({', '.join(OUTPUT_FORMATS)})",
    )
    parser.add_argument(
        "--method",
        choices=METHOD_CHOICES,
        default="gatys",
        help="style transfer method (default: %(default)s)",
    )
    gatys_choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(GatysConfig)}
    shared = {}
    for field in dataclasses.fields(FastConfig):
        both = (*(gatys_choices.get(field.name) or ()), *(field.metadata.get("choices") or ()))
        shared[field.name] = tuple(dict.fromkeys(both)) or None
    group = parser.add_argument_group(
        "method options (gatys; --size, --preserve-color, "
        "--device and --precision apply to fast too)"
    )
    _add_config_flags(group, GatysConfig, shared=shared, absent_when_unset=True)
    group.add_argument(
        "--style-blend",
        dest="style_blend",
        metavar="W",
        nargs="+",
        type=_finite_float,
        help=_help(meta["style_blend"]["help"]) + "; one weight per style image",
    )
    group.add_argument(
        "--content-layers",
        dest="content_layers",
        metavar="NAME",
        nargs="+",
        help=_help(meta["content_layers"]["help"]),
    )
    group.add_argument(
        "--style-layers",
        dest="style_layers",
        metavar="NAME[:WEIGHT]",
        nargs="+",
        type=_layer_weight,
        help=_help(meta["style_layers"]["help"]) + "; WEIGHT defaults to 1",
    )
    fast = parser.add_argument_group("method options (fast)")
    fast.add_argument(
        "--model",
        metavar="MODEL",
        help="a model folder from `impasto train fast`, or the name of a shipped model",
    )
    fast.add_argument(
        "--batch",
        type=int,
        default=4,
        metavar="N",
        help="images of the same size stylised together (default: %(default)s)",
    )
    other = parser.add_argument_group("other options")
    other.add_argument(
        "--weights",
        metavar="PATH",
        help="local weights file for the backbone (instead of the cache)",
    )
    other.add_argument(
        "--max-pixels",
        dest="max_pixels",
        metavar="N",
        type=_positive_int,
        help="refuse input images with more pixels than this "
        "(default: $IMPASTO_MAX_PIXELS or 64 million)",
    )
    other.add_argument("--quiet", action="store_true", help="no progress bar")


def _command_in(argv: Sequence[str]) -> str | None:
    """The command word: the first argument that is not an option (global options take no value)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(argv: Sequence[str] = ("stylize",)) -> Parser:
    """The full parser; the flags of ``stylize`` are added only when ``argv`` runs it."""
    parser = Parser(
        prog=PROG,
        description="Neural style transfer: paint a photo in the style of other images.",
        epilog="Run 'impasto COMMAND --help' for the options of a command. "
        "Example: impasto stylize photo.jpg painting.jpg -o out.png --size 512",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )

    stylize = commands.add_parser(
        "stylize",
        help="stylise a content image with one or more style images",
        description="Stylise CONTENT with the STYLE image(s) and write the result to OUT. "
        "Give the images before options that take several values (--style-blend, ...).",
    )
    if _command_in(argv) == "stylize":
        _add_stylize_arguments(stylize)
    stylize.set_defaults(handler=_run_stylize)

    download = commands.add_parser(
        "download",
        help="download weights (a backbone's, or CLIP's for the metrics) into the cache",
        description="Download, verify (sha256) and cache the weights of a backbone or of the "
        "CLIP image encoder used by `impasto evaluate`.",
    )
    download.add_argument("name", metavar="NAME", help="what to fetch: vgg19 or clip-vit-b32")
    download.set_defaults(handler=_run_download)

    backbones = commands.add_parser(
        "backbones",
        help="list the feature networks, their licences and weights",
        description="List the registered backbones and what 'auto' picks on this machine.",
    )
    backbones.set_defaults(handler=_run_backbones)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a stylised image: structure, content, style and colour metrics",
        description="Score OUTPUT against the CONTENT and STYLE images it was made from. "
        "Feature metrics use a network other than --made-with when one is available.",
    )
    _add_evaluate_arguments(evaluate)
    evaluate.set_defaults(handler=_run_evaluate)

    train = commands.add_parser(
        "train",
        help="train a network for one style (fast style transfer)",
        description="Train a model once, then stylise in one pass with "
        "`impasto stylize --method fast --model MODEL_DIR`. KIND: fast.",
    )
    if _command_in(argv) == "train":
        from . import cli_fast

        cli_fast.add_train_arguments(train)

    from . import cli_fast

    cli_fast.add_export_parser(commands)

    compare = commands.add_parser(
        "compare",
        help="stylise with several settings and lay the results out on a labelled sheet",
        description="Stylise CONTENT with STYLE once per setting (same seed), score each "
        "result and write a contact sheet. A setting is KEY=VALUE[,KEY=VALUE...] of stylize's "
        "options with underscores, e.g. style_weight=3e4,preserve_color=luminance.",
    )
    _add_compare_arguments(compare)
    compare.set_defaults(handler=_run_compare)

    from .recommend import SITUATIONS

    recommend = commands.add_parser(
        "recommend",
        help="which method fits your situation, with reasons and starting parameters",
        description="Say what you need; get the recommended methods, why, their trade-offs, "
        "the parameters to start from, and whether they are installed here.",
    )
    for situation in SITUATIONS:
        recommend.add_argument(
            "--" + situation.replace("_", "-"), dest=situation, action="store_true",
            help=_SITUATION_HELP.get(situation, situation.replace("_", " ")),
        )  # fmt: skip
    recommend.add_argument("--json", action="store_true", help="print JSON instead of text")
    recommend.set_defaults(handler=_run_recommend)
    return parser


_SITUATION_HELP = {
    "quality": "one best-quality result, time is no object",
    "realtime": "real-time speed (many images, live camera)",
    "video": "video with temporal consistency",
    "arbitrary_style": "any new style image without training",
    "photorealistic": "keep the result photographic",
    "text_prompt": "describe the result with a text prompt",
    "brand_consistency": "the same style across many images (a brand)",
    "no_content_leak": "stop the style image's content leaking into the result",
}


def _run_recommend(args: argparse.Namespace, terminal: Terminal) -> int:
    import json

    from .recommend import SITUATIONS, format_recommendations, recommend

    chosen = [situation for situation in SITUATIONS if getattr(args, situation)]
    recommendations = recommend(chosen)
    if args.json:
        print(json.dumps([r.to_dict() for r in recommendations], indent=2, ensure_ascii=False))
    else:
        print(format_recommendations(recommendations))
    return 0


def _add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
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
        "meanstd_distance, color_distance, clip_content, clip_style, artfid",
    )
    parser.add_argument(
        "--clip-weights",
        dest="clip_weights",
        metavar="PATH",
        help="CLIP weights for the clip_* metrics (default: $IMPASTO_CLIP_WEIGHTS, else the "
        "file `impasto download clip-vit-b32` caches)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


# --------------------------------------------------------------------------- output


class Terminal:
    """Where the CLI talks to the user: plain lines on stderr, rich bars when it is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.live = None  # the rich Progress currently drawn, if any

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal

    def line(self, text: str) -> None:
        """One plain line on stderr (printed above a live progress bar when there is one)."""
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr, flush=True)


def _one_line(error: BaseException) -> str:
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def _download_with_progress(
    spec, terminal: Terminal, *, quiet: bool = False, cached_ok: bool = True
) -> Path:
    """Fetch ``spec`` with a byte progress bar, announcing the download in one line.

    ``cached_ok``: return a cached file as it is (``weights.ensure``), else always download.
    """
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from . import weights

    state: dict[str, typing.Any] = {"task": None, "tenth": 0}
    bar = None
    if terminal.interactive and not quiet:
        bar = Progress(
            TextColumn(spec.name),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=terminal.console,
        )

    def progress(done: int, total: int) -> None:
        if state["task"] is None:  # first call: the server answered
            terminal.line(
                f"downloading {spec.name} weights ({_megabytes(total)}) from {spec.url} "
                f"into {weights.weights_dir()}"
            )
            state["task"] = True
            if bar is not None:
                bar.start()
                terminal.live = bar
                state["task"] = bar.add_task(spec.name, total=total)
        if bar is not None:
            bar.update(state["task"], completed=done, total=total)
        elif not quiet and total and done * 10 // total > state["tenth"]:
            state["tenth"] = done * 10 // total
            terminal.line(f"  {done * 100 // total}% of {_megabytes(total)}")

    try:
        if cached_ok:
            return weights.ensure(spec, progress=progress)
        return weights.download(spec, progress=progress)
    finally:
        if bar is not None:
            bar.stop()
            terminal.live = None


def _downloadable() -> dict:
    """Name -> WeightSpec of the weights ``impasto download`` can fetch."""
    from . import weights

    return {spec.name: spec for spec in (weights.VGG19, weights.CLIP_VIT_B32)}


# --------------------------------------------------------------------------- stylize


class StylizeProgress:
    """Progress callback for ``stylize``: a rich bar (or plain lines), and --save-every files."""

    def __init__(
        self, terminal: Terminal, output: Path, inputs: Sequence[str], alpha, quiet: bool
    ) -> None:
        self.terminal, self.output, self.inputs, self.alpha = terminal, output, inputs, alpha
        self.quiet = quiet
        self.bar = None
        self.task = None
        self.stage = None
        self.tenth = 0

    def __enter__(self) -> StylizeProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.terminal.live = None

    @staticmethod
    def describe_losses(losses: dict[str, float]) -> str:
        names = [name for name in ("style", "content", "total") if name in losses]
        return "  ".join(f"{name} {losses[name]:.3g}" for name in names)

    def __call__(self, event) -> None:
        if event.image is not None:
            self.save_preview(event)
        if self.quiet:
            return
        losses = self.describe_losses(event.losses)
        if self.terminal.interactive:
            self.draw(event, losses)
            return
        # Not a terminal (a log file, CI): a line per stage and per tenth of the job.
        tenth = event.step * 10 // max(1, event.total)
        if event.stage != self.stage or tenth > self.tenth:
            self.stage, self.tenth = event.stage, tenth
            self.terminal.line(f"{event.stage}: step {event.step}/{event.total}  {losses}")

    def draw(self, event, losses: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        if self.bar is None:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[losses]}"),
                console=self.terminal.console,
            )
            self.bar.start()
            self.terminal.live = self.bar
            self.task = self.bar.add_task(event.stage, total=event.total, losses="")
        self.bar.update(
            self.task,
            completed=event.step,
            total=event.total,
            description=event.stage,
            losses=losses,
        )

    def save_preview(self, event) -> None:
        """Write ``<stem>.step<NNNN><suffix>`` next to the output (atomically)."""
        from . import images

        out = self.output
        path = images.check_output_path(
            out.with_name(f"{out.stem}.step{event.step:04d}{out.suffix}"), inputs=self.inputs
        )
        alpha = self.alpha
        if alpha is not None:
            alpha = images.resize_to(alpha, *event.image.shape[-2:])
        images.save_image(event.image, path, alpha=alpha)


def _style_layers(pairs: Sequence[tuple[str, float]] | None) -> dict[str, float] | None:
    if pairs is None:
        return None
    layers: dict[str, float] = {}
    for name, weight in pairs:
        if name in layers:
            raise InputError(f"--style-layers: layer '{name}' is given twice")
        layers[name] = weight
    return layers


def _run_stylize(args: argparse.Namespace, terminal: Terminal) -> int:
    from . import api, images
    from .backbones import resolve_backbone_name
    from .config import validate_config
    from .devices import resolve_device
    from .methods.fast import FastConfig
    from .methods.gatys import GatysConfig

    fields = dataclasses.fields(GatysConfig)
    given = {
        f.name: getattr(args, f.name)
        for f in fields
        if f.metadata.get("cli", True) and hasattr(args, f.name)
    }
    shared = {f.name for f in dataclasses.fields(FastConfig)}
    if args.method == "fast":
        extra = [name for name in given if name not in shared]
        extra += [name for name in ("style_blend", "content_layers", "style_layers", "weights")
                  if getattr(args, name) is not None]  # fmt: skip
        if extra:
            flags = ", ".join("--" + name.replace("_", "-") for name in extra)
            raise InputError(f"{flags}: not an option of --method fast (the style is in the model)")
        from . import cli_fast

        return cli_fast.run_stylize(args, terminal, given)
    if args.model is not None:
        raise InputError("--model is an option of --method fast")
    if not args.styles:
        raise InputError("give at least one STYLE image after CONTENT")

    started = time.perf_counter()
    inputs = [args.content, *args.styles]

    # 1. Option values (cheap): nothing is read or loaded before these are right.
    options = dict(given)
    options["style_blend"] = args.style_blend
    options["content_layers"] = args.content_layers
    options["style_layers"] = _style_layers(args.style_layers)
    config = GatysConfig(**options)
    validate_config(config)
    if config.style_blend is not None and len(config.style_blend) != len(args.styles):
        raise InputError(
            f"--style-blend has {len(config.style_blend)} weight(s) for "
            f"{len(args.styles)} style image(s); give one weight per style image"
        )
    weights_path = None
    if args.weights is not None:
        weights_path = Path(args.weights).expanduser()
        if not weights_path.is_file():
            problem = "it is a directory" if weights_path.is_dir() else "file not found"
            raise InputError(f"--weights '{args.weights}': {problem}")
    resolve_device(config.device)  # e.g. --device cuda without a GPU

    # 2. The output path and every input image: bad files fail here, in well under a second.
    output = images.check_output_path(args.output, inputs=inputs)
    content = images.load_image(args.content, max_pixels=args.max_pixels)
    styles = [images.load_image(path, max_pixels=args.max_pixels) for path in args.styles]

    # 3. The backbone: resolve 'auto' once (it may probe the network) and download VGG-19 with
    #    a visible progress bar rather than silently inside the library.
    backbone = resolve_backbone_name(config.backbone, weights=weights_path, notify=terminal.line)
    spec = _downloadable().get(backbone)
    if spec is not None and weights_path is None:
        _download_with_progress(spec, terminal, quiet=args.quiet)
    options["backbone"] = backbone

    # 4. The work.
    with StylizeProgress(terminal, output, inputs, content.alpha, args.quiet) as progress:
        result = api.stylize(
            content,
            styles,
            method=args.method,
            weights=weights_path,
            progress=progress,
            notify=terminal.line,
            **options,
        )
    images.save_image(result.image, output, alpha=result.alpha)
    height, width = result.image.shape[-2:]
    seconds = time.perf_counter() - started
    terminal.line(
        f"wrote {output} ({width}x{height}) in {seconds:.1f} s — {result.backbone} on "
        f"{result.device}"
    )
    return 0


# --------------------------------------------------------------------------- download


def _run_download(args: argparse.Namespace, terminal: Terminal) -> int:
    from . import weights
    from .backbones import BACKBONES

    name = args.name
    specs = _downloadable()
    if name not in specs:
        entry = BACKBONES.get(name)
        if entry is None:
            raise InputError(
                f"cannot download '{name}': unknown name; choose from: {', '.join(specs)}"
            )
        if _has_random_weights(entry):
            print(f"{name} has random weights: nothing to download")
            return 0
        from .backbones import weights_available

        if not weights_available(name):
            raise WeightsError(f"{name} weights are missing here; they are {entry.weights}")
        print(f"{name} needs no download: its weights are {entry.weights}")
        return 0

    spec = specs[name]
    cached = weights.cached_path(spec)
    if cached is not None:
        try:
            weights.verify(cached, spec)
        except WeightsError as error:
            terminal.line(f"the cached file is damaged ({_one_line(error)}); downloading again")
        else:
            print(f"{name} weights are already cached: {cached}")
            return 0
    path = _download_with_progress(spec, terminal, cached_ok=False)  # replaces atomically
    print(f"{name} weights ({spec.license}) stored in {path}")
    return 0


# --------------------------------------------------------------------------- backbones


def _has_random_weights(entry) -> bool:
    return "random" in entry.license.lower()


def _run_backbones(args: argparse.Namespace, terminal: Terminal) -> int:
    from . import weights
    from .backbones import BACKBONES, weights_available

    header = ("name", "licence", "weights here", "weights from", "description")
    rows = []
    for entry in BACKBONES.values():
        if _has_random_weights(entry):
            here = "random"
        else:
            here = "yes" if weights_available(entry.name) else "no"
        rows.append((entry.name, entry.license, here, entry.weights, entry.description))

    # Decided without touching the network (stylize may still download VGG-19 first).
    cached = weights.cached_path(weights.VGG19)
    if cached is not None:
        auto = f"auto -> vgg19 (weights cached in {cached})"
    elif weights.is_offline():
        auto = "auto -> efficientnet-lite0 (VGG-19 weights not cached; IMPASTO_OFFLINE is set)"
    else:
        auto = (
            "auto -> efficientnet-lite0 (VGG-19 weights not cached); when the download server "
            "is reachable, stylize downloads VGG-19 first (run `impasto download vgg19` to do "
            "it now)"
        )

    from rich.console import Console

    console = Console()
    if console.is_terminal:
        from rich.table import Table

        table = Table()
        for index, title in enumerate(header):
            fixed = index in (0, 2)  # name and "weights here" are short: never cut them
            table.add_column(
                title, no_wrap=fixed, overflow="fold", min_width=len(title) if fixed else None
            )
        for row in rows:
            table.add_row(*row)
        console.print(table)
        console.print(auto, markup=False, highlight=False)
    else:
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
        for row in (header, *rows):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            print("  ".join([*cells, row[-1]]))
        print(auto)
    return 0


# --------------------------------------------------------------------------- evaluate


def _run_evaluate(args: argparse.Namespace, terminal: Terminal) -> int:
    import json

    from . import metrics

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

    header = ("metric", "value", "direction", "meaning")
    rows = [
        (
            name,
            f"{value:.4f}",
            metrics.DIRECTION_TEXT[metrics.METRICS[name].direction],
            metrics.METRICS[name].description,
        )
        for name, value in report.metrics.items()
    ]
    footer = [f"backbone: {report.backbone}"]
    footer += [f"{name}: {reason}" for name, reason in report.unavailable.items()]

    from rich.console import Console

    console = Console()
    if console.is_terminal:
        from rich.table import Table

        table = Table()
        for index, title in enumerate(header):
            table.add_column(title, no_wrap=index < 3, justify="right" if index == 1 else "left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        for line in footer:
            console.print(line, markup=False, highlight=False)
    else:
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
        for row in (header, *rows):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            print("  ".join([*cells, row[-1]]))
        for line in footer:
            print(line)
    return 0


# --------------------------------------------------------------------------- compare


def _add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    # Values are checked by the library (impasto.compare), which would import torch here.
    parser.add_argument("content", metavar="CONTENT", help="content image (the photo)")
    parser.add_argument("style", metavar="STYLE", help="style image")
    parser.add_argument(
        "--settings",
        required=True,
        nargs="+",
        metavar="S",
        help="one setting per result, e.g. style_weight=1e3 style_weight=1e5,tv_weight=0",
    )
    parser.add_argument(
        "--grid-out", dest="grid_out", required=True, metavar="SHEET", help="contact sheet image"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    parser.add_argument("--csv", metavar="FILE", help="also write the scores as CSV")
    parser.add_argument("--size", type=_positive_int, metavar="N", help="long side of each result")
    parser.add_argument("--steps", type=_positive_int, metavar="N", help="optimiser steps")
    parser.add_argument("--backbone", metavar="NAME", help="feature network for stylising")
    parser.add_argument("--seed", type=int, metavar="N", help="random seed shared by every run")


def _check_report_path(text: str, option: str, inputs: Sequence[str]) -> Path:
    path = Path(text).expanduser()
    if path.is_dir():
        raise InputError(f"{option} '{text}': it is a directory")
    if not path.parent.is_dir():
        raise InputError(f"{option} '{text}': folder '{path.parent}' does not exist")
    if any(Path(item).expanduser().resolve() == path.resolve() for item in inputs):
        raise InputError(f"{option} '{text}' would overwrite an input image")
    return path


def _run_compare(args: argparse.Namespace, terminal: Terminal) -> int:
    from . import compare, images
    from .backbones import resolve_backbone_name

    inputs = [args.content, args.style]
    # 1. Settings and paths (cheap): nothing is stylised before these are right.
    base = {
        name: getattr(args, name)
        for name in ("size", "steps", "backbone", "seed")
        if getattr(args, name) is not None
    }
    from .config import validate_config
    from .methods.gatys import GatysConfig

    validate_config(GatysConfig(**base))
    parsed = compare.parse_settings(args.settings)
    grid = images.check_output_path(args.grid_out, inputs=inputs)
    report_paths = [grid]
    for option, text in (("--json", args.json), ("--csv", args.csv)):
        if text is not None:
            path = _check_report_path(text, option, inputs)
            if path.resolve() in {p.resolve() for p in report_paths}:
                raise InputError(f"{option} '{text}' is also another output")
            report_paths.append(path)
    content = images.load_image(args.content)
    style = images.load_image(args.style)

    # 2. Resolve 'auto' and fetch VGG-19 with a visible progress bar, as stylize does.
    for _, options in parsed:
        name = options.get("backbone", base.get("backbone", "auto"))
        resolved = resolve_backbone_name(name, notify=terminal.line)
        spec = _downloadable().get(resolved)
        if spec is not None:
            _download_with_progress(spec, terminal)
        if "backbone" in options:
            options["backbone"] = resolved
        else:
            base["backbone"] = resolved

    def finished(index: int, total: int, row) -> None:
        height, width = row.image.shape[-2:]
        terminal.line(
            f"[{index + 1}/{total}] {row.label}: {width}x{height} in {row.seconds:.1f} s  "
            f"{compare.format_metrics(row.metrics)}"
        )

    result = compare.compare(content, style, parsed, base, progress=finished,
                             notify=terminal.line)  # fmt: skip
    sheet = compare.contact_sheet(result.content, result.style, result.rows)
    images.save_image(compare.pil_to_tensor(sheet), grid)
    compare.write_report(result.rows, json_path=args.json, csv_path=args.csv)
    terminal.line(f"wrote {grid} ({sheet.width}x{sheet.height})")
    return 0


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except UsageError as error:
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help, --version
        return exit_.code if isinstance(exit_.code, int) else 0

    terminal = Terminal()
    try:
        return args.handler(args, terminal)
    except ImpastoError as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        print(
            f"{PROG}: internal error: {type(error).__name__}: {_one_line(error)} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
