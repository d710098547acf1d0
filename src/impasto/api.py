"""The public Python API: file paths or tensors in, a result with the image and losses out.

>>> import impasto
>>> result = impasto.stylize("photo.jpg", "painting.jpg", size=384)
>>> impasto.save_image(result.image, "out.png", alpha=result.alpha)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from . import pipeline
from .images import LoadedImage
from .methods.base import StyleResult
from .methods.registry import DEFAULT_METHOD, METHOD_CHOICES, entry

__all__ = ["METHOD_CHOICES", "stylize"]

ImageLike = str | os.PathLike | torch.Tensor | LoadedImage


def stylize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike] | None = None,
    *,
    method: str = DEFAULT_METHOD,
    progress=None,
    notify=None,
    max_pixels: int | None = None,
    **options,
) -> StyleResult:
    """Stylise ``content`` (a path, a tensor (1, 3, H, W) in [0, 1] or a LoadedImage) with
    ``method`` (``impasto.METHOD_CHOICES``; the method table in impasto.methods.registry).

    ``styles``: one or more style images, for methods that take them (gatys, ...); none for
    methods whose style is in a model (fast: ``model=`` a model folder, a shipped model's name
    or a loaded FastModel). ``options``: the fields of the method's config (e.g.
    ``GatysConfig``: size, steps, style_weight, preserve_color, backbone, weights, seed, ...).
    ``progress(event)`` receives ProgressEvents (return False to cancel); ``notify(line)``
    receives one-line notices (e.g. a backbone fallback).

    Returns a StyleResult: ``.image`` (1, 3, H, W) in [0, 1], ``.alpha`` (the content's alpha
    resized to the output, or None), ``.backbone``, ``.device``, ``.seconds``, ``.history``
    (losses of every step, for methods that optimise), ``.details``.
    """
    row = entry(method)
    if styles is None:
        styles = []
    elif isinstance(styles, str | os.PathLike | torch.Tensor | LoadedImage):
        styles = [styles]
    styles = list(styles)
    config = pipeline.make_config(method, options, style_count=len(styles))
    content_image = pipeline.as_image(content, max_pixels)
    style_images = [pipeline.as_image(style, max_pixels) for style in styles]
    prepared = pipeline.prepare(row.name, config, style_images, progress=progress, notify=notify)
    return pipeline.stylize_one(prepared, content_image, progress)
