"""The command line of fast style transfer: ``train fast``, ``stylize --method fast`` and
``export``. Same rules as ``impasto.cli``: one error line and exit 2 for anything a user can
fix, Ctrl-C exits 130 and loses no work.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from .cli import (
    Parser,
    StylizeProgress,
    Terminal,
    _add_config_flags,
    _download_with_progress,
    _downloadable,
)
from .errors import ImpastoError, InputError

# --------------------------------------------------------------------------- train


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """The kinds of ``impasto train`` and their flags (imports torch: only for that command)."""
    kinds = train.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=Parser)
    fast = kinds.add_parser(
        "fast",
        help="Johnson et al.'s transformation network for one style image",
        description="Train a feed-forward network that paints any photo in the style of STYLE, "
        "on random crops of the photos under DATA (searched recursively). Checkpoints go to "
        "MODEL_DIR/training/ every --checkpoint-every steps; Ctrl-C saves one and stops; "
        "--resume continues bit for bit.",
    )
    fast.add_argument("--style", required=True, metavar="STYLE", help="the style image")
    fast.add_argument("--data", required=True, metavar="DIR", help="folder of training photos")
    fast.add_argument("-o", "--output", required=True, metavar="MODEL_DIR",
                      help="model folder to write")  # fmt: skip
    fast.add_argument("--data-note", dest="data_note", metavar="TEXT",
                      help="where the photos come from and on what terms (kept in the model's "
                      "metadata)")  # fmt: skip
    fast.add_argument("--resume", action="store_true",
                      help="continue the interrupted run in MODEL_DIR")  # fmt: skip
    fast.add_argument("--max-pixels", dest="max_pixels", type=int, metavar="N",
                      help="skip training photos with more pixels than this")  # fmt: skip
    fast.add_argument("--quiet", action="store_true", help="no progress bar")
    from .methods.fast import FastTrainConfig

    _add_config_flags(fast.add_argument_group("training options"), FastTrainConfig)
    fast.set_defaults(handler=run_train)


class TrainProgress(StylizeProgress):
    """The stylize progress bar without preview files (training writes its own), and a stop
    request: after the first Ctrl-C the next step boundary saves a checkpoint and stops."""

    def __init__(self, terminal: Terminal, quiet: bool) -> None:
        super().__init__(terminal, Path("model"), (), None, quiet)
        self.stop_requested = False

    def save_preview(self, event) -> None:
        pass

    def __call__(self, event) -> bool:
        super().__call__(event)
        return not self.stop_requested


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def run_train(args: argparse.Namespace, terminal: Terminal) -> int:
    from . import images
    from .backbones import resolve_backbone_name
    from .config import validate_config
    from .devices import resolve_device
    from .errors import Cancelled
    from .methods import fast
    from .model_folder import check_destination
    from .photos import PhotoSet

    options = {f.name: getattr(args, f.name) for f in fields(fast.FastTrainConfig)}
    config = fast.FastTrainConfig(**options)
    validate_config(config)
    resolve_device(config.device)
    folder = check_destination(Path(args.output).expanduser())
    if (folder / fast.CHECKPOINT).exists() and not args.resume:  # before reading any photo
        raise InputError(
            f"{folder} already holds a training checkpoint; add --resume to continue it, or "
            "choose another folder"
        )
    style_path = Path(args.style).expanduser()
    style = images.load_image(style_path, max_pixels=args.max_pixels)
    style_info = {
        "file": style_path.name,
        "sha256": _sha256_file(style_path),
        "width": int(style.rgb.shape[-1]),
        "height": int(style.rgb.shape[-2]),
    }

    state = {"tenth": -1}

    def reading(done: int, total: int) -> None:
        if not args.quiet and (done * 10 // total > state["tenth"]):
            state["tenth"] = done * 10 // total
            terminal.line(f"reading training photos: {done}/{total}")

    photos = PhotoSet.load(args.data, config.size, max_pixels=args.max_pixels, on_photo=reading)
    if photos.skipped:
        terminal.line(
            f"skipped {len(photos.skipped)} unreadable file(s) of "
            f"{len(photos.skipped) + len(photos.photos)} (first: {photos.skipped[0]})"
        )
    backbone = resolve_backbone_name(config.backbone, notify=terminal.line)
    spec = _downloadable().get(backbone)
    if spec is not None:
        _download_with_progress(spec, terminal, quiet=args.quiet)
    config.backbone = backbone

    started = time.perf_counter()
    progress = TrainProgress(terminal, args.quiet)

    stopped_by: list[int] = []

    def request_stop(signum, frame) -> None:
        if progress.stop_requested:  # a second signal: stop now, from the last checkpoint
            raise KeyboardInterrupt
        progress.stop_requested = True
        stopped_by.append(signum)
        again = "Ctrl-C again" if signum == signal.SIGINT else "another signal"
        terminal.line(f"stopping after this step ({again} to stop at once)...")

    # Ctrl-C, and SIGTERM (kill, timeout, batch schedulers): finish the step, save, stop.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with progress:
            result = fast.train(style.rgb, photos, folder, config, resume=args.resume,
                                style_info=style_info, data_note=args.data_note,
                                progress=progress,
                                notify=terminal.line)  # fmt: skip
    except Cancelled as stopped:
        terminal.line(
            f"{stopped}; checkpoint saved in {folder / fast.CHECKPOINT}. Continue with the same "
            "command and --resume"
        )
        if stopped_by and stopped_by[0] == signal.SIGTERM:
            terminal.line("impasto: terminated")
            return 128 + signal.SIGTERM  # 143, the shell's code for a SIGTERM
        raise KeyboardInterrupt from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    seconds = time.perf_counter() - started
    trained = result.steps - result.resumed_from
    rate = trained * config.batch / max(seconds, 1e-9)
    done = f"{seconds:.0f} s, {rate:.1f} images/s" if trained else "no steps left to train"
    terminal.line(f"wrote {folder} (step {result.steps}, {done}) — {result.backbone} on "
                  f"{result.device}")  # fmt: skip
    return 0


# --------------------------------------------------------------------------- stylize


def _expand_inputs(items: Sequence[str]) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for each input file or folder."""
    from .photos import PHOTO_EXTENSIONS, find_photos

    expanded = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = find_photos(path)
            if not found:
                raise InputError(f"no images ({', '.join(PHOTO_EXTENSIONS)}) found in {path}")
            expanded.extend((file, file.relative_to(path)) for file in found)
        else:
            expanded.append((path, Path(path.name)))
    return expanded


def _output_name(relative: Path) -> Path:
    from .images import OUTPUT_FORMATS

    suffix = relative.suffix.lower()
    return relative if suffix in OUTPUT_FORMATS else relative.with_suffix(".png")


def run_stylize(args: argparse.Namespace, terminal: Terminal, given: dict) -> int:
    """``impasto stylize --method fast --model M INPUT... -o OUT``. ``given``: the shared
    option flags (size, preserve_color, device, precision) the user set."""
    from . import images
    from .config import validate_config
    from .methods import fast

    started = time.perf_counter()
    if args.model is None:
        raise InputError("--method fast needs --model MODEL_DIR (or a shipped model's name)")
    config = fast.FastConfig(**given)
    validate_config(config)
    if args.batch < 1:
        raise InputError(f"--batch: {args.batch} is below the minimum 1")
    inputs = [args.content, *args.styles]
    jobs = _expand_inputs(inputs)
    output = Path(args.output).expanduser()
    single = len(jobs) == 1 and not Path(inputs[0]).is_dir() and output.suffix != ""
    if single:
        targets = [images.check_output_path(output, inputs=[jobs[0][0]])]
    else:
        if output.suffix.lower() in images.OUTPUT_FORMATS:
            raise InputError(
                f"{len(jobs)} input images need an output folder, not the file '{output}'"
            )
        if output.exists() and not output.is_dir():
            raise InputError(f"output '{output}' exists and is not a folder")
        if not output.parent.is_dir():
            raise InputError(f"output folder {output.parent} does not exist")
        targets = [output / _output_name(relative) for _, relative in jobs]
        sources = {file.resolve() for file, _ in jobs}
        clash = next((t for t in targets if t.resolve() in sources), None)
        if clash is not None:
            raise InputError(f"output '{clash}' would overwrite an input image")
    model = fast.load_model(args.model)
    stylizer = fast.Stylizer(model, config.device, config.precision, compile=config.compile)

    loaded: list[tuple[Path, Path, object]] = []
    skipped: list[str] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if not loaded:
            return
        import torch

        batch = torch.cat([image.rgb for _, _, image in loaded])
        results = stylizer(batch)
        for (source, target, image), result in zip(loaded, results, strict=True):
            result = fast.apply_color(result[None], image.rgb, config.preserve_color)
            target.parent.mkdir(parents=True, exist_ok=True)
            images.save_image(result, target, alpha=image.alpha)
            done += 1
            if not args.quiet and not single:
                terminal.line(f"[{done}/{len(jobs)}] {source.name} -> {target}")
        loaded.clear()

    for (source, _), target in zip(jobs, targets, strict=True):
        try:
            image = images.load_image(source, max_pixels=args.max_pixels)
            if config.size is not None:
                rgb = images.resize_long_side(image.rgb, config.size)
                alpha = image.alpha
                if alpha is not None:
                    alpha = images.resize_to(alpha, *rgb.shape[-2:])
                image = images.LoadedImage(rgb=rgb, alpha=alpha, path=image.path)
            if min(image.rgb.shape[-2:]) < fast.MIN_SIDE:
                raise InputError(f"{source.name} is smaller than {fast.MIN_SIDE} pixels on a side")
        except ImpastoError as error:
            if single:
                raise
            skipped.append(f"{source.name} ({error})")
            continue
        if loaded and (loaded[0][2].rgb.shape != image.rgb.shape or len(loaded) >= args.batch):
            flush()
        loaded.append((source, target, image))
    flush()
    seconds = time.perf_counter() - started
    if skipped:
        terminal.line(f"skipped {len(skipped)} bad file(s): {'; '.join(skipped[:3])}")
    if done == 0:
        raise InputError(f"none of the {len(jobs)} input images could be stylised")
    where = targets[0] if single else output
    terminal.line(
        f"wrote {where} ({done} image{'s' if done != 1 else ''}) in {seconds:.1f} s — "
        f"fast model {model.path.name} on {stylizer.device}"
    )
    return 0


# --------------------------------------------------------------------------- export


def add_export_parser(commands) -> None:
    from .export import DEFAULT_OPSET, EXPORT_FORMATS

    export = commands.add_parser(
        "export",
        help="export a trained model (ONNX)",
        description="Write MODEL (a model folder or a shipped model's name) as an ONNX graph: "
        "input 'image' float32 (N, 3, H, W) in [0, 1], output 'stylized'; N, H, W dynamic.",
    )
    export.add_argument("model", metavar="MODEL", help="model folder or shipped model name")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="onnx",
                        help="export format (default: %(default)s)")  # fmt: skip
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    export.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                        help="ONNX opset (default: %(default)s)")  # fmt: skip
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace, terminal: Terminal) -> int:
    from .export import export_onnx
    from .methods import fast

    output = Path(args.output).expanduser()
    if output.suffix.lower() != ".onnx":
        raise InputError(f"ONNX output must end in .onnx, got '{output.name}'")
    if not output.parent.is_dir():
        raise InputError(f"output folder {output.parent} does not exist")
    model = fast.load_model(args.model)
    started = time.perf_counter()
    path = export_onnx(model.network, output, opset=args.opset)
    size = path.stat().st_size / 1e6
    terminal.line(f"wrote {path} ({size:.1f} MB) in {time.perf_counter() - started:.1f} s")
    return 0
