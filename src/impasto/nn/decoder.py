"""The decoder of the arbitrary-style methods (AdaIN, WCT): features of one backbone layer back
to an image.

Shape (the mirror of an encoder, as in Huang & Belongie 2017 and Li et al. 2017, narrowed for
the CPU): a 3x3 convolution from the layer's channels to ``width``; then, once per factor of two
of the layer's stride, x2 nearest-neighbour upsampling and two 3x3 convolutions, the width
halving each time (never under ``min_width``); a last 3x3 convolution to RGB. ReLU after every
convolution but the last, reflection padding, no normalisation layers: a normalisation would
wash out the very statistics AdaIN and WCT put into the features (the AdaIN paper's finding).

The output is linear (no sigmoid) and clamped to [0, 1] by the methods at inference: a sigmoid
slows the learning of saturated colours, which is where briefly trained decoders look grey.
Sizes that are not a multiple of the stride work: the backbone rounds its feature maps up
(ceil), the decoder's output is cropped back to the input's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import PADDING_CHOICES, PaddedConv2d

MAX_STRIDE_LOG2 = 6


@dataclass(frozen=True)
class DecoderConfig:
    """One decoder's architecture, stored in a model's config.json."""

    layer: str  # the backbone layer it inverts
    in_channels: int  # that layer's channels
    upsamplings: int  # log2 of that layer's stride
    width: int = 128  # channels after the first convolution
    min_width: int = 16
    padding: str = "reflect"
    # shallower layers joining on the way up (impasto.nn.skip_decoder): [layer, channels,
    # log2 stride] each; none for the plain decoder
    skips: tuple = ()

    def check(self) -> None:
        """ValueError for a config that must not size a network (read from untrusted files)."""
        for name, low, high in (("in_channels", 1, 4096), ("upsamplings", 0, MAX_STRIDE_LOG2),
                                ("width", 1, 1024), ("min_width", 1, 1024)):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"decoder '{name}' must be a whole number from {low} to {high}")
        if not isinstance(self.layer, str) or not self.layer:
            raise ValueError("decoder 'layer' must name a backbone layer")
        if self.padding not in PADDING_CHOICES:
            raise ValueError(f"unknown decoder padding {self.padding!r}")
        if not isinstance(self.skips, (list, tuple)) or len(self.skips) > MAX_STRIDE_LOG2:
            raise ValueError("decoder 'skips' must be a short list")
        strides = set()
        for skip in self.skips:
            if not _is_skip(skip, self.upsamplings) or skip[2] in strides:
                raise ValueError("decoder 'skips' must be [layer, channels, log2 stride] each, "
                                 "finer than the decoder's layer, one per stride")  # fmt: skip
            strides.add(skip[2])


def _is_skip(skip, upsamplings: int) -> bool:
    """``[layer, channels, log2 stride]``, the stride finer than the decoder's own."""
    if not isinstance(skip, (list, tuple)) or len(skip) != 3 or not isinstance(skip[0], str):
        return False
    numbers = skip[1:]
    if any(isinstance(value, bool) or not isinstance(value, int) for value in numbers):
        return False
    return 1 <= skip[1] <= 4096 and 0 <= skip[2] < upsamplings


class Decoder(nn.Module):
    """Features (B, C, h, w) of ``config.layer`` -> images (B, 3, h * 2^k, w * 2^k), linear."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        pad = config.padding
        width = config.width
        layers: list[nn.Module] = [PaddedConv2d(config.in_channels, width, 3, 1, pad), nn.ReLU()]
        for _ in range(config.upsamplings):
            narrower = max(config.min_width, width // 2)
            layers += [
                nn.Upsample(scale_factor=2.0, mode="nearest"),
                PaddedConv2d(width, narrower, 3, 1, pad),
                nn.ReLU(),
                PaddedConv2d(narrower, narrower, 3, 1, pad),
                nn.ReLU(),
            ]
            width = narrower
        layers.append(PaddedConv2d(width, 3, 3, 1, pad))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Decode; ``size`` (height, width): crop the output to it (the encoder's input size)."""
        image = self.layers(features)
        if size is not None:
            image = image[..., : size[0], : size[1]]
        return image
