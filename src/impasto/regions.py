"""Masks that give each style its region, and feature statistics over a region: shared by the
methods that transform features (AdaIN, WCT) for spatial control (Huang & Belongie 2017, fig.
7; Li et al. 2017, section 4).

A mask is a (1, 1, H, W) float tensor in [0, 1] (white: the style's region). At a feature
layer, masks are averaged down to the feature map's size (area), so a region's edge blends
over one feature pixel. Where masks overlap, their weights are divided by their sum; where no
mask covers a pixel, the content's own features stay (the photo shows through).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .errors import InputError
from .images import load_image, resize_to

MIN_REGION = 1e-3  # a region covering less than this share of the picture has no statistics


def masks_at(masks: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """(K, 1, h, w): each (1, 1, H, W) mask averaged (area) to ``size`` = (h, w)."""
    resized = [F.interpolate(mask.float(), size=size, mode="area") for mask in masks]
    return torch.cat(resized).clamp(0, 1)


def region_weights(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights, uncovered): weights (K, 1, h, w) that sum to 1 where any mask covers a pixel,
    and (1, 1, h, w) the share of each pixel that no mask covers (1 - max coverage)."""
    coverage = masks.sum(dim=0, keepdim=True)
    weights = torch.where(coverage > 0, masks / coverage.clamp_min(1e-12), masks)
    uncovered = 1 - masks.amax(dim=0, keepdim=True)
    return weights * (1 - uncovered), uncovered


def blend_regions(
    base: torch.Tensor,
    masks: Sequence[torch.Tensor],
    transform: Callable[[int, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Region by region: mask i's share (``region_weights``) of ``transform(i, region)``, with
    ``region`` mask i at ``base``'s size, (1, 1, h, w); ``base`` where no mask covers a pixel
    (the photo shows through). For the methods that give each style its --mask region."""
    regions = masks_at(masks, tuple(base.shape[-2:]))
    shares, uncovered = region_weights(regions)
    result = base * uncovered
    for index, (share, region) in enumerate(zip(shares, regions, strict=True)):
        result = result + share[None] * transform(index, region[None])
    return result


def weighted_mean_std(
    features: torch.Tensor, weight: torch.Tensor | None = None, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of (B, C, H, W) features over H and W, each
    position counted with ``weight`` (1, 1, H, W) (None: all alike) -> (B, C, 1, 1) twice."""
    if weight is None:
        std, mean = torch.std_mean(features, dim=(2, 3), keepdim=True, correction=0)
        return mean, (std.square() + eps).sqrt()
    total = weight.sum().clamp_min(1e-12)
    mean = (features * weight).sum(dim=(2, 3), keepdim=True) / total
    variance = ((features - mean).square() * weight).sum(dim=(2, 3), keepdim=True) / total
    return mean, (variance + eps).sqrt()


def weighted_mean_covariance(
    features: torch.Tensor, weight: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, 1) mean and (C, C) covariance of one image's (1, C, H, W) features in float64,
    positions weighted by ``weight`` (1, 1, H, W) (None: all alike)."""
    flat = features[0].reshape(features.shape[1], -1).double()
    if weight is None:
        mean = flat.mean(dim=1, keepdim=True)
        centred = flat - mean
        return mean, centred @ centred.T / max(1, flat.shape[1] - 1)
    w = weight.reshape(1, -1).double()
    total = w.sum().clamp_min(1e-12)
    mean = (flat * w).sum(dim=1, keepdim=True) / total
    centred = flat - mean
    return mean, (centred * w) @ centred.T / total


class Moments:
    """Weighted sums over one picture's feature positions, added a piece at a time (tiles): the
    whole picture's statistics without holding all its features. The same definitions as
    ``weighted_mean_std`` and ``weighted_mean_covariance`` (covariance over N - 1 without
    weights), in float64."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self.first: torch.Tensor | float = 0.0  # sum w f, (C, 1)
        self.second: torch.Tensor | float = 0.0  # sum w f f^T, (C, C)
        self.weighted = False

    def add(self, features: torch.Tensor, weight: torch.Tensor | None = None) -> None:
        """Count one image's (1, C, h, w) features, weighted by (1, 1, h, w) ``weight``."""
        flat = features[0].reshape(features.shape[1], -1).double().cpu()
        self.count += flat.shape[1]
        if weight is not None:
            self.weighted = True
            w = weight.reshape(1, -1).double().cpu()
            self.total += float(w.sum())
            self.first = self.first + (flat * w).sum(dim=1, keepdim=True)
            self.second = self.second + (flat * w) @ flat.T
        else:
            self.total += flat.shape[1]
            self.first = self.first + flat.sum(dim=1, keepdim=True)
            self.second = self.second + flat @ flat.T

    def mean_covariance(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(C, 1) mean and (C, C) covariance, as ``weighted_mean_covariance``."""
        total = max(self.total, 1e-12)
        mean = self.first / total
        covariance = self.second / total - mean @ mean.T
        if not self.weighted:
            covariance = covariance * total / max(1.0, total - 1)
        return mean, covariance

    def mean_std(self, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, C, 1, 1) mean and deviation, as ``weighted_mean_std`` (biased, plus eps)."""
        total = max(self.total, 1e-12)
        mean = self.first / total
        variance = (torch.diagonal(self.second) / total - mean[:, 0].square()).clamp_min(0)
        return mean.float().view(1, -1, 1, 1), (variance + eps).sqrt().float().view(1, -1, 1, 1)


def check_masks(masks: Sequence[torch.Tensor], style_count: int) -> None:
    """InputError unless there is one mask per style image and each covers some of the picture."""
    if len(masks) != style_count:
        raise InputError(
            f"--mask: {len(masks)} mask(s) for {style_count} style image(s); give one mask per "
            "style image, in the same order"
        )
    for index, mask in enumerate(masks, start=1):
        if float(mask.float().mean()) < MIN_REGION:
            raise InputError(f"--mask {index} is (nearly) black: it gives its style no region")


def load_mask(mask: Any) -> torch.Tensor:
    """A mask (a path, or a (1, 1, H, W) / (H, W) tensor in [0, 1]) as (1, 1, H, W) float; an
    image file's channels are averaged (white: 1)."""
    if isinstance(mask, torch.Tensor):
        values = mask.float()
        while values.ndim < 4:
            values = values.unsqueeze(0)
        if values.shape[:2] != (1, 1):
            values = values.mean(dim=1, keepdim=True)
        return values.clamp(0, 1)
    rgb = load_image(mask).rgb
    return rgb.mean(dim=1, keepdim=True)


KEEP_FEATHER = 1 / 200  # the blend beyond --keep's edge: this share of the long side


def keep_blend(result: torch.Tensor, content: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``--keep``: ``result`` (B, 3, H, W) with the photo ``content`` (B or 1, 3, h, w) put back
    where the mask ``keep`` (1, 1, h', w') is white; both are resized to the result. The mask's
    edge is feathered outwards (the mask, or two box blurs of KEEP_FEATHER of the long side,
    whichever is larger), so the kept pixels are the photo's exactly and the change to the
    stylised pixels around them is gradual: out = k * content + (1 - k) * result."""
    height, width = result.shape[-2:]
    mask = resize_to(keep.float(), height, width)
    radius = max(1, round(max(height, width) * KEEP_FEATHER))
    blurred = mask
    for _ in range(2):
        padded = F.pad(blurred, (radius,) * 4, mode="replicate")
        blurred = F.avg_pool2d(padded, 2 * radius + 1, stride=1)
    weight = torch.maximum(mask, blurred).to(result)
    photo = resize_to(content.float(), height, width).to(result)
    return weight * photo + (1 - weight) * result
