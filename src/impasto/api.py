"""The public Python API: file paths or tensors in, a result with the image and losses out.

>>> import impasto
>>> result = impasto.stylize("photo.jpg", "painting.jpg", size=384)
>>> impasto.save_image(result.image, "out.png", alpha=result.alpha)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from .errors import InputError
from .images import LoadedImage, load_image, resize_to

METHOD_CHOICES: tuple[str, ...] = ("gatys", "fast")
ImageLike = str | os.PathLike | torch.Tensor | LoadedImage


def _as_loaded(image: ImageLike, max_pixels: int | None) -> LoadedImage:
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, torch.Tensor):
        if image.ndim == 3:
            image = image.unsqueeze(0)
        return LoadedImage(rgb=image.float(), alpha=None, path=Path("<tensor>"))
    return load_image(image, max_pixels=max_pixels)


def stylize(content: ImageLike, styles: ImageLike | Sequence[ImageLike] | None = None, *,
            method: str = "gatys", model=None, weights: str | os.PathLike | None = None,
            progress=None, notify=None, max_pixels: int | None = None, **options):  # fmt: skip
    """Stylise ``content`` with one or more ``styles`` (paths, tensors (1, 3, H, W) in [0, 1]).

    ``method="gatys"`` (default): optimisation; ``options`` are ``GatysConfig``'s fields (size,
    steps, style_weight, preserve_color, backbone, seed, ...); ``weights`` is a local weights
    file for the backbone. ``method="fast"``: one pass of a trained ``model`` (a model folder, a
    shipped model's name, or a loaded ``FastModel``); no ``styles``; ``options`` are
    ``FastConfig``'s fields (size, preserve_color, device, precision).
    ``progress(event)`` receives ProgressEvents (return False to cancel);
    ``notify(line)`` receives one-line notices (e.g. a backbone fallback).

    Returns the method's result (``.image`` (1, 3, H, W) in [0, 1], ``.alpha`` the content's
    alpha resized to the output, or None; Gatys also gives ``.history`` of losses).
    """
    if method not in METHOD_CHOICES:
        raise InputError(f"unknown method '{method}'; choose from: {', '.join(METHOD_CHOICES)}")
    if method == "fast":
        return _stylize_fast(content, styles, model, max_pixels, options)
    if model is not None:
        raise InputError("model= is for method 'fast'")
    if styles is None:
        raise InputError("method 'gatys' needs at least one style image")
    from .backbones import load_backbone
    from .methods import gatys

    config = _method_config(gatys.GatysConfig, method, options)
    if isinstance(styles, str | os.PathLike | torch.Tensor | LoadedImage):
        styles = [styles]
    content_image = _as_loaded(content, max_pixels)
    style_images = [_as_loaded(style, max_pixels).rgb for style in styles]
    from .config import validate_config

    validate_config(config)
    backbone = load_backbone(
        config.backbone, weights=Path(weights) if weights else None, notify=notify
    )
    result = gatys.stylize(content_image.rgb, style_images, config, backbone=backbone,
                           progress=progress, notify=notify)  # fmt: skip
    alpha = content_image.alpha
    if alpha is not None:
        alpha = resize_to(alpha, *result.image.shape[-2:])
    result.alpha = alpha
    return result


def _method_config(config_class: type, method: str, options: dict):
    """``config_class(**options)``, refusing options the method does not have."""
    names = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise InputError(f"unknown option(s) for method '{method}': {', '.join(unknown)}")
    return config_class(**options)


def _stylize_fast(content, styles, model, max_pixels, options):
    import time

    from .methods import fast

    if styles is not None:
        raise InputError("method 'fast' takes no style images: the style is in the model")
    if model is None:
        raise InputError("method 'fast' needs model= (a model folder or a shipped model's name)")
    config = _method_config(fast.FastConfig, "fast", options)
    started = time.perf_counter()
    loaded = model if isinstance(model, fast.FastModel) else fast.load_model(model)
    content_image = _as_loaded(content, max_pixels)
    image = fast.stylize(content_image.rgb, loaded, config)
    alpha = content_image.alpha
    if alpha is not None:
        alpha = resize_to(alpha, *image.shape[-2:])
    return fast.FastResult(image, alpha, str(loaded.path), time.perf_counter() - started,
                           str(loaded.metadata.get("backbone", "")))  # fmt: skip
