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
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from . import provenance
from .backbones import download_spec, load_backbone, resolve_backbone_name
from .config import validate_config
from .errors import InputError, WeightsError
from .images import LoadedImage, load_image, pixel_cap, resize_to
from .images.encode import from_pil
from .methods.base import Prepared, StyleResult
from .methods.registry import entry, load_method, load_trainer
from .progress import ProgressCallback, ProgressEvent, report

if TYPE_CHECKING:
    from PIL.Image import Image

Notify = Callable[[str], None]
ImageLike = Union[str, os.PathLike, torch.Tensor, np.ndarray, "Image", LoadedImage]  # noqa: UP007
"""What every image argument takes: see ``as_image``."""

ACCEPTED = (
    "a file path, a PIL image, a numpy array (H x W x 3 or H x W, uint8 or float in [0, 1]) "
    "or a tensor ((3, H, W) or (1, 3, H, W), uint8 or float in [0, 1])"
)


def is_image(value: object) -> bool:
    """Whether ``value`` is one image argument (a path, PIL image, array, tensor or
    LoadedImage), as opposed to a list of them or something else."""
    if isinstance(value, str | os.PathLike | torch.Tensor | np.ndarray | LoadedImage):
        return True
    # PIL is the images package's to import: recognise its Image class by name
    return any(f"{c.__module__}.{c.__name__}" == "PIL.Image.Image" for c in type(value).__mro__)


def as_image(
    image: ImageLike, max_pixels: int | None = None, *, what: str = "image"
) -> LoadedImage:
    """Any image argument as a LoadedImage (rgb (1, 3, H, W) float32 in [0, 1], alpha):

    - a path: read with impasto.images.load_image (EXIF orientation, ICC -> sRGB, alpha);
    - a PIL image: any mode, alpha kept (values taken as sRGB);
    - a numpy array: H x W x 3 (RGB), H x W x 4 (RGBA) or H x W (grey), uint8 (0-255), uint16
      (0-65535) or float in [0, 1];
    - a tensor: (3, H, W) or (1, 3, H, W), uint8 or float in [0, 1];
    - a LoadedImage, as it is.

    Anything else, or values outside [0, 1], is an InputError naming ``what`` (e.g.
    "style image 2"). In-memory images are held to the same pixel cap as files."""
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, str | os.PathLike):
        return load_image(image, max_pixels=max_pixels)
    if isinstance(image, torch.Tensor):
        rgb, alpha, kind = _tensor_pixels(image, what), None, "tensor"
    elif isinstance(image, np.ndarray):
        (rgb, alpha), kind = _array_pixels(image, what), "array"
    elif is_image(image):  # what is left of them: a PIL image
        (rgb, alpha), kind = from_pil(image), "PIL image"
    else:
        raise InputError(f"{what}: expected {ACCEPTED}; got {type(image).__name__}")
    height, width = rgb.shape[-2:]
    cap = pixel_cap(max_pixels)
    if height * width > cap:
        raise InputError(f"{what}: {width}x{height} pixels is more than the limit of {cap}")
    if height * width == 0:
        raise InputError(f"{what}: the image is empty ({width}x{height} pixels)")
    return LoadedImage(rgb=rgb, alpha=alpha, path=Path(f"<{kind}>"))


def _checked_values(values: torch.Tensor, what: str) -> torch.Tensor:
    """uint8 -> / 255; floats must be finite and in [0, 1]; float32 out."""
    if values.numel() == 0:
        raise InputError(f"{what}: the image is empty (shape {tuple(values.shape)})")
    if values.dtype == torch.uint8:
        return values.float() / 255.0
    if not values.is_floating_point():
        raise InputError(f"{what}: pixel type {values.dtype} is not accepted; expected {ACCEPTED}")
    values = values.detach().float()
    if not bool(torch.isfinite(values).all()):
        raise InputError(f"{what}: the image holds NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low < 0.0 or high > 1.0:
        hint = " (divide 0-255 values by 255)" if high > 1.0 else ""
        raise InputError(f"{what}: float values must be in [0, 1], found {low:g} to {high:g}{hint}")
    return values


def _tensor_pixels(image: torch.Tensor, what: str) -> torch.Tensor:
    shape = tuple(image.shape)
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise InputError(f"{what}: a tensor must be (3, H, W) or (1, 3, H, W), got {shape}")
    return _checked_values(image.detach(), what).contiguous()


def _array_pixels(image: np.ndarray, what: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    shape = tuple(image.shape)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        first = image.ndim == 3 and image.shape[0] in (3, 4)
        hint = " (channels last, not first)" if first else ""
        raise InputError(f"{what}: an array must be H x W x 3 or H x W, got {shape}{hint}")
    if image.dtype == np.uint16:
        image = image.astype(np.float32) / 65535.0
    elif image.dtype != np.uint8 and image.dtype.kind != "f":
        raise InputError(f"{what}: pixel type {image.dtype} is not accepted; expected {ACCEPTED}")
    values = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]  # a copy: writable
    values = _checked_values(values, what)
    rgb, alpha = values[:, :3].contiguous(), values[:, 3:]
    if alpha.shape[1] == 0 or bool((alpha >= 1.0).all()):
        return rgb, None
    return rgb, alpha.contiguous()


def source_of(image: ImageLike) -> Path | None:
    """The file an image argument came from, or None for an image made in memory."""
    if isinstance(image, LoadedImage):
        text = str(image.path)
        return None if text.startswith("<") and text.endswith(">") else image.path
    if isinstance(image, str | os.PathLike):
        return Path(image)
    return None


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


def fetch_weights(
    spec,
    progress: ProgressCallback | None = None,
    *,
    again: bool = False,
    local_flag: str | None = "--weights",
) -> Path:
    """The cached file of ``spec`` (an impasto.weights.WeightSpec), downloading it first when
    missing (``again``: always), with ``download`` events (bytes) to ``progress``.
    ``local_flag``: the caller's option for a local copy, named in errors (None: it has none)."""
    from . import weights

    def bytes_done(done: int, total: int) -> None:
        report(progress, ProgressEvent(spec.name, done, total, kind="download", item=spec.url))

    if again:
        return weights.download(spec, progress=bytes_done, local_flag=local_flag)
    return weights.ensure(spec, progress=bytes_done, local_flag=local_flag)


def resolve_backbone(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    notify: Notify | None = None,
    local_flag: str | None = "--weights",
) -> str:
    """Turn ``auto`` into a backbone name (saying a fallback through ``notify``) and fetch its
    weights (with download events) unless a local ``weights`` file is given. ``local_flag``:
    the caller's option for a local weights file, named in errors (None: it has none).

    Cached weights are checked against their sha256 first (impasto.weights.verified_path): for a
    named backbone a file that does not match is a WeightsError; ``auto`` falls back instead."""
    local = Path(weights).expanduser() if weights else None
    if name == "auto" and local is None:
        name = _auto_past_damaged_weights(notify)
    resolved = resolve_backbone_name(name, weights=local, notify=notify)
    spec = download_spec(resolved)
    if spec is not None and local is None:
        fetch_weights(spec, progress, local_flag=local_flag)
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
    ``make_config``; ``styles``: any image arguments (``as_image``).

    The Prepared carries ``recipe`` (an impasto.provenance.Recipe: the config as it runs, the
    style files' sha256, the model's), which every image it makes records."""
    method_object = load_method(method)
    loaded = [
        as_image(style, max_pixels, what=_style_name(index, len(styles)))
        for index, style in enumerate(styles)
    ]
    backbone = None
    if hasattr(config, "backbone"):
        weights = getattr(config, "weights", None)
        name = resolve_backbone(config.backbone, weights=weights, progress=progress, notify=notify)
        config = dataclasses.replace(config, backbone=name)
        report(progress, ProgressEvent(f"loading {name}", 0, 0, kind="stage"))
        local = Path(weights).expanduser() if weights else None
        backbone = load_backbone(name, weights=local, notify=notify)
    report(progress, ProgressEvent(f"preparing {method}", 0, 0, kind="stage"))
    prepared = method_object.prepare(
        config, [image.rgb for image in loaded], backbone=backbone, notify=notify
    )
    ran = getattr(prepared, "config", None)  # the method's own defaults resolved (a decoder)
    prepared.recipe = provenance.Recipe(
        prepared.method or method,
        ran if isinstance(ran, type(config)) else config,
        backbone=prepared.backbone,
        device=prepared.device,
        styles=[provenance.describe_file(source_of(image)) for image in loaded],
    )
    return prepared


def _style_name(index: int, count: int) -> str:
    return "the style image" if count == 1 else f"style image {index + 1}"


def recipe_of(prepared: Prepared) -> provenance.Recipe:
    """What ``prepared`` records for each image: the recipe ``prepare`` gave it, or (for a
    Prepared made without ``prepare``) one from its own config, with no style files."""
    recipe = getattr(prepared, "recipe", None)
    if recipe is None:
        recipe = provenance.Recipe(
            prepared.method,
            getattr(prepared, "config", None),
            backbone=prepared.backbone,
            device=prepared.device,
        )
        prepared.recipe = recipe
    return recipe


def stylize_one(
    prepared: Prepared, content: LoadedImage, progress: ProgressCallback | None = None
) -> StyleResult:
    """Run ``prepared`` on one image; the result carries the content's alpha (resized to the
    output), the whole time taken, the config and the inputs' sha256 (its provenance). A
    stop's partial result (``Cancelled.partial``, Ctrl-C) gets the same."""
    started = time.perf_counter()
    recipe = recipe_of(prepared)
    inputs = {"content": provenance.describe_file(source_of(content)), "styles": recipe.styles}

    def completed(result: StyleResult) -> StyleResult:
        if content.alpha is not None:
            result.alpha = resize_to(content.alpha, *result.image.shape[-2:])
        result.method = result.method or prepared.method
        result.seconds = time.perf_counter() - started
        result.config, result.inputs = recipe.config, inputs
        return result

    try:
        result = completed(prepared.checked_run(content.rgb, progress))
    except BaseException as stop:
        partial = getattr(stop, "partial", None)
        if isinstance(partial, StyleResult):
            completed(partial)
        raise
    report(progress, ProgressEvent("done", 1, 1, kind="done"))
    return result


def train_model(
    kind: str,
    config: Any,
    folder: str | os.PathLike,
    *,
    style: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    styles: str | os.PathLike | None = None,
    resume: bool = False,
    data_note: str | None = None,
    styles_note: str | None = None,
    max_pixels: int | None = None,
    progress: ProgressCallback | None = None,
    notify: Notify | None = None,
):
    """Train a model of the training kind ``kind`` (impasto.methods.registry.TRAINING_KINDS:
    ``fast``, ``decoder``) into ``folder``: reads the style image (its file's sha256 goes into
    the metadata), the photos under ``data`` and the style images under ``styles`` (``item``
    events while reading), resolves and fetches the loss network or encoder, then runs the
    kind's training (``step`` events; a cancel saves a checkpoint). ``config``: the kind's
    ``train_config_class``, checked here."""
    from .devices import resolve_device
    from .files import check_writable, sha256_of
    from .model_folder import check_destination
    from .training import CHECKPOINT, check_resumable

    trainer = load_trainer(kind)
    validate_config(config)  # cheap checks first: nothing is read before these are right
    if hasattr(config, "device"):
        resolve_device(config.device)
    given = {"style": style, "data": data, "styles": styles}
    required = getattr(trainer, "required_inputs", trainer.training_inputs)
    for name in required:
        if given[name] is None:
            raise InputError(f"training '{kind}' needs {_TRAINING_INPUTS[name]}")
    if hasattr(trainer, "check_inputs"):
        trainer.check_inputs(config, given)
    # Before anything slow: a read-only or full disk, or a file in the way, is found now.
    target = check_destination(Path(folder).expanduser())
    check_writable(target / CHECKPOINT, parents=True)  # training/ may be read-only itself
    check_resumable(target, resume)  # before any photo is read
    info: dict[str, Any] = {"data_note": data_note, "styles_note": styles_note}
    inputs: dict[str, Any] = {}
    if "style" in trainer.training_inputs:
        style_path = Path(style).expanduser()
        loaded = load_image(style_path, max_pixels=max_pixels)
        inputs["style"] = loaded.rgb
        info["style"] = {
            "file": style_path.name,
            "sha256": sha256_of(style_path),
            "width": int(loaded.rgb.shape[-1]),
            "height": int(loaded.rgb.shape[-2]),
        }
    for name in ("data", "styles"):
        if name in trainer.training_inputs:
            inputs[name] = _training_images(given[name], name, config.size, max_pixels,
                                            progress, notify)  # fmt: skip
    backbone = None  # the loss network, resolved, fetched and loaded as ``prepare`` does
    if hasattr(config, "backbone"):
        config.backbone = resolve_backbone(
            config.backbone, progress=progress, notify=notify, local_flag=None
        )  # training takes no --weights
        report(progress, ProgressEvent(f"loading {config.backbone}", 0, 0, kind="stage"))
        backbone = load_backbone(config.backbone, notify=notify)
    return trainer.train(
        config,
        folder=target,
        resume=resume,
        backbone=backbone,
        info=info,
        progress=progress,
        notify=notify,
        **inputs,
    )


_TRAINING_INPUTS = {
    "style": "a style image (--style)",
    "data": "a folder of photos (--data)",
    "styles": "a folder of style images (--styles)",
}


def _training_images(folder, name: str, size: int, max_pixels: int | None,
                     progress: ProgressCallback | None, notify: Notify | None):  # fmt: skip
    """The images under ``folder`` as a PhotoSet at short side ``size`` (None: no folder)."""
    from .photos import PhotoSet

    if folder is None:
        return None
    what = "training photos" if name == "data" else "style images"
    among = "" if name == "data" else " style images"

    def reading(done: int, total: int) -> None:
        report(progress, ProgressEvent(f"reading {what}", done, total, kind="item"))

    images = PhotoSet.load(folder, size, max_pixels=max_pixels, on_photo=reading)
    if images.skipped and notify is not None:
        notify(
            f"skipped {len(images.skipped)} unreadable or too large file(s) of "
            f"{len(images.skipped) + len(images.photos)}{among} (first: {images.skipped[0]})"
        )
    return images
