"""The public Python API: images in (paths, PIL images, numpy arrays, tensors), a result with
the image, its losses and how it was made out.

>>> import impasto
>>> result = impasto.stylize("photo.jpg", "painting.jpg", size=384)
>>> result.save("out.png")            # alpha kept, provenance embedded, written atomically
>>> result.to_pil().show()
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from . import pipeline
from .errors import InputError
from .methods.base import StyleResult
from .methods.registry import DEFAULT_METHOD, METHOD_CHOICES, entry
from .pipeline import ImageLike

__all__ = ["METHOD_CHOICES", "stylize"]


def stylize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike] | None = None,
    *,
    method: str = DEFAULT_METHOD,
    progress=None,
    notify=None,
    max_pixels: int | None = None,
    auto: bool | str = False,
    **options,
) -> StyleResult:
    """Stylise ``content`` with ``method`` (``impasto.METHOD_CHOICES``; the method table in
    impasto.methods.registry).

    Images (``content``, each style): a file path; a PIL image; a numpy array H x W x 3 (or
    x 4 with alpha) or H x W, uint8 or float in [0, 1]; a tensor (3, H, W) or (1, 3, H, W),
    uint8 or float in [0, 1]; or a LoadedImage. Anything else is an InputError.
    ``styles``: one image or a list of them, for methods that take them (gatys, color); none
    for methods whose style is in a model (fast: ``model=`` a model folder, a shipped model's
    name or a loaded FastModel). ``options``: the fields of the method's config (e.g.
    ``GatysConfig``: size, steps, style_weight, preserve_color, backbone, weights, seed, ...).
    ``progress(event)`` receives ProgressEvents of every method (return False to cancel:
    Cancelled); ``notify(line)`` receives one-line notices (e.g. a backbone fallback).
    ``auto``: True (or a target, "balanced", "stronger", "subtle") first tunes the method's
    main setting for this pair (impasto.tune, as ``--auto``); the curve is in
    ``result.details["auto"]``.

    Returns a StyleResult: ``.image`` (1, 3, H, W) in [0, 1], ``.alpha`` (the content's alpha
    resized to the output, or None), ``.config`` (the method's config as it ran), ``.backbone``,
    ``.device``, ``.seconds``, ``.history`` (losses of every step, for methods that optimise),
    ``.details``; ``.to_pil()``, ``.save(path)`` (with the provenance record) and
    ``.provenance()``.
    """
    row = entry(method)
    if not pipeline.is_image(content):
        kind = type(content).__name__
        raise InputError(f"content: expected one image, {pipeline.ACCEPTED}; got {kind}")
    if styles is None:
        styles = []
    elif pipeline.is_image(styles):
        styles = [styles]
    elif isinstance(styles, list | tuple):
        styles = list(styles)
    else:
        raise InputError(
            f"styles: expected an image or a list of images ({pipeline.ACCEPTED}); got "
            f"{type(styles).__name__}"
        )
    config = pipeline.make_config(method, options, style_count=len(styles))
    content_image = pipeline.as_image(content, max_pixels, what="content")
    tuning = None
    if auto:
        from . import tune

        style_images = [pipeline.as_image(s, max_pixels, what="style").rgb for s in styles]
        tuning = tune.tune(row.name, config, content_image.rgb, style_images,
                           target="balanced" if auto is True else str(auto), progress=progress,
                           notify=notify)  # fmt: skip
        config = tuning.config
    prepared = pipeline.prepare(
        row.name, config, styles, progress=progress, notify=notify, max_pixels=max_pixels
    )
    result = pipeline.stylize_one(prepared, content_image, progress)
    if tuning is not None:
        curve = [dataclasses.asdict(candidate) for candidate in tuning.candidates]
        result.details["auto"] = {"parameter": tuning.parameter, "chosen": tuning.chosen,
                                  "target": tuning.target, "curve": curve}  # fmt: skip
    return result
