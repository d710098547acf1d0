"""Keeping a photograph's structure: the most of a change a photo can take and still keep at
least a given share of its structure, measured as luminance SSIM against the photo (Wang et
al. 2004; impasto.metrics.pixels.ssim, the measure ``evaluate`` reports).

Photorealistic transfer promises that the result is still the photo. Most looks keep SSIM far
above any sensible floor at full strength; a look that darkens the whole picture (day to
night) lowers SSIM's luminance and contrast terms everywhere, even where every edge is kept.
``keep_structure`` then blends the result back towards the photo, ``photo + share * (result -
photo)``, with the largest share that keeps SSIM at the floor. SSIM of such a blend is
computed from one pass of local statistics (``blend_ssim``), so the search costs little.

Pictures over GUARD_PIXELS are measured on a smaller copy (area), the share applied at full
size. Pure functions; nothing here prints.
"""

from __future__ import annotations

import torch

from .images import resize_to
from .metrics.pixels import blend_ssim

GUARD_PIXELS = 1_000_000
SEARCH_STEPS = 10  # bisection: the share to within 1/1024


def keep_structure(photo: torch.Tensor, result: torch.Tensor, floor: float
                   ) -> tuple[torch.Tensor, float, float]:  # fmt: skip
    """(picture, share, ssim): ``result`` (1, 3, H, W), or its blend with ``photo`` with the
    largest ``share`` in [0, 1] whose luminance SSIM against ``photo`` is at least ``floor``,
    and that SSIM. ``floor`` <= 0: ``result`` unchanged (its SSIM still reported)."""
    measured_photo, measured_result = photo.float(), result.float()
    height, width = photo.shape[-2:]
    if height * width > GUARD_PIXELS:
        scale = (GUARD_PIXELS / (height * width)) ** 0.5
        size = (max(11, round(height * scale)), max(11, round(width * scale)))
        measured_photo, measured_result = (resize_to(measured_photo, *size),
                                           resize_to(measured_result, *size))  # fmt: skip
    structure_at = blend_ssim(measured_photo, measured_result)
    whole = structure_at(1.0)
    if floor <= 0 or whole >= floor:
        return result, 1.0, whole
    low, high = 0.0, 1.0  # structure_at(low) >= floor > structure_at(high)
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        if structure_at(middle) >= floor:
            low = middle
        else:
            high = middle
    blended = photo.float() + low * (result.float() - photo.float())
    return blended, low, structure_at(low)
