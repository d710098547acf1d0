"""What every metric checks of its inputs: the image type, sizes, and resizing a style image.

Images are float32 RGB in [0, 1], shape (1, 3, H, W). ``MetricUndefined`` is what a metric
raises when it has no value for the inputs it was given; ``evaluate`` reports it as unavailable.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import InputError

ImageLike = torch.Tensor | str | os.PathLike


class MetricUndefined(InputError):
    """A metric has no value for these inputs (e.g. a ratio whose denominator is zero)."""


def check_image(image: Any, what: str) -> torch.Tensor:
    """``image`` itself when it is a float tensor of shape (1, 3, H, W); InputError otherwise,
    naming ``what`` (e.g. "style")."""
    if not isinstance(image, torch.Tensor):
        raise InputError(f"{what} must be a torch.Tensor or a path, got {type(image).__name__}")
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise InputError(f"{what} must have shape (1, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise InputError(f"{what} must be a float tensor in [0, 1], got {image.dtype}")
    return image


def size_text(image: torch.Tensor) -> str:
    """The image's size as "WxH", for messages."""
    return f"{image.shape[-1]}x{image.shape[-2]}"


def same_size(image: torch.Tensor, other: torch.Tensor, what: str) -> None:
    """InputError, naming ``what`` (the metric), unless the two images have the same size."""
    if image.shape[-2:] != other.shape[-2:]:
        raise InputError(
            f"{what}: images must have the same size, got {size_text(image)} and {size_text(other)}"
        )


def match_long_side(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``image`` resized so its long side equals ``reference``'s (itself when it already does)."""
    from ..images import resize_long_side

    long_side = max(reference.shape[-2:])
    if max(image.shape[-2:]) == long_side:
        return image
    return resize_long_side(image, int(long_side))
