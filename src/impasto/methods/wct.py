"""WCT: universal style transfer by whitening and colouring transforms (Li, Fang, Yang, Wang, Lu
& Yang, "Universal Style Transfer via Feature Transforms", NeurIPS 2017).

Stylise (``WctRunner.transfer``), coarse to fine over the backbone's WCT layers l_1 .. l_n:
  x = c; for each level l:
    1. f = E_l(x): features of the current image at l, centred: f - mu_f.
    2. Whitening: f_w = E_f (D_f + r)^-1/2 E_f^T (f - mu_f), from the eigendecomposition of
       f's covariance (r: a small ridge), so f_w has identity covariance.
    3. Colouring: f_cs = E_s D_s^1/2 E_s^T f_w + mu_s: the style's covariance and mean.
    4. f' = alpha * f_cs + (1 - alpha) * f;  x = D_l(f'), the level's decoder.
Several styles: f_cs = sum_k w_k f_cs_k. Masks: each style whitens the content inside its
region only (the content's mean and covariance there) and colours it, region by region.

Decoders (``decoder_loss``): one per level, trained to reconstruct photos from their
features, no style image needed: L = ||D_l(E_l(c)) - c||^2 + w * L_c(E_l(D_l(E_l(c))), E_l(c)).

Numerics (float64 eigendecompositions on the CPU, a ridge): impasto.whitening.

Departures from the paper, and why:
- The encoder is EfficientNet-Lite0 (offline default) at three levels (block5_expand,
  block3_expand, stem: strides 8, 4, 2), not VGG-19 at five: docs/decoders.md has the
  evidence; the decoders are narrow (impasto.nn.decoder), for the CPU.
- ``alpha`` defaults to 0.6, the authors' code's default: on the six developer pairs (512 px,
  scored on EfficientNet-Lite2) the style ratio stayed the same from alpha 0.6 to 1 (0.334,
  0.327, 0.330 at 0.6, 0.8, 1) while SSIM fell (0.423, 0.391, 0.365): the decoders blur more
  than they paint beyond 0.6 (docs/decoders.md).
- A ridge instead of dropping eigenvalues under a threshold (impasto.whitening).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import losses
from ..config import option
from ..model_folder import shipped_models
from ..progress import ProgressCallback, ProgressEvent, report
from ..whitening import RIDGE, style_statistics, whiten_and_colour
from .feature_transfer import (
    TransferConfig,
    TransferMethod,
    TransferRunner,
)

NEWTON_SCHULZ_STEPS = 30  # matches eigh within 1e-3 on Lite0's features (docs/decoders.md)


def newton_schulz_roots(covariance: torch.Tensor, steps: int = NEWTON_SCHULZ_STEPS,
                        ridge: float = RIDGE) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(covariance^1/2, covariance^-1/2) by the coupled Newton-Schulz iteration: matrix
    products only, so it exports to ONNX (which has no eigensolver); the same ridge as
    ``symmetric_power``. For the exported graph; impasto itself uses the eigendecomposition."""
    channels = covariance.shape[-1]
    identity = torch.eye(channels, dtype=covariance.dtype, device=covariance.device)
    floor = ridge * torch.diagonal(covariance).mean() + 1e-8  # the ridge, and a floor for 0
    covariance = covariance + floor * identity
    norm = torch.linalg.matrix_norm(covariance)
    y, z = covariance / norm, identity
    for _ in range(steps):
        t = 0.5 * (3 * identity - z @ y)
        y, z = y @ t, t @ z
    return y * norm.sqrt(), z / norm.sqrt()


def _mean_covariance(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, 1) mean and (C, C) covariance of (1, C, H, W) features, in their precision."""
    flat = features[0].reshape(features.shape[1], -1)
    mean = flat.mean(dim=1, keepdim=True)
    centred = flat - mean
    return mean, centred @ centred.T / (flat.shape[1] - 1)


class WctGraph(torch.nn.Module):
    """The whole method as one module of (content, style, alpha), for ONNX export, with the
    Newton-Schulz roots in float32 in place of the eigendecomposition."""

    def __init__(self, encoder, decoders) -> None:
        super().__init__()
        self.encoder, self.decoders = encoder, decoders

    def forward(self, content: torch.Tensor, style: torch.Tensor,
                alpha: torch.Tensor) -> torch.Tensor:  # fmt: skip
        layers = self.decoders.layers
        styles = self.encoder(style, layers)
        size = (content.shape[-2], content.shape[-1])
        image = content
        for layer in layers:
            features = self.encoder(image, [layer])[layer]
            style_mean, style_covariance = _mean_covariance(styles[layer])
            root, _ = newton_schulz_roots(style_covariance)
            mean, covariance = _mean_covariance(features)
            _, inverse_root = newton_schulz_roots(covariance)
            flat = features[0].reshape(features.shape[1], -1)
            coloured = root @ (inverse_root @ (flat - mean)) + style_mean
            target = alpha * coloured.reshape(features.shape) + (1 - alpha) * features
            image = self.decoders(layer, target, size).clamp(0, 1)
        return image


@dataclass
class WctConfig(TransferConfig):
    """Options of ``stylize --method wct``."""

    alpha: float = option(0.6, "how much style: 0 keeps the photo, 1 takes the style fully "
                          "(at every level)", min=0.0, max=1.0)  # fmt: skip
    decoder: str | None = option(
        None,
        "the decoders: a folder from `impasto train decoder --method wct`, or a shipped one: "
        f"{', '.join(shipped_models('wct')) or 'none'}",
        metavar="DECODER",
        default_text="the shipped one",
    )


class WctRunner(TransferRunner):
    def prepare_styles(self, styles: list[torch.Tensor]) -> None:
        self.layers = self.model.decoders.layers
        self.style_stats = []  # per style: {layer: StyleStatistics}
        for style in styles:
            features = self.encode(style, self.layers)
            self.style_stats.append({name: style_statistics(features[name])
                                     for name in self.layers})  # fmt: skip

    def transfer(self, content, masks, progress: ProgressCallback | None) -> torch.Tensor:
        image = content
        for level, layer in enumerate(self.layers, start=1):
            what = f"wct level {level} ({layer})"
            image = self.through(image, masks, [layer], functools.partial(self.step, layer),
                                 progress, what)  # fmt: skip
            report(progress, ProgressEvent(what, level, len(self.layers)))
        return image

    def step(self, layer: str, image: torch.Tensor, masks, whole) -> torch.Tensor:
        """One level: encode, whiten and colour each image's features (with ``whole``: the
        whole picture's statistics), blend with alpha, decode."""
        features = self.encode(image, [layer])[layer]
        content = whole[layer] if whole else None
        target = torch.cat([whiten_and_colour(one[None], layer, self.style_stats, self.weights,
                                              masks, content)
                            for one in features])  # fmt: skip
        alpha = self.config.alpha
        target = alpha * target + (1 - alpha) * features.float()
        return self.decode(layer, target, tuple(image.shape[-2:]))


class WctMethod(TransferMethod):
    """The method table's ``wct``: any painting, coarse to fine through trained decoders."""

    name = "wct"
    config_class = WctConfig
    decoder_needs_styles = False
    runner_class = WctRunner
    graph_class = WctGraph

    # ---------------------------------------------------------------- decoder training

    def decoder_layers(self, backbone) -> tuple[str, ...]:
        """One decoder per level: the backbone's WCT layers, coarse to fine."""
        if not backbone.defaults.wct_layers:
            raise ValueError(f"backbone '{backbone.name}' names no WCT layers")
        return tuple(backbone.defaults.wct_layers)

    def decoder_loss(self, backbone, decoders, photos: torch.Tensor, styles,
                     weights: dict[str, float]) -> dict[str, torch.Tensor]:  # fmt: skip
        """Reconstruction at every level (module docstring); ``styles`` is not used."""
        with torch.no_grad():
            targets = backbone(photos, decoders.layers)
        pixel = feature = 0.0
        for layer in decoders.layers:
            image = decoders(layer, targets[layer], tuple(photos.shape[-2:]))
            pixel = pixel + F.mse_loss(image.float(), photos.float())
            again = backbone(image, [layer])[layer]
            feature = feature + losses.content_loss(again.float(), targets[layer].float())
        count = len(decoders.layers)
        pixel, feature = pixel / count, feature / count
        total = weights["pixel"] * pixel + weights["content"] * feature
        return {"total": total, "pixel": pixel, "content": feature}

    def decoder_preview(self, backbone, decoders, photo: torch.Tensor, style) -> torch.Tensor:
        """The photo and its reconstruction by each level's decoder, side by side."""
        features = backbone(photo, decoders.layers)
        size = tuple(photo.shape[-2:])
        decoded = [decoders(layer, features[layer], size) for layer in decoders.layers]
        return torch.cat([photo, *decoded], dim=-1)


METHOD = WctMethod()
