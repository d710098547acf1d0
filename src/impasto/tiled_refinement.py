"""Optimising a picture too large for memory tile by tile, without seams (Gatys at print sizes).

The picture (already a good start: the coarser scale's result, enlarged) is cut into cores of
nearly equal size, each optimised in a window reaching ``margin`` pixels further, one after the
other in reading order. A window starts from the picture as it is now: its top and left margins
hold the finished cores above and left of it, so it continues their strokes, and its result is
faded in over those margins (0 over the ``discard`` pixels at the edge, which saw the network's
padding rather than the picture, then rising to 1 at its core), so no step is left where two
windows meet. It is written over its core, and faded in the same way over its bottom and right
margins, where the next windows start from it.

What must be global stays global: a tile's style loss is the whole picture's, its Gram matrices
summed over the tile's core (as it is optimised) and every other core (as it is now), so the
tiles together match the style, and no tile is pushed to hold the whole palette on its own
(impasto.perceptual.TiledGrams). The style targets come from the whole style images at this
scale, the same for every tile. This is block-coordinate descent on the whole picture's loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import InputError
from .memory import format_bytes
from .tiling import spans

MARGIN = 128  # context and overlap around each core (pixels)
DISCARD = 32  # pixels at a window's inner edges given no weight (the network's padding)


@dataclass(frozen=True)
class Tile:
    """A window of the picture (top, bottom, left, right) and the core it owns within it."""

    top: int
    bottom: int
    left: int
    right: int
    core_top: int
    core_bottom: int
    core_left: int
    core_right: int

    @property
    def window(self) -> tuple[int, int, int, int]:
        return self.top, self.bottom, self.left, self.right

    @property
    def core_pixels(self) -> int:
        return (self.core_bottom - self.core_top) * (self.core_right - self.core_left)


def cores(length: int, largest: int) -> int:
    """The core side that cuts ``length`` into the fewest nearly equal cores of at most
    ``largest`` pixels."""
    count = math.ceil(length / max(1, largest))
    return math.ceil(length / count)


def windows(height: int, width: int, core: int, margin: int = MARGIN) -> list[Tile]:
    """The tiles (cores of at most ``core`` pixels a side, windows reaching ``margin`` further,
    within the picture) in reading order."""
    rows = spans(height, cores(height, core), margin)
    columns = spans(width, cores(width, core), margin)
    return [Tile(top, bottom, left, right, core_top, core_bottom, core_left, core_right)
            for top, bottom, core_top, core_bottom in rows
            for left, right, core_left, core_right in columns]  # fmt: skip


def largest_core(height: int, width: int, budget: int | None, bytes_per_pixel: float,
                 fixed_bytes: float, margin: int = MARGIN) -> int | None:  # fmt: skip
    """The largest core side whose window fits in ``budget`` bytes, after ``fixed_bytes``
    (the network, the picture), at ``bytes_per_pixel`` of a window: None when the whole
    picture fits. InputError when not even a 128-pixel core fits."""
    if budget is None or fixed_bytes + height * width * bytes_per_pixel <= budget:
        return None
    room = (budget - fixed_bytes) / bytes_per_pixel
    core = math.isqrt(max(0, int(room))) - 2 * margin
    if core < 128:
        needed = fixed_bytes + (128 + 2 * margin) ** 2 * bytes_per_pixel
        raise InputError(
            f"a {width}x{height} picture needs at least {format_bytes(needed)} of memory to be "
            f"optimised tile by tile; {format_bytes(budget)} allowed: raise --max-memory, or "
            "lower --size"
        )
    return core


def ramp(length: int, inner: bool, discard: int) -> torch.Tensor:
    """Weights along one side of a window, from its edge inwards: where that side is an inner
    edge, 0 over ``discard`` pixels, then rising linearly to 1 over the rest of ``length``."""
    if not inner:
        return torch.ones(length)
    position = torch.arange(length, dtype=torch.float32)
    return ((position - discard + 1) / max(1, length - discard)).clamp(0, 1)


def fade(tile: Tile, height: int, width: int, discard: int = DISCARD) -> torch.Tensor:
    """(h, w) weights with which a window's result is written into a ``height`` x ``width``
    picture: 1 over its core, from 0 (``discard`` pixels at an inner edge) to 1 across each
    inner margin."""
    top, bottom, left, right = tile.window
    down = torch.ones(bottom - top)
    down[: tile.core_top - top] = ramp(tile.core_top - top, top > 0, discard)
    down[tile.core_bottom - top :] = ramp(bottom - tile.core_bottom, bottom < height,
                                          discard).flip(0)  # fmt: skip
    across = torch.ones(right - left)
    across[: tile.core_left - left] = ramp(tile.core_left - left, left > 0, discard)
    across[tile.core_right - left :] = ramp(right - tile.core_right, right < width,
                                            discard).flip(0)  # fmt: skip
    return down[:, None] * across[None, :]


def refine_in_tiles(
    canvas: torch.Tensor,
    refine: Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor],
    tiles: list[Tile],
    *,
    discard: int = DISCARD,
) -> None:
    """Refine ``canvas`` (1, C, H, W) in place, tile by tile (``windows``): ``refine(pixels,
    index, weight)`` returns the window's pixels optimised, ``weight`` (h, w) being how they
    will be written (``fade``). It is written over the core, and faded in
    over the margins (weight 0 over the ``discard`` pixels at an inner edge, then rising to 1 at
    the core): over the top and left margins, which earlier cores finished, the fade is the
    seam's blend; over the bottom and right ones, it is where the next windows start from."""
    height, width = canvas.shape[-2:]
    for index, tile in enumerate(tiles):
        top, bottom, left, right = tile.window
        weight = fade(tile, height, width, discard).to(canvas)
        refined = refine(canvas[..., top:bottom, left:right].clone(), index, weight)
        window = canvas[..., top:bottom, left:right]
        window.mul_(1 - weight).add_(refined * weight)
