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
