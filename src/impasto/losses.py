"""Loss functions for style transfer: pure functions on tensors.

Normalisation (so weights keep their meaning across image sizes, layers and backbones):
- Gram matrices are averaged over spatial positions, so they do not grow with image size.
- Content and style losses are *relative*: the squared error divided by the squared norm of the
  target. A loss of 1.0 means "as far from the target as zero features would be", whatever the
  layer's channel count or activation scale. A style weight therefore means the same thing on
  VGG-19 and on EfficientNet-Lite0.
- Total variation is a mean over pixels, so it does not grow with image size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

EPS = 1e-8


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of (B, C, H, W) features -> (B, C, C), averaged over the H*W positions."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (height * width)


def style_loss(gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Relative Gram loss ||G - A||^2 / ||A||^2, averaged over the batch (Gatys et al. 2016)."""
    error = (gram - target_gram).pow(2).sum(dim=(-2, -1))
    return (error / (target_gram.pow(2).sum(dim=(-2, -1)) + EPS)).mean()


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative feature reconstruction loss ||F - P||^2 / ||P||^2."""
    return (features - target).pow(2).sum() / (target.pow(2).sum() + EPS)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared difference between neighbouring pixels (B, C, H, W)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def temporal_loss(image: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Ruder et al.'s temporal loss: the mean squared difference between ``image`` and
    ``target`` (the warped previous frame), both (B, 3, H, W), over the pixels where ``mask``
    (B or 1, 1, H, W) is 1: a mean, so it does not grow with the image or the mask."""
    error = (mask * (image.float() - target.float()).square()).sum()
    return error / (mask.sum() * image.shape[1] + EPS)


def blended_grams(
    features: Sequence[dict[str, torch.Tensor]], blend: Sequence[float], layers: Iterable[str]
) -> dict[str, torch.Tensor]:
    """Style targets: per layer, the ``blend``-weighted sum of the Gram matrices of each style
    image's ``features`` (one dict of layer -> (1, C, H, W) per image) -> (1, C, C) in float32."""
    targets: dict[str, torch.Tensor] = {}
    for name in layers:
        target = 0.0
        for image_features, weight in zip(features, blend, strict=True):
            target = target + weight * gram_matrix(image_features[name].float())
        targets[name] = target
    return targets


@dataclass(frozen=True)
class LossWeights:
    """The weights of the three terms of the perceptual loss."""

    content: float
    style: float
    tv: float


def perceptual_loss(
    image: torch.Tensor,
    features: dict[str, torch.Tensor],
    content_targets: dict[str, torch.Tensor],
    style_targets: dict[str, torch.Tensor],
    style_layers: dict[str, float],
    weights: LossWeights,
    extra: dict[str, tuple[float, torch.Tensor]] | None = None,
    gram: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The one assembly of the style-transfer objective, used by every optimising method
    (Gatys's image optimisation, fast-network training):

        total = w_content * mean_l L_content(F_l, P_l)
              + w_style * sum_l a_l L_style(G(F_l), A_l) / sum_l a_l  + w_tv * TV(image)
              (+ sum of ``extra`` weight * term, e.g. a temporal loss)

    ``features``: the backbone's features of ``image`` (B, 3, H, W) at every content layer (the
    keys of ``content_targets``) and style layer (the keys of ``style_layers``, weights a_l);
    ``style_targets``: Gram matrices (1 or B, C, C); ``gram(layer, features)``: G(F_l) where it
    is not ``gram_matrix`` of the features alone (a tile's share of a whole picture's, in
    impasto.perceptual). Losses are computed in float32. Returns (total, terms) with terms
    "total", "content", "style", "tv" and each extra name.
    """
    content = sum(
        content_loss(features[name].float(), target.float())
        for name, target in content_targets.items()
    ) / max(1, len(content_targets))
    weight_sum = sum(style_layers.values()) or 1.0
    of = gram or (lambda _name, layer: gram_matrix(layer))
    style = (
        sum(
            weight * style_loss(of(name, features[name].float()), style_targets[name])
            for name, weight in style_layers.items()
        )
        / weight_sum
    )
    tv = tv_loss(image.float())
    total = weights.content * content + weights.style * style + weights.tv * tv
    terms = {"content": content, "style": style, "tv": tv}
    for name, (weight, term) in (extra or {}).items():
        total = total + weight * term
        terms[name] = term
    return total, {"total": total, **terms}
