"""Pixel metrics, computed without a network: structure (``ssim``) and colour
(``color_distance``), both in YIQ space."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..color import rgb_to_yiq
from ..errors import InputError
from .base import check_image, same_size, size_text


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The 1-D Gaussian (size,) that, applied along rows then columns, is SSIM's 2-D window."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _luminance(image: torch.Tensor) -> torch.Tensor:
    return rgb_to_yiq(image.double())[:, :1]


def _local_means(*maps: torch.Tensor) -> list[torch.Tensor]:
    """Each (1, 1, H, W) map blurred by SSIM's 11x11 Gaussian window (sigma 1.5), valid
    convolution, all in one separable pass (the 2-D Gaussian is an outer product)."""
    window = _gaussian_window().to(maps[0])
    blurred = F.conv2d(F.conv2d(torch.cat(maps), window[None, None, :, None]),
                       window[None, None, None])  # fmt: skip
    return list(blurred[:, None])


def _ssim_map(mu_x, mu_y, var_x, var_y, cov) -> torch.Tensor:
    c1, c2 = 0.01**2, 0.03**2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return numerator / denominator


def _check_pair(image: torch.Tensor, reference: torch.Tensor) -> None:
    check_image(image, "image"), check_image(reference, "reference")
    same_size(image, reference, "ssim")
    if min(image.shape[-2:]) < 11:
        raise InputError(f"ssim needs images of at least 11x11 pixels, got {size_text(image)}")


def ssim(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Structural similarity of the luminance (YIQ Y) of ``image`` and ``reference``.

    Wang et al. 2004: SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) /
    ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)), local statistics from an 11x11
    Gaussian window (sigma 1.5), C1 = 0.01^2, C2 = 0.03^2 (data range 1), valid convolution
    (no padding), averaged over the map. Both images (1, 3, H, W), same size, at least 11x11.

    Range [-1, 1]; 1.0 for identical images; higher is better (more of the structure kept).
    """
    _check_pair(image, reference)
    x = _luminance(image)
    y = _luminance(reference.to(image))
    mu_x, mu_y, xx, yy, xy = _local_means(x, y, x * x, y * y, x * y)
    return float(_ssim_map(mu_x, mu_y, xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y).mean())


def blend_ssim(reference: torch.Tensor, changed: torch.Tensor) -> Callable[[float], float]:
    """``share -> ssim(reference + share * (changed - reference), reference)``, from one pass
    of local statistics: the blend's local means, variance and covariance with the reference
    are polynomials in the share, so each call costs a few element-wise operations."""
    _check_pair(changed, reference)
    c = _luminance(reference)
    d = _luminance(changed.to(reference)) - c
    mu_c, mu_d, cc, dd, cd = _local_means(c, d, c * c, d * d, c * d)
    var_c, var_d, cov_cd = cc - mu_c**2, dd - mu_d**2, cd - mu_c * mu_d

    def at(share: float) -> float:
        mu_x = mu_c + share * mu_d
        var_x = var_c + 2 * share * cov_cd + share**2 * var_d
        return float(_ssim_map(mu_x, mu_c, var_x, var_c, var_c + share * cov_cd).mean())

    return at


def _fibonacci_directions(count: int = 64) -> torch.Tensor:
    """``count`` unit vectors spread evenly over the sphere (Fibonacci lattice), (count, 3).

    The polar axis is Y (luminance): the polar coordinates are z_k = 1 - (2k + 1) / count, the
    midpoints of ``count`` equal slices of [-1, 1]; the azimuth turns by the golden angle.
    Deterministic and more even than random directions.
    """
    k = torch.arange(count, dtype=torch.float64)
    z = 1 - (2 * k + 1) / count
    radius = torch.sqrt(1 - z**2)
    angle = k * math.pi * (3 - math.sqrt(5))
    return torch.stack([z, radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)


COLOR_DIRECTIONS: torch.Tensor = _fibonacci_directions(64)
"""The 64 unit directions in YIQ space that ``color_distance`` projects onto, (64, 3)."""

COLOR_QUANTILES = 256


def quantiles(values: torch.Tensor, count: int) -> torch.Tensor:
    """Quantiles of each column of ``values`` (N, D) at levels (i + 0.5) / count -> (count, D).

    Linear interpolation between order statistics (like numpy's default); no size limit.
    """
    ordered, _ = torch.sort(values, dim=0)
    n = ordered.shape[0]
    levels = (torch.arange(count, dtype=torch.float64) + 0.5) / count
    position = levels * (n - 1)
    low = position.floor().long()
    high = position.ceil().long()
    frac = (position - low).to(ordered)[:, None]
    return ordered[low] * (1 - frac) + ordered[high] * frac


def color_distance(image: torch.Tensor, style: torch.Tensor) -> float:
    """Sliced Wasserstein-1 distance between the pixel colours of ``image`` and ``style`` in YIQ.

    Every pixel is a point (Y, I, Q); the two colour clouds are projected onto the 64 fixed
    unit directions of ``COLOR_DIRECTIONS``; along each direction the 1-D Wasserstein-1
    distance is the mean absolute difference of the two distributions' quantiles at 256 levels
    ((i + 0.5) / 256). The result is the mean over directions, times 2: for directions spread
    evenly over the sphere the mean of |d . u| is |u| / 2, so the factor makes two single
    colours score (about) their Euclidean distance in YIQ. Sizes may differ; no resizing.

    Range [0, about 1.8]; 0 for identical colour distributions; lower = closer to the style's
    colours.
    """
    image, style = check_image(image, "image"), check_image(style, "style")
    directions = COLOR_DIRECTIONS
    distances = []
    for picture in (image, style):
        pixels = rgb_to_yiq(picture.double()).reshape(3, -1).T.cpu()  # (N, 3)
        distances.append(quantiles(pixels @ directions.T, COLOR_QUANTILES))
    per_direction = (distances[0] - distances[1]).abs().mean(dim=0)
    return float(2 * per_direction.mean())
