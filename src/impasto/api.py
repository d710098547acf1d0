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

METHOD_CHOICES: tuple[str, ...] = ("gatys",)
ImageLike = str | os.PathLike | torch.Tensor | LoadedImage


def _as_loaded(image: ImageLike, max_pixels: int | None) -> LoadedImage:
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, torch.Tensor):
        if image.ndim == 3:
            image = image.unsqueeze(0)
        return LoadedImage(rgb=image.float(), alpha=None, path=Path("<tensor>"))
    return load_image(image, max_pixels=max_pixels)


def stylize(content: ImageLike, styles: ImageLike | Sequence[ImageLike], *,
            method: str = "gatys", weights: str | os.PathLike | None = None,
            progress=None, notify=None, max_pixels: int | None = None, **options):  # fmt: skip
    """Stylise ``content`` with one or more ``styles`` (paths, tensors (1, 3, H, W) in [0, 1]).

    ``options`` are the fields of the method's config (e.g. ``GatysConfig``: size, steps,
    style_weight, preserve_color, backbone, seed, ...). ``weights`` is a local weights file for
    the backbone. ``progress(event)`` receives ProgressEvents (return False to cancel);
    ``notify(line)`` receives one-line notices (e.g. a backbone fallback).

    Returns the method's result (``.image`` (1, 3, H, W) in [0, 1], ``.history`` of losses,
    ``.alpha`` the content's alpha resized to the output, or None).
    """
    if method not in METHOD_CHOICES:
        raise InputError(f"unknown method '{method}'; choose from: {', '.join(METHOD_CHOICES)}")
    from .backbones import load_backbone
    from .methods import gatys

    names = {field.name for field in dataclasses.fields(gatys.GatysConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise InputError(f"unknown option(s) for method '{method}': {', '.join(unknown)}")
    config = gatys.GatysConfig(**options)
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
