"""Colour grading by distribution transfer: a picture's colours moved onto another picture's
colour distribution, as a colourist grades a shot to match a reference (Pitié, Kokaram &
Dahyot, "N-dimensional probability density function transfer and its application to colour
transfer", ICCV 2005; "Automated colour grading using colour distribution transfer", CVIU
2007).

The iteration: turn the colour space by a random rotation, match each of the three 1-D
marginals to the reference's by their quantiles, turn back. Each turn matches three new
directions; after a dozen the whole 3-D distribution matches, tones (luminance) and colours
together, where a mean-and-covariance match (``impasto.color.match_color``) stops at the
second moments.

``fit_grade`` learns the maps on samples of the two pictures' pixels and keeps them as quantile
tables (a ``Grade``); ``Grade.apply`` runs every pixel of a picture of any size through them,
band by band, so a fit costs the same at 512 px as at 64 MP. Colours are handled in YIQ (the
space impasto's colour metrics use). Beyond the sampled range a map continues with slope 1, so
highlights and shadows keep their detail instead of being clipped to the last quantile.

Pure functions and a frozen dataclass; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .color import rgb_to_yiq, yiq_to_rgb
from .metrics.pixels import quantiles
from .regions import blend_regions

ITERATIONS = 12  # rotations: 12 match the 15 photo pairs as well as 20 (docs/photo.md)
SAMPLES = 32_768  # pixels sampled from each picture for the fit
LEVELS = 256  # quantiles per 1-D map
TABLE_POINTS = 4096  # each map resampled on this many evenly spaced points (MapTable)
SAMPLED_PIXELS = 1_000_000  # larger pictures are sampled on a strided copy
BAND_PIXELS = 1_000_000  # Grade.apply works on bands of about this many pixels


@dataclass(frozen=True)
class Grade:
    """A fitted colour grade in YIQ: ``rotations`` (T, 3, 3) and, per rotation, its three 1-D
    maps as ``MapTable``s."""

    rotations: torch.Tensor
    maps: tuple[MapTable, ...]

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> graded, same shape, float32, clamped to [0, 1]."""
        out = torch.empty(image.shape, dtype=torch.float32)
        rows = max(1, BAND_PIXELS // max(1, image.shape[-1]))
        for top in range(0, image.shape[-2], rows):
            band = image[..., top : top + rows, :].float().cpu()
            yiq = rgb_to_yiq(band).movedim(1, -1).reshape(-1, 3)
            graded = self.map_colours(yiq).reshape(*band.shape[:1], *band.shape[2:], 3)
            out[..., top : top + rows, :] = yiq_to_rgb(graded.movedim(-1, 1)).clamp(0, 1)
        return out

    def map_colours(self, colours: torch.Tensor) -> torch.Tensor:
        """(N, 3) YIQ colours through every rotation's three 1-D maps."""
        x = colours.float().T  # (3, N): each axis a row
        for rotation, table in zip(self.rotations, self.maps, strict=True):
            turned = rotation.T @ x
            x = x + rotation @ (table(turned) - turned)
        return x.T


@dataclass(frozen=True)
class MapTable:
    """D monotone 1-D maps sampled on uniform grids: row d maps ``low[d] + i * step[d]`` to
    ``values[d, i]``, linearly between grid points and with slope 1 beyond the grid (a lookup
    costs a few element-wise operations where a search among quantiles costs 20x more)."""

    low: torch.Tensor  # (D, 1)
    step: torch.Tensor  # (D, 1)
    values: torch.Tensor  # (D, TABLE_POINTS)

    @classmethod
    def from_quantiles(cls, source: torch.Tensor, target: torch.Tensor) -> MapTable:
        """The maps from ``source`` quantiles (D, K) to ``target`` quantiles (D, K)."""
        low, high = source[:, :1], source[:, -1:]
        step = ((high - low) / (TABLE_POINTS - 1)).clamp_min(1e-8)
        grid = low + step * torch.arange(TABLE_POINTS, dtype=source.dtype)
        return cls(low, step, quantile_map(grid, source, target))

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """(D, N) values, each row through its map."""
        position = (values - self.low) / self.step
        index = position.floor().clamp_(0, TABLE_POINTS - 2)
        share = position - index
        index = index.long()
        mapped = torch.lerp(self.values.gather(1, index), self.values.gather(1, index + 1), share)
        top = self.low + self.step * (TABLE_POINTS - 1)
        mapped = torch.where(position < 0, values - self.low + self.values[:, :1], mapped)
        return torch.where(position > TABLE_POINTS - 1, values - top + self.values[:, -1:],
                           mapped)  # fmt: skip


def quantile_map(values: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each row of (D, N) ``values`` mapped piecewise linearly from its row of ascending
    ``source`` quantiles (D, K) to ``target``'s (D, K); beyond either end, shifted with slope 1
    from the end point."""
    count = source.shape[-1]
    index = torch.searchsorted(source.contiguous(), values.contiguous()).clamp_(1, count - 1)
    x0, x1 = source.gather(1, index - 1), source.gather(1, index)
    y0, y1 = target.gather(1, index - 1), target.gather(1, index)
    share = ((values - x0) / (x1 - x0).clamp_min(1e-8)).clamp_(0, 1)
    mapped = torch.lerp(y0, y1, share)
    mapped = torch.where(values < source[:, :1], values - source[:, :1] + target[:, :1], mapped)
    return torch.where(values > source[:, -1:], values - source[:, -1:] + target[:, -1:], mapped)


def pixel_sample(image: torch.Tensor, weight: torch.Tensor | None = None, count: int = SAMPLES,
                 seed: int = 0) -> torch.Tensor:  # fmt: skip
    """(count, 3) YIQ colours drawn from one (1, 3, H, W) RGB picture, each pixel with
    probability proportional to ``weight`` (1, 1, H, W) (None: alike). Pictures over
    SAMPLED_PIXELS are read on a strided copy. ValueError when ``weight`` is zero everywhere."""
    stride = max(1, int((image.shape[-2] * image.shape[-1] / SAMPLED_PIXELS) ** 0.5))
    if weight is not None:
        if not bool((weight > 0).any()):
            raise ValueError("the weight covers no pixel")
        if not bool((weight[..., ::stride, ::stride] > 0).any()):
            stride = 1  # a thin region the strided copy misses: read every pixel
    picture = image[..., ::stride, ::stride].float().cpu()
    colours = rgb_to_yiq(picture)[0].reshape(3, -1).T
    generator = torch.Generator().manual_seed(seed)
    if weight is None:
        chances = torch.ones(colours.shape[0])
    else:
        chances = weight[..., ::stride, ::stride].float().cpu().reshape(-1)
    chosen = torch.multinomial(chances, count, replacement=True, generator=generator)
    return colours[chosen]


def fit_grade(source: torch.Tensor, reference: torch.Tensor, iterations: int = ITERATIONS,
              seed: int = 0) -> Grade:  # fmt: skip
    """The grade that moves the (N, 3) YIQ colours ``source`` onto the distribution of the
    (M, 3) ``reference`` (``pixel_sample``), in ``iterations`` random rotations."""
    generator = torch.Generator().manual_seed(seed)
    x, reference = source.float(), reference.float()
    rotations, maps = [], []
    for _ in range(iterations):
        rotation, _ = torch.linalg.qr(torch.randn(3, 3, generator=generator))
        turned, goal = x @ rotation, reference @ rotation
        table = MapTable.from_quantiles(quantiles(turned, LEVELS).T, quantiles(goal, LEVELS).T)
        x = x + (table(turned.T).T - turned) @ rotation.T
        rotations.append(rotation)
        maps.append(table)
    return Grade(torch.stack(rotations), tuple(maps))


def grade_to(
    image: torch.Tensor,
    references: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor] | None = None,
    amount: float = 1.0,
) -> torch.Tensor:
    """One (1, 3, H, W) picture graded towards its references' colours, ``amount`` of the way
    (0: unchanged, 1: the reference's distribution). Computed on the CPU, returned on
    ``image``'s device.

    ``references``: (M, 3) YIQ samples (``pixel_sample``). Without ``masks``, one reference
    for the whole picture. With ``masks`` ((1, 1, h, w) each, one per reference), region by
    region: each region's pixels are fitted to its own reference and the results blended by
    the masks (``impasto.regions.blend_regions``); pixels no mask covers stay as they are.
    """
    device = image.device  # the work is on the CPU (sorting and lookups), the result not
    image = image.float().cpu()
    if amount <= 0:
        return image.to(device)
    if masks is None:
        (reference,) = references
        graded = fit_grade(pixel_sample(image), reference).apply(image)
    else:

        def region(index: int, weight: torch.Tensor) -> torch.Tensor:
            if float(weight.sum()) <= 0:
                return image
            grade = fit_grade(pixel_sample(image, weight), references[index])
            return grade.apply(image)

        graded = blend_regions(image, [mask.cpu() for mask in masks], region)
    return graded.sub_(image).mul_(amount).add_(image).to(device)  # in place: may be large
