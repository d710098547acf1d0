"""Whitening and colouring of features (Li et al. 2017, "Universal Style Transfer via Feature
Transforms"): the transform the WCT and photo methods share, with their statistics.

Whitening: f_w = E_f (D_f + r)^-1/2 E_f^T (f - mu_f), from the eigendecomposition of f's
covariance (r: a small ridge), so f_w has identity covariance. Colouring: f_cs = E_s D_s^1/2
E_s^T f_w + mu_s: the style's covariance and mean. Several styles: f_cs = sum_k w_k f_cs_k.
Masks: each style whitens the content inside its region only (the content's mean and
covariance there) and colours it, region by region.

Numerics: covariances and eigendecompositions in float64 on the CPU, always, on one thread.
LAPACK's symmetric eigensolver on a few hundred channels takes milliseconds there (240
channels: 15 ms on one thread, 33 ms on two, and up to 0.5 s on a loaded machine with two, as
the threads wait for each other), less than a GPU's (cuSOLVER's launch and synchronisation cost
more than the work at these sizes), and float64 keeps the inverse square root of a nearly
singular covariance exact; the ridge r (1e-5 of the mean eigenvalue) keeps it bounded.
Whitening and colouring become one C x C matrix, applied on the device in the features'
precision (``colour_transform``). A ridge instead of dropping eigenvalues under a threshold:
continuous in the input, so a small change of the photo cannot flip which components are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .regions import Moments, blend_regions, weighted_mean_covariance

RIDGE = 1e-5  # of the mean eigenvalue


def symmetric_power(covariance: torch.Tensor, power: float, ridge: float = RIDGE) -> torch.Tensor:
    """covariance^power (float64 (C, C), symmetric) through its eigendecomposition, with
    ``ridge`` times the mean eigenvalue added to every eigenvalue (and a floor for an all-zero
    covariance)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # at these sizes more threads only wait for each other
    try:
        values, vectors = torch.linalg.eigh(covariance.double().cpu())
    finally:
        torch.set_num_threads(threads)
    values = values.clamp_min(0) + ridge * values.clamp_min(0).mean() + 1e-12
    return (vectors * values.pow(power)) @ vectors.T


@dataclass(frozen=True)
class StyleStatistics:
    """One style image at one level: mean (C, 1) and covariance^(1/2) (C, C), float64."""

    mean: torch.Tensor
    root: torch.Tensor


def style_statistics(features: torch.Tensor, region: torch.Tensor | None = None) -> StyleStatistics:
    """One style image's statistics at a level (over ``region`` (1, 1, H, W) only, when given)."""
    mean, covariance = weighted_mean_covariance(features, region)
    return StyleStatistics(mean.cpu(), symmetric_power(covariance, 0.5))


def colour_transform(
    features: torch.Tensor,
    style: StyleStatistics,
    region: torch.Tensor | None = None,
    content: Moments | None = None,
) -> torch.Tensor:
    """Whiten one image's features (1, C, H, W) with their own mean and covariance (over
    ``region`` (1, 1, H, W) only, when given) and colour them with ``style``'s: the result has
    the style's mean and covariance (within the ridge). Returned everywhere, in float32.
    ``content``: the whole picture's statistics, when ``features`` are one tile of it."""
    if content is not None:
        mean, covariance = content.mean_covariance()
    else:
        mean, covariance = weighted_mean_covariance(features, region)
    matrix = style.root @ symmetric_power(covariance, -0.5)  # (C, C) float64
    shift = style.mean - matrix @ mean.cpu()  # y = M (f - mu_f) + mu_s = M f + shift
    channels = features.shape[1]
    flat = features[0].reshape(channels, -1).float()
    out = matrix.to(flat) @ flat + shift.to(flat)
    return out.reshape(features.shape)


def whiten_and_colour(features: torch.Tensor, level: str, style_stats: Sequence[dict],
                      weights: Sequence[float], masks=None,
                      content: Sequence[Moments] | None = None) -> torch.Tensor:  # fmt: skip
    """One image's features (1, C, H, W) at ``level`` whitened and coloured with each style's
    statistics (``style_stats``: per style, {level: StyleStatistics}), blended with ``weights``;
    with ``masks`` (one (1, 1, H, W) per style), region by region, the uncovered part kept.
    ``content``: the whole picture's statistics at ``level`` (one per mask, or one without
    masks), when ``features`` are one tile of it."""
    if masks is None:
        whole = content[0] if content else None
        return sum(weight * colour_transform(features, stats[level], content=whole)
                   for weight, stats in zip(weights, style_stats, strict=True))  # fmt: skip

    def coloured(index: int, region: torch.Tensor) -> torch.Tensor:
        own = content[index] if content else None
        return colour_transform(features, style_stats[index][level], region, own)

    return blend_regions(features.float(), masks, coloured)
