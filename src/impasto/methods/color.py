"""Colour transfer: the photo keeps every detail and takes the painting's palette. No network.

Algorithm, for a content image and one or more style images with weights w_i:
  1. Convert every image to the chosen colour space: CIE L*a*b* (D65; perceptual, the default),
     the sRGB values themselves (``rgb``) or YIQ.
  2. ``mode="histogram"`` (default): each channel's values are mapped to the style's quantiles
     at the same rank (histogram matching); with several styles the quantile functions are
     averaged with the weights (the 1-D Wasserstein barycentre).
     ``mode="meancov"``: the linear map between the colour distributions seen as Gaussians
     that moves colours least (Pitie & Kokaram 2007, "The linear Monge-Kantorovitch linear
     colour mapping for example-based colour transfer"):
         T = C_c^-1/2 (C_c^1/2 C_s C_c^1/2)^1/2 C_c^-1/2,   x' = T (x - mu_c) + mu_s,
     with (mu_s, C_s) the mixture of the styles' statistics (sum_i w_i mu_i, and
     sum_i w_i (C_i + mu_i mu_i^T) - mu_s mu_s^T). After it, the result's colour mean and
     covariance are the style's (up to clamping to the gamut).
  3. ``strength`` blends the result with the photo in that space (0: the photo, 1: all the way).
  4. Back to RGB, clamped to [0, 1].

Departures from the papers, and why:
- Reinhard et al. (2001) match per-channel means and deviations in l-alpha-beta; here the
  default matches whole per-channel histograms in CIE L*a*b* (today's standard perceptual
  space), and the Monge-Kantorovitch map also matches the channels' correlations. On the
  bundled pair (a blue-white sky, a yellow-ochre painting) histogram matching in L*a*b* gave
  the painting's palette; the linear map in RGB turned the sky magenta and green (a nearly
  one-dimensional colour cloud stretched along the painting's axes), so it is not the default.
- Statistics are computed in float64 with a small ridge on the covariances, so flat
  (single-colour) images do not make the matrix roots blow up.
- The style images' statistics are computed at up to ``STATS_SIZE`` px on their long side:
  the same numbers for a fraction of the time on large paintings.
- A photo over ``BAND_PIXELS`` is recoloured in bands of rows, in bounded memory: its
  statistics are gathered over every band first (the mean and covariance exactly; each
  channel's ranks through a histogram of ``RANK_BINS`` bins, interpolated within a bin), then
  each band is mapped with them. Whole and banded agree within 0.01 (tests/test_color.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..config import keep_option, option
from ..errors import InputError
from ..images import resize_long_side
from ..progress import ProgressCallback
from ..regions import blend_regions, check_masks, load_mask
from .base import Method, Prepared, StyleResult, style_weights

SPACE_CHOICES: tuple[str, ...] = ("lab", "rgb", "yiq")
MODE_CHOICES: tuple[str, ...] = ("histogram", "meancov")
STATS_SIZE = 1024  # long side at which style statistics are computed
RIDGE = 1e-5  # added to covariance diagonals (colour values in [0, 1] units of the space)
QUANTILES = 4096  # points of each style's quantile function (histogram mode)
BAND_PIXELS = 4_000_000  # larger photos are recoloured in bands of rows (module docstring)
RANK_BINS = 1 << 16  # histogram bins per channel for the ranks of a banded photo

# sRGB (D65) -> CIE XYZ, IEC 61966-2-1; the white point is its row sums.
RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=torch.float64,
)
RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=torch.float64,
)
LAB_SCALE = 100.0  # L* runs 0..100: spaces are scaled so the ridge means the same in each


@dataclass
class ColorConfig:
    """Options of ``--method color``."""

    mode: str = option(
        "histogram",
        "histogram: match each channel's histogram (the painting's palette); "
        "meancov: match the colour mean and covariance with one linear map (gentler on "
        "gradients, can shift hues)",
        choices=MODE_CHOICES,
    )
    space: str = option(
        "lab", "colour space of the transfer (lab: perceptual)", choices=SPACE_CHOICES
    )
    strength: float = option(
        1.0,
        "how far to move the colours (0: the photo, 1: the painting's palette)",
        min=0.0,
        max=1.0,
    )
    style_blend: list[float] | None = option(
        None,
        "weights of several style images, one per style image",
        metavar="W",
        default_text="equal",
    )
    size: int | None = option(
        None,
        "long side of the output in pixels",
        min=16,
        max=16384,
        default_text="the input's size",
    )
    mask: list[str] | None = option(
        None,
        "one mask image per style image, in the same order: white gives that style's palette "
        "its region (uncovered regions keep the photo)",
        metavar="MASK",
    )
    keep: str | None = keep_option()


# --------------------------------------------------------------------------- colour spaces


def _srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    linear = linear.clamp_min(0)
    return torch.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    delta = 6 / 29
    return torch.where(t > delta**3, t.clamp_min(1e-12) ** (1 / 3), t / (3 * delta**2) + 4 / 29)


def _lab_f_inverse(t: torch.Tensor) -> torch.Tensor:
    delta = 6 / 29
    return torch.where(t > delta, t**3, 3 * delta**2 * (t - 4 / 29))


def to_space(pixels: torch.Tensor, space: str) -> torch.Tensor:
    """(3, N) sRGB values in [0, 1] (float64) -> (3, N) in ``space`` (L*a*b* divided by 100)."""
    if space == "rgb":
        return pixels
    if space == "yiq":
        return RGB_TO_YIQ @ pixels
    xyz = RGB_TO_XYZ @ _srgb_to_linear(pixels)
    f = _lab_f(xyz / RGB_TO_XYZ.sum(dim=1, keepdim=True))
    lab = torch.stack([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])
    return lab / LAB_SCALE


def from_space(values: torch.Tensor, space: str) -> torch.Tensor:
    """The inverse of ``to_space`` (not clamped)."""
    if space == "rgb":
        return values
    if space == "yiq":
        return torch.linalg.solve(RGB_TO_YIQ, values)
    lightness, a, b = values * LAB_SCALE
    fy = (lightness + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200])
    xyz = _lab_f_inverse(f) * RGB_TO_XYZ.sum(dim=1, keepdim=True)
    return _linear_to_srgb(torch.linalg.solve(RGB_TO_XYZ, xyz))


# --------------------------------------------------------------------------- statistics


@dataclass
class Palette:
    """What the transfer needs of the style images, in the chosen space: the mixture's mean
    (3, 1) and covariance (3, 3), and the blended quantile function (3, QUANTILES)."""

    mean: torch.Tensor
    covariance: torch.Tensor
    quantiles: torch.Tensor


def _pixels(image: torch.Tensor) -> torch.Tensor:
    return image.reshape(3, -1).double()


def _mean_covariance(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = values.mean(dim=1, keepdim=True)
    centred = values - mean
    return mean, centred @ centred.T / values.shape[1]


def _root(matrix: torch.Tensor, power: float) -> torch.Tensor:
    """Symmetric matrix power through eigendecomposition. The covariances already carry the
    ridge; the floor only stops rounding from making an eigenvalue negative."""
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(1e-18).pow(power)) @ vectors.T


def palette_of(styles: Sequence[torch.Tensor], weights: Sequence[float], space: str) -> Palette:
    """The blended statistics of ``styles`` ((1, 3, H, W) in [0, 1]) with ``weights``."""
    positions = torch.linspace(0, 1, QUANTILES, dtype=torch.float64)
    mean = torch.zeros(3, 1, dtype=torch.float64)
    second = torch.zeros(3, 3, dtype=torch.float64)
    quantiles = torch.zeros(3, QUANTILES, dtype=torch.float64)
    for style, weight in zip(styles, weights, strict=True):
        if max(style.shape[-2:]) > STATS_SIZE:
            style = resize_long_side(style, STATS_SIZE)
        values = to_space(_pixels(style), space)
        style_mean, style_cov = _mean_covariance(values)
        mean += weight * style_mean
        second += weight * (style_cov + style_mean @ style_mean.T)
        quantiles += weight * torch.quantile(values, positions, dim=1).T
    covariance = second - mean @ mean.T + RIDGE * torch.eye(3, dtype=torch.float64)
    return Palette(mean, covariance, quantiles)


def _linear_map(covariance: torch.Tensor, palette: Palette) -> torch.Tensor:
    """The Monge-Kantorovitch matrix T (module docstring) from a photo's colour ``covariance``
    (ridge included) to the palette's."""
    root, inverse_root = _root(covariance, 0.5), _root(covariance, -0.5)
    return inverse_root @ _root(root @ palette.covariance @ root, 0.5) @ inverse_root


def _from_ranks(ranks: torch.Tensor, count: int, palette: Palette) -> torch.Tensor:
    """Each channel's values at ``ranks`` (3, N) among ``count`` pixels, read from the palette's
    quantile functions (linear interpolation between their points)."""
    position = ranks / max(1, count - 1) * (QUANTILES - 1)
    index = position.floor().long().clamp(0, QUANTILES - 2)
    fraction = (position - index).clamp(0, 1)
    return (palette.quantiles.gather(1, index) * (1 - fraction)
            + palette.quantiles.gather(1, index + 1) * fraction)  # fmt: skip


def _blended_rgb(values: torch.Tensor, moved: torch.Tensor, config: ColorConfig) -> torch.Tensor:
    """``config.strength`` of the way from ``values`` to ``moved``, back to RGB in [0, 1]."""
    return from_space(values + config.strength * (moved - values), config.space).clamp(0, 1)


def transfer(content: torch.Tensor, palette: Palette, config: ColorConfig) -> torch.Tensor:
    """``content`` (1, 3, H, W) in [0, 1] recoloured with ``palette`` -> (1, 3, H, W) in [0, 1];
    in bands of rows above BAND_PIXELS (``transfer_in_bands``)."""
    if content.shape[-2] * content.shape[-1] > BAND_PIXELS:
        return transfer_in_bands(content, palette, config)
    values = to_space(_pixels(content), config.space)
    if config.mode == "meancov":
        mean, covariance = _mean_covariance(values)
        covariance = covariance + RIDGE * torch.eye(3, dtype=torch.float64)
        moved = _linear_map(covariance, palette) @ (values - mean) + palette.mean
    else:
        count = values.shape[1]
        ranks = torch.empty_like(values)
        for channel in range(3):
            order = torch.argsort(values[channel], stable=True)
            ranks[channel, order] = torch.arange(count, dtype=torch.float64)
        moved = _from_ranks(ranks, count, palette)
    return _blended_rgb(values, moved, config).reshape(content.shape).to(content.dtype)


def transfer_in_bands(content: torch.Tensor, palette: Palette, config: ColorConfig,
                      rows: int | None = None) -> torch.Tensor:  # fmt: skip
    """``transfer`` of a large photo, ``rows`` rows at a time (default: about a million
    pixels): the photo's statistics gathered over the bands, then each band mapped."""
    height, width = content.shape[-2:]
    rows = rows or max(1, 1_000_000 // width)
    bands = [(top, min(height, top + rows)) for top in range(0, height, rows)]

    def band_values(top: int, bottom: int) -> torch.Tensor:
        return to_space(_pixels(content[..., top:bottom, :]), config.space)

    count = height * width
    if config.mode == "meancov":
        total, outer = (
            torch.zeros(3, 1, dtype=torch.float64),
            torch.zeros(3, 3, dtype=torch.float64),
        )
        for top, bottom in bands:
            values = band_values(top, bottom)
            total += values.sum(dim=1, keepdim=True)
            outer += values @ values.T
        mean = total / count
        covariance = outer / count - mean @ mean.T + RIDGE * torch.eye(3, dtype=torch.float64)
        linear = _linear_map(covariance, palette)
    else:
        low = torch.full((3,), float("inf"), dtype=torch.float64)
        high = torch.full((3,), float("-inf"), dtype=torch.float64)
        for top, bottom in bands:
            values = band_values(top, bottom)
            low, high = (
                torch.minimum(low, values.amin(dim=1)),
                torch.maximum(high, values.amax(dim=1)),
            )
        span = (high - low).clamp_min(1e-12)
        counts = torch.zeros(3, RANK_BINS, dtype=torch.float64)
        for top, bottom in bands:
            values = band_values(top, bottom)
            bins = (
                ((values - low[:, None]) / span[:, None] * RANK_BINS).long().clamp(0, RANK_BINS - 1)
            )
            counts.scatter_add_(1, bins, torch.ones_like(values))
        below = torch.cumsum(counts, dim=1) - counts  # pixels in the bins under each bin
    output = torch.empty(content.shape, dtype=content.dtype)
    for top, bottom in bands:
        values = band_values(top, bottom)
        if config.mode == "meancov":
            moved = linear @ (values - mean) + palette.mean
        else:
            place = (values - low[:, None]) / span[:, None] * RANK_BINS
            bins = place.long().clamp(0, RANK_BINS - 1)
            within = (place - bins).clamp(0, 1)
            ranks = below.gather(1, bins) + within * counts.gather(1, bins)
            moved = _from_ranks(ranks, count, palette)
        rgb = _blended_rgb(values, moved, config)
        output[..., top:bottom, :] = rgb.reshape(1, 3, bottom - top, width).to(content.dtype)
    return output


# --------------------------------------------------------------------------- the method


class ColorMethod(Method):
    """The method table's ``color``: style images in, no network; batches of any images."""

    name = "color"
    config_class = ColorConfig

    def check(self, config: ColorConfig, style_count: int | None) -> None:
        if style_count:
            style_weights(config.style_blend, style_count)
            if config.mask is not None and len(config.mask) != style_count:
                raise InputError(
                    f"--mask: {len(config.mask)} mask(s) for {style_count} style image(s); give "
                    "one mask per style image, in the same order"
                )

    def prepare(
        self, config: ColorConfig, styles: Sequence[torch.Tensor], *, backbone=None, notify=None
    ) -> ColorRunner:
        weights = style_weights(config.style_blend, len(styles))
        if config.mask is None:
            return ColorRunner(config, palette_of([s.cpu() for s in styles], weights, config.space))
        masks = [load_mask(mask) for mask in config.mask]
        check_masks(masks, len(styles))
        palettes = [palette_of([style.cpu()], [1.0], config.space) for style in styles]
        return ColorRunner(config, palettes[0], list(zip(masks, palettes, strict=True)))


class ColorRunner(Prepared):
    method = "color"
    max_batch = 8  # each image has its own statistics: a batch is a loop, not a tensor op

    def __init__(self, config: ColorConfig, palette: Palette, regions=None) -> None:
        self.config, self.palette = config, palette
        self.regions = regions  # with --mask: [(mask, its style's palette), ...]

    def recolour(self, image: torch.Tensor) -> torch.Tensor:
        """One (1, 3, H, W) photo recoloured; with --mask, each region with its own style's
        palette (shares where masks overlap, the photo where none is white)."""
        if self.regions is None:
            return transfer(image, self.palette, self.config)

        def recoloured(index: int, _region: torch.Tensor) -> torch.Tensor:
            return transfer(image, self.regions[index][1], self.config)

        return blend_regions(image, [mask for mask, _palette in self.regions], recoloured)

    def run(self, content: torch.Tensor, progress: ProgressCallback | None = None) -> StyleResult:
        if self.config.size is not None:
            content = resize_long_side(content, self.config.size)
        images = [self.recolour(image[None].cpu()) for image in content]
        details = {"mode": self.config.mode, "space": self.config.space}
        return StyleResult(torch.cat(images), method="color", device="cpu", details=details)


METHOD = ColorMethod()
