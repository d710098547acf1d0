"""AdaIN: arbitrary style in one pass (Huang & Belongie, "Arbitrary Style Transfer in Real-time
with Adaptive Instance Normalization", ICCV 2017).

Stylise (``AdainRunner.transfer``):
  1. f_c = E(c), f_s = E(s): the backbone's features at its AdaIN layer (the encoder E is the
     backbone truncated there).
  2. t = sigma(f_s) * (f_c - mu(f_c)) / sigma(f_c) + mu(f_s): every channel of the content's
     features takes the style's mean and standard deviation over positions (``adain``).
  3. t = alpha * t + (1 - alpha) * f_c: the content-style trade-off.
  4. y = D(t): a decoder trained for this (``impasto train decoder --method adain``).
Several styles: t = sum_k w_k AdaIN(f_c, f_s_k) (interpolation, the paper's section 7).
Masks: each style's AdaIN uses the content's statistics inside its region only, and the
results are put together region by region (the paper's spatial control, fig. 9).

Decoder training (``decoder_loss``), per batch of photos c and style images s:
  L = w_content * L_c(E(D(t)), t) + w_style * sum_l L_s(phi_l(D(t)), phi_l(s)),
with L_s matching the mean and standard deviation of each style layer phi_l.

Departures from the paper, and why:
- The encoder is EfficientNet-Lite0 (the offline default), not VGG-19; the AdaIN layer is
  block5_expand (stride 8, like relu4_1), the style layers the backbone's own. The decoder
  is narrower than the paper's mirror of VGG (impasto.nn.decoder), so that a 2-core CPU
  stylises 512x512 in well under a second and can train it in about an hour.
- Losses are relative (squared error over the target's squared norm, impasto.losses), so the
  style weight keeps its meaning across layers and backbones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import losses
from ..config import option
from ..model_folder import shipped_models
from ..progress import ProgressCallback, ProgressEvent, report
from ..regions import Moments, blend_regions, weighted_mean_std
from .feature_transfer import (
    TransferConfig,
    TransferMethod,
    TransferRunner,
)


def adain(
    content: torch.Tensor,
    style_mean: torch.Tensor,
    style_std: torch.Tensor,
    region: torch.Tensor | None = None,
    whole: Moments | None = None,
) -> torch.Tensor:
    """Content features (B, C, H, W) with each channel's mean and std replaced by the style's
    ((B or 1, C, 1, 1) each); ``region`` (1, 1, H, W): the content's statistics are taken over
    that region only (the result is still given everywhere). ``whole``: the whole picture's
    statistics, when ``content`` is one tile of it."""
    if whole is not None:
        mean, std = (value.to(content.device) for value in whole.mean_std())
    else:
        mean, std = weighted_mean_std(content.float(), region)
    return ((content.float() - mean) / std * style_std + style_mean).to(content.dtype)


def statistics_loss(features: torch.Tensor, target_mean: torch.Tensor,
                    target_std: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """The AdaIN paper's style loss, relative: (||mu - mu_s||^2 + ||sigma - sigma_s||^2) over
    (||mu_s||^2 + ||sigma_s||^2), per image, averaged over the batch."""
    mean, std = weighted_mean_std(features.float())
    error = (mean - target_mean).square().sum(dim=(1, 2, 3)) + (std - target_std).square().sum(
        dim=(1, 2, 3)
    )
    scale = target_mean.square().sum(dim=(1, 2, 3)) + target_std.square().sum(dim=(1, 2, 3))
    return (error / (scale + losses.EPS)).mean()


@dataclass
class AdainConfig(TransferConfig):
    """Options of ``stylize --method adain``."""

    decoder: str | None = option(
        None,
        "the decoder: a folder from `impasto train decoder --method adain`, or a shipped one: "
        f"{', '.join(shipped_models('adain')) or 'none'}",
        metavar="DECODER",
        default_text="the shipped one",
    )


class AdainRunner(TransferRunner):
    def prepare_styles(self, styles: list[torch.Tensor]) -> None:
        self.layer = self.model.decoders.layers[0]
        self.style_stats = [
            weighted_mean_std(self.encode(style, [self.layer])[self.layer].float())
            for style in styles
        ]

    def transfer(self, content, masks, progress: ProgressCallback | None) -> torch.Tensor:
        what = f"adain ({self.model.name})"
        image = self.through(content, masks, [self.layer], self.step, progress, what)
        report(progress, ProgressEvent(what, 1, 1))
        return image

    def step(self, content: torch.Tensor, masks, whole) -> torch.Tensor:
        """Encode, AdaIN (with ``whole``: the whole picture's statistics), decode."""
        features = self.encode(content, [self.layer])[self.layer]
        statistics = whole[self.layer] if whole else [None] * len(masks or [None])
        if masks is None:
            target = sum(weight * adain(features, mean, std, whole=statistics[0])
                         for weight, (mean, std) in zip(self.weights, self.style_stats,
                                                        strict=True))  # fmt: skip
        else:

            def styled(index: int, region: torch.Tensor) -> torch.Tensor:
                mean, std = self.style_stats[index]
                return adain(features, mean, std, region, statistics[index]).float()

            target = blend_regions(features.float(), masks, styled)
        alpha = self.config.alpha
        target = alpha * target + (1 - alpha) * features.float()
        return self.decode(self.layer, target, tuple(content.shape[-2:]))


class AdainGraph(torch.nn.Module):
    """The whole method as one module of (content, style, alpha), for ONNX export: the
    content's size and the style's are free; one image each."""

    def __init__(self, encoder, decoders) -> None:
        super().__init__()
        self.encoder, self.decoders = encoder, decoders
        (self.layer,) = decoders.layers

    def forward(self, content: torch.Tensor, style: torch.Tensor,
                alpha: torch.Tensor) -> torch.Tensor:  # fmt: skip
        features = self.encoder(content, [self.layer])[self.layer]
        mean, std = weighted_mean_std(self.encoder(style, [self.layer])[self.layer])
        target = alpha * adain(features, mean, std) + (1 - alpha) * features
        size = (content.shape[-2], content.shape[-1])
        return self.decoders(self.layer, target, size).clamp(0, 1)


class AdainMethod(TransferMethod):
    """The method table's ``adain``: any painting in one pass through a trained decoder."""

    name = "adain"
    config_class = AdainConfig
    decoder_needs_styles = True
    runner_class = AdainRunner
    graph_class = AdainGraph

    # ---------------------------------------------------------------- decoder training

    def decoder_layers(self, backbone) -> tuple[str, ...]:
        """The layer the decoder inverts: the backbone's AdaIN layer."""
        if not backbone.defaults.adain_layer:
            raise ValueError(f"backbone '{backbone.name}' names no AdaIN layer")
        return (backbone.defaults.adain_layer,)

    def decoder_loss(self, backbone, decoders, photos: torch.Tensor, styles: torch.Tensor,
                     weights: dict[str, float]) -> dict[str, torch.Tensor]:  # fmt: skip
        """The training objective (module docstring) for one batch; photo i meets style i."""
        (layer,) = decoders.layers
        style_layers = list(backbone.defaults.style_layers)
        with torch.no_grad():
            content_features = backbone(photos, [layer])[layer]
            style_features = backbone(styles, sorted({*style_layers, layer}))
            mean, std = weighted_mean_std(style_features[layer].float())
            target = adain(content_features, mean, std)
        image = decoders(layer, target, tuple(photos.shape[-2:]))
        features = backbone(image, sorted({*style_layers, layer}))
        content = losses.content_loss(features[layer].float(), target.float())
        style = sum(
            statistics_loss(features[name], *weighted_mean_std(style_features[name].float()))
            for name in style_layers
        ) / len(style_layers)
        total = weights["content"] * content + weights["style"] * style
        return {"total": total, "content": content, "style": style}

    def decoder_preview(self, backbone, decoders, photo: torch.Tensor,
                        style: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """The photo stylised with the style image, for the training's previews."""
        (layer,) = decoders.layers
        features = backbone(photo, [layer])[layer]
        target = adain(features, *weighted_mean_std(backbone(style, [layer])[layer].float()))
        return decoders(layer, target, tuple(photo.shape[-2:]))


METHOD = AdainMethod()
