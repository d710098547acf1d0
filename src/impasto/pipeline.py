"""Orchestration for every front end (the Python API, the CLI, compare; video and the studio
next): options into a checked config, ``prepare`` (resolve ``auto`` backbones, fetch weights
with progress, load a method once), run on one image, or on files and folders with
impasto.batch.

Every step reports through one progress callback (impasto.progress: download, stage, step,
item and done events; returning False cancels). Validation happens here, once: a front end
passes the user's options to ``make_config`` and gets the one message for each mistake.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .backbones import download_spec, load_backbone, resolve_backbone_name
from .config import validate_config
from .errors import InputError, WeightsError
from .images import LoadedImage, load_image, resize_to
from .methods.base import Prepared, StyleResult
from .methods.registry import entry, load_method
from .progress import ProgressCallback, ProgressEvent, report

Notify = Callable[[str], None]
ImageLike = str | os.PathLike | torch.Tensor | LoadedImage


def as_image(image: ImageLike, max_pixels: int | None = None) -> LoadedImage:
    """A path (read with impasto.images.load_image), a tensor ((1, 3, H, W) or (3, H, W) in
    [0, 1]) or a LoadedImage, as a LoadedImage."""
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, torch.Tensor):
        if image.ndim == 3:
            image = image.unsqueeze(0)
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise InputError(f"images must be (1, 3, H, W) tensors, got {tuple(image.shape)}")
        return LoadedImage(rgb=image.float(), alpha=None, path=Path("<tensor>"))
    return load_image(image, max_pixels=max_pixels)


def make_config(method: str, options: Mapping[str, Any], style_count: int | None = None) -> Any:
    """``method``'s config from ``options`` (its config fields), checked once: unknown options,
    each value against its field's choices and range, then the method's own checks.
    ``style_count``: how many style images come with it (None: not known yet)."""
    row = entry(method)
    method_object = load_method(method)
    config_class = method_object.config_class
    names = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise InputError(f"unknown option(s) for method '{method}': {', '.join(unknown)}")
    if style_count is not None:
        if row.takes_styles and style_count < 1:
            raise InputError(f"method '{method}' needs at least one style image")
        if not row.takes_styles and style_count > 0:
            raise InputError(f"method '{method}' takes no style images: the style is in the model")
    config = config_class(**options)
    validate_config(config)
    method_object.check(config, style_count)
    return config


def fetch_weights(spec, progress: ProgressCallback | None = None, *, again: bool = False) -> Path:
    """The cached file of ``spec`` (an impasto.weights.WeightSpec), downloading it first when
    missing (``again``: always), with ``download`` events (bytes) to ``progress``."""
    from . import weights

    def bytes_done(done: int, total: int) -> None:
        report(progress, ProgressEvent(spec.name, done, total, kind="download", item=spec.url))

    if again:
        return weights.download(spec, progress=bytes_done)
    return weights.ensure(spec, progress=bytes_done)


def resolve_backbone(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    notify: Notify | None = None,
) -> str:
    """Turn ``auto`` into a backbone name (saying a fallback through ``notify``) and fetch its
    weights (with download events) unless a local ``weights`` file is given.

    Cached weights are checked against their sha256 first (impasto.weights.verified_path): for a
    named backbone a file that does not match is a WeightsError; ``auto`` falls back instead."""
    local = Path(weights).expanduser() if weights else None
    if name == "auto" and local is None:
        name = _auto_past_damaged_weights(notify)
    resolved = resolve_backbone_name(name, weights=local, notify=notify)
    spec = download_spec(resolved)
    if spec is not None and local is None:
        fetch_weights(spec, progress)
    return resolved


def _auto_past_damaged_weights(notify: Notify | None) -> str:
    """``auto``, or its offline fallback when the cached weights of its first choice (vgg19) do
    not match their sha256: that file is not used, and not downloaded over behind the user's
    back (it may be theirs); one line says which file and how to fix it."""
    from . import weights as weight_store

    preferred = "vgg19"  # auto's first choice, see impasto.backbones.resolve_backbone_name
    try:
        weight_store.verified_path(download_spec(preferred))
    except WeightsError as error:
        fallback = resolve_backbone_name("auto", probe=lambda: False)  # no network
        if notify is not None:
            notify(f"Using {fallback} instead of {preferred}: {error}")
        return fallback
    return "auto"


def prepare(
    method: str,
    config: Any,
    styles: Sequence[ImageLike] = (),
    *,
    progress: ProgressCallback | None = None,
    notify: Notify | None = None,
    max_pixels: int | None = None,
) -> Prepared:
    """``method`` ready to run on many images: its backbone resolved, fetched and loaded (for
    configs with a ``backbone`` field), then the method's own ``prepare``. ``config``: from
    ``make_config``; ``styles``: paths, tensors or LoadedImages."""
    method_object = load_method(method)
    style_images = [as_image(style, max_pixels).rgb for style in styles]
    backbone = None
    if hasattr(config, "backbone"):
        weights = getattr(config, "weights", None)
        name = resolve_backbone(config.backbone, weights=weights, progress=progress, notify=notify)
        config = dataclasses.replace(config, backbone=name)
        report(progress, ProgressEvent(f"loading {name}", 0, 0, kind="stage"))
        local = Path(weights).expanduser() if weights else None
        backbone = load_backbone(name, weights=local, notify=notify)
    report(progress, ProgressEvent(f"preparing {method}", 0, 0, kind="stage"))
    return method_object.prepare(config, style_images, backbone=backbone, notify=notify)


def stylize_one(
    prepared: Prepared, content: LoadedImage, progress: ProgressCallback | None = None
) -> StyleResult:
    """Run ``prepared`` on one image; the result carries the content's alpha (resized to the
    output) and the whole time taken."""
    started = time.perf_counter()
    result = prepared.checked_run(content.rgb, progress)
    if content.alpha is not None:
        result.alpha = resize_to(content.alpha, *result.image.shape[-2:])
    result.method = result.method or prepared.method
    result.seconds = time.perf_counter() - started
    report(progress, ProgressEvent("done", 1, 1, kind="done"))
    return result


def train_model(
    kind: str,
    config: Any,
    folder: str | os.PathLike,
    *,
    style: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    resume: bool = False,
    data_note: str | None = None,
    max_pixels: int | None = None,
    progress: ProgressCallback | None = None,
    notify: Notify | None = None,
):
    """Train a model of method ``kind`` (a row that trains) into ``folder``: reads the style
    image (its file's sha256 goes into the metadata) and the photos under ``data`` (``item``
    events while reading), resolves and fetches the loss network, then runs the method's
    training (``step`` events; a cancel saves a checkpoint). ``config``: the method's
    ``train_config_class``, checked here."""
    from .devices import resolve_device
    from .files import check_writable, sha256_of
    from .model_folder import check_destination
    from .photos import PhotoSet
    from .training import CHECKPOINT, read_checkpoint, refuse_to_overwrite

    if not entry(kind).trains:
        raise InputError(f"method '{kind}' does not train")
    method_object = load_method(kind)
    validate_config(config)  # cheap checks first: nothing is read before these are right
    if hasattr(config, "device"):
        resolve_device(config.device)
    # Before anything slow: a read-only or full disk, or a file in the way, is found now.
    target = check_destination(Path(folder).expanduser())
    check_writable(target / CHECKPOINT, parents=True)  # training/ may be read-only itself
    if (target / CHECKPOINT).exists() and not resume:  # found without loading it
        refuse_to_overwrite(target)
    if resume and not (target / CHECKPOINT).is_file():
        raise InputError(f"nothing to resume: {target / CHECKPOINT} does not exist")
    if resume:
        read_checkpoint(target)  # a malformed checkpoint is found before any photo is read
    info: dict[str, Any] = {"data_note": data_note}
    style_rgb = None
    if "style" in method_object.training_inputs:
        if style is None:
            raise InputError(f"training '{kind}' needs a style image (--style)")
        style_path = Path(style).expanduser()
        loaded = load_image(style_path, max_pixels=max_pixels)
        style_rgb = loaded.rgb
        info["style"] = {
            "file": style_path.name,
            "sha256": sha256_of(style_path),
            "width": int(style_rgb.shape[-1]),
            "height": int(style_rgb.shape[-2]),
        }
    photos = None
    if "data" in method_object.training_inputs:
        if data is None:
            raise InputError(f"training '{kind}' needs a folder of photos (--data)")

        def reading(done: int, total: int) -> None:
            report(progress, ProgressEvent("reading training photos", done, total, kind="item"))

        photos = PhotoSet.load(data, config.size, max_pixels=max_pixels, on_photo=reading)
        if photos.skipped and notify is not None:
            notify(
                f"skipped {len(photos.skipped)} unreadable or too large file(s) of "
                f"{len(photos.skipped) + len(photos.photos)} (first: {photos.skipped[0]})"
            )
    backbone = None  # the loss network, resolved, fetched and loaded as ``prepare`` does
    if hasattr(config, "backbone"):
        config.backbone = resolve_backbone(config.backbone, progress=progress, notify=notify)
        report(progress, ProgressEvent(f"loading {config.backbone}", 0, 0, kind="stage"))
        backbone = load_backbone(config.backbone, notify=notify)
    return method_object.train(
        config,
        style=style_rgb,
        data=photos,
        folder=target,
        resume=resume,
        backbone=backbone,
        info=info,
        progress=progress,
        notify=notify,
    )
