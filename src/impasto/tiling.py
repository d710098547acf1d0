"""Tiled inference: a picture too large for memory goes through a local network tile by tile,
with overlap and blending, in bounded memory and without seams.

The picture is cut into cores of ``core`` pixels (the last ones shorter); each tile is its core
with ``margin`` pixels of the picture around it (fewer at the picture's border). The network
runs on the tile; of its output, the outer ``discard`` pixels of each inner side get weight 0
(the network saw padding there, not the picture), the next ``margin - discard`` rise linearly
to 1, and the core has weight 1. The weights are normalised per axis, so the tiles' weights
sum to 1 at every pixel and the output is a convex blend: no seams, and where the tiles'
outputs agree it is that output exactly.

Tiles start at multiples of ``multiple`` (a network's total stride): every strided layer then
samples the same grid in a tile as in the whole picture, so away from a tile's edges the tile's
output is the whole picture's output.

What must be global is not computed here: a network's normalisation statistics (instance norm:
impasto.nn.layers.statistics_from) and feature statistics (AdaIN, WCT) come from the whole
picture, and the network runs on tiles with them fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .errors import InputError
from .images import resize_to
from .memory import format_bytes
from .nn.layers import statistics_from
from .progress import ProgressCallback, ProgressEvent, report

DISCARD = 48  # pixels at a tile's inner edges given no weight: chosen in docs/tiling.md
MARGIN = 80  # context around each core: DISCARD, then a ramp of MARGIN - DISCARD pixels


def spans(length: int, core: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Along one axis of ``length`` pixels: (start, stop) of each tile and (start, stop) of its
    core, cores of ``core`` pixels from 0, tiles reaching ``margin`` further each side."""
    if core < 1 or margin < 0:
        raise ValueError(f"core must be >= 1 and margin >= 0, got {core} and {margin}")
    result = []
    for core_start in range(0, length, core):
        core_stop = min(core_start + core, length)
        result.append((max(0, core_start - margin), min(length, core_stop + margin),
                       core_start, core_stop))  # fmt: skip
    return result


def axis_weights(length: int, core: int, margin: int, discard: int) -> list[torch.Tensor]:
    """One weight vector per tile along an axis (see the module docstring), normalised so that
    at every pixel the tiles' weights sum to 1."""
    ramp = max(1, margin - discard)
    weights = []
    for start, stop, _core_start, _core_stop in spans(length, core, margin):
        position = torch.arange(start, stop, dtype=torch.float64)
        weight = torch.ones(stop - start, dtype=torch.float64)
        if start > 0:  # an inner edge on this side: discard, then ramp up
            weight = torch.minimum(weight, ((position - start - discard + 1) / ramp).clamp(0, 1))
        if stop < length:
            weight = torch.minimum(weight, ((stop - position - discard) / ramp).clamp(0, 1))
        weights.append(weight)
    total = torch.zeros(length, dtype=torch.float64)
    for (start, stop, _a, _b), weight in zip(spans(length, core, margin), weights, strict=True):
        total[start:stop] += weight
    return [(weight / total[start:stop]).float()
            for (start, stop, _a, _b), weight in zip(spans(length, core, margin), weights,
                                                     strict=True)]  # fmt: skip


def run_tiled(
    network: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    core: int,
    *,
    margin: int = MARGIN,
    discard: int = DISCARD,
    multiple: int = 1,
    positions: bool = False,
    progress: ProgressCallback | None = None,
    what: str = "tiles",
) -> torch.Tensor:
    """``network`` ((B, C, h, w) -> (B, C', h, w) on the CPU) over (B, C, H, W) ``images`` tile
    by tile -> (B, C', H, W) float32 on the CPU; ``positions``: it is called with the tile's
    window (top, bottom, left, right) too. ``core`` and ``margin`` are rounded up to multiples
    of ``multiple``; with one tile this is ``network(images)``. A ``step`` event per tile
    (progress returning False: Cancelled)."""
    if discard > margin:
        raise ValueError(f"discard ({discard}) must not exceed margin ({margin})")
    core = math.ceil(core / multiple) * multiple
    margin = math.ceil(margin / multiple) * multiple
    height, width = images.shape[-2:]
    if core >= height and core >= width:
        whole = (0, height, 0, width)
        return (network(images, whole) if positions else network(images)).float()
    rows, columns = spans(height, core, margin), spans(width, core, margin)
    row_weights = axis_weights(height, core, margin, discard)
    column_weights = axis_weights(width, core, margin, discard)
    output = None
    count, done = len(rows) * len(columns), 0
    for (top, bottom, _a, _b), row_weight in zip(rows, row_weights, strict=True):
        for (left, right, _c, _d), column_weight in zip(columns, column_weights, strict=True):
            tile = images[..., top:bottom, left:right]
            window = (top, bottom, left, right)
            piece = (network(tile, window) if positions else network(tile)).float()
            if output is None:
                output = torch.zeros(*piece.shape[:2], height, width)
            output[..., top:bottom, left:right] += piece * (row_weight[:, None] *
                                                            column_weight[None, :])  # fmt: skip
            done += 1
            report(progress, ProgressEvent(what, done, count))
    return output


def core_for(budget_pixels: int, margin: int = MARGIN, multiple: int = 1) -> int:
    """The largest core side (a multiple of ``multiple``, at least ``multiple``) whose tile,
    core plus ``margin`` each side, holds at most ``budget_pixels`` pixels."""
    side = math.isqrt(max(0, budget_pixels)) - 2 * margin
    return max(multiple, side // multiple * multiple)


TILE_PIXELS = 3_000_000  # a tile's (and a thumbnail's) pixels at most: see docs/tiling.md
PICTURE_BYTES_PER_PIXEL = 32  # the picture held whole: float32 input and output, and headroom


def tile_pixels(images: torch.Tensor, budget: int | None, bytes_per_pixel: float,
                cap: int | None = None, margin: int = MARGIN) -> int | None:  # fmt: skip
    """How many pixels one tile of ``images`` (B, 3, H, W) may have (None: no tiling, the
    picture goes through whole): at most ``cap``, and what ``budget`` bytes leave after the
    picture itself (PICTURE_BYTES_PER_PIXEL) at ``bytes_per_pixel`` of the network's working
    memory per pixel of a batch of B. InputError when ``budget`` cannot hold the picture and a
    tile with a core of 256 x 256 pixels."""
    cap = TILE_PIXELS if cap is None else cap
    batch, _channels, height, width = images.shape
    picture = batch * height * width * PICTURE_BYTES_PER_PIXEL
    per_pixel = batch * bytes_per_pixel
    memory_room = math.inf if budget is None else (budget - picture) / per_pixel
    if min(cap, memory_room) >= height * width:
        return None
    least = (256 + 2 * margin) ** 2
    if memory_room < least:
        needed = picture + least * per_pixel
        raise InputError(
            f"a {width}x{height} picture needs at least {format_bytes(needed)} of memory here "
            f"(the picture and one tile); {format_bytes(budget or 0)} allowed: raise "
            "--max-memory, or free some memory"
        )
    return int(max(least, min(cap, memory_room)))


def run_network(network: torch.nn.Module, forward: Callable[[torch.Tensor], torch.Tensor],
                images: torch.Tensor, room: int | None, *, multiple: int,
                progress: ProgressCallback | None = None) -> torch.Tensor:  # fmt: skip
    """``forward`` (``network`` placed and run: CPU (B, 3, h, w) in, CPU float32 out) over
    ``images`` (B, 3, H, W): whole where ``room`` (``tile_pixels``) is None, else in tiles of
    at most ``room`` pixels, with ``network``'s instance norms fixed to the statistics of
    the picture shrunk to ``room`` pixels (impasto.nn.layers.statistics_from)."""
    if room is None:
        return forward(images)
    height, width = images.shape[-2:]
    scale = math.sqrt(room / (height * width))
    thumbnail = resize_to(images, max(1, int(height * scale)), max(1, int(width * scale)))
    placed = next(network.parameters())
    with statistics_from(network, thumbnail.to(placed.device, placed.dtype)):
        return run_tiled(forward, images, core_for(room, multiple=multiple), multiple=multiple,
                         progress=progress)  # fmt: skip
