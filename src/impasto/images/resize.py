"""Resizing images: antialiased bicubic, clamped to [0, 1]. Tensors only (no Pillow)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = ["resize_long_side", "resize_to"]


def resize_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize (B, C, H, W) to (B, C, height, width) with antialiased bicubic; clamp to [0, 1]."""
    if image.dim() != 4:
        raise ValueError(f"image must have shape (B, C, H, W), got {tuple(image.shape)}")
    if height < 1 or width < 1:
        raise InputError(f"image size must be at least 1x1 pixels, got {width}x{height}")
    if tuple(image.shape[-2:]) == (height, width):
        return image.clamp(0.0, 1.0).contiguous()
    resized = F.interpolate(
        image, size=(height, width), mode="bicubic", align_corners=False, antialias=True
    )
    return resized.clamp(0.0, 1.0).contiguous()


def long_side_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) of a ``height`` x ``width`` picture resized to a long side of
    ``long_side`` pixels (resize_long_side's size)."""
    scale = long_side / max(height, width)
    if height >= width:
        return long_side, max(1, round(width * scale))
    return max(1, round(height * scale)), long_side


def resize_long_side(image: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize (B, C, H, W) so its longer side is ``long_side`` pixels, keeping the aspect ratio.

    Antialiased bicubic (so shrinking does not alias); each side is at least 1 pixel; the
    result is clamped to [0, 1].
    """
    if image.dim() != 4:
        raise ValueError(f"image must have shape (B, C, H, W), got {tuple(image.shape)}")
    if isinstance(long_side, bool) or not isinstance(long_side, int) or long_side < 1:
        raise InputError(f"image size must be a whole number of pixels >= 1, got {long_side!r}")
    new_height, new_width = long_side_shape(*image.shape[-2:], long_side)
    return resize_to(image, new_height, new_width)
