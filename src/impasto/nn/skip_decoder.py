"""A detail-keeping decoder for photorealistic transfer: the deepest layer's features back to an
image, with the features of shallower layers joining at their own resolution.

Shape: the plain decoder's (impasto.nn.decoder: a 3x3 convolution to ``width``, then per factor
of two a x2 nearest upsampling and two 3x3 convolutions, halving the width, a last 3x3
convolution to RGB), plus one join per skip layer: where the decoder reaches that layer's
resolution, the layer's features go through a 1x1 convolution to the decoder's width and are
added before the next convolutions. This is the role PhotoWCT's max-unpooling switches and
WCT2's wavelet high-frequency bands play (Li et al. 2018; Yoo et al. 2019): the shallow layers
carry where the edges are, which a decoder from the deepest layer alone must guess, and blurs.
For photorealism they are transformed like the deepest layer (whitened and coloured), so the
detail they bring is the photo's in the style's colours.
"""

from __future__ import annotations

import torch
from torch import nn

from .decoder import DecoderConfig
from .layers import PaddedConv2d


class SkipDecoder(nn.Module):
    """Features of ``config.layer`` (B, C, h, w) and of each skip layer -> images, linear."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        pad, width = config.padding, config.width
        self.head = nn.Sequential(PaddedConv2d(config.in_channels, width, 3, 1, pad), nn.ReLU())
        self.stages, self.joins = nn.ModuleList(), nn.ModuleDict()
        joining = {upsamplings: (layer, channels) for layer, channels, upsamplings in config.skips}
        self.order: list[str | None] = []  # the skip layer joining after each upsampling
        for done in range(config.upsamplings):
            narrower = max(config.min_width, width // 2)
            up = nn.Upsample(scale_factor=2.0, mode="nearest")
            first = PaddedConv2d(width, narrower, 3, 1, pad)
            second = PaddedConv2d(narrower, narrower, 3, 1, pad)
            self.stages.append(nn.ModuleList([nn.Sequential(up, first, nn.ReLU()),
                                              nn.Sequential(second, nn.ReLU())]))  # fmt: skip
            width = narrower
            layer, channels = joining.get(config.upsamplings - done - 1, (None, 0))
            if layer is not None:
                self.joins[layer] = nn.Conv2d(channels, width, 1)
            self.order.append(layer)
        self.tail = PaddedConv2d(width, 3, 3, 1, pad)

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None,
                skips: dict[str, torch.Tensor] | None = None) -> torch.Tensor:  # fmt: skip
        """Decode; ``skips``: the skip layers' features by name (all of them); ``size``
        (height, width): crop the output to it."""
        x = self.head(features)
        for (stage, refine), layer in zip(self.stages, self.order, strict=True):
            x = stage(x)
            if layer is not None:
                if skips is None or layer not in skips:
                    raise ValueError(f"this decoder needs the features of layer {layer}")
                joined = self.joins[layer](skips[layer].to(x.dtype))
                x = x + joined[..., : x.shape[-2], : x.shape[-1]]
            x = refine(x)
        image = self.tail(x)
        if size is not None:
            image = image[..., : size[0], : size[1]]
        return image
