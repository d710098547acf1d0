"""A tiny random backbone for tests only: a few channels, VGG-like layer names, seconds to run.

Its weights are random (seeded) and it is never chosen automatically; it exists so every method
can be exercised at 32-64 px in seconds.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Backbone, LayerDefaults

DEFAULTS = LayerDefaults(
    content_layers=("relu3_1",),
    style_layers={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0},
    notes="Random weights: for tests, not for art.",
    adain_layer="relu3_1",
    wct_layers=("relu3_1", "relu2_1", "relu1_1"),
)


class TinyBackbone(Backbone):
    """Three conv blocks of 8/16/32 channels with VGG-style names and fixed random weights."""

    name = "tiny"
    defaults = DEFAULTS

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), 0.25), persistent=False)
        generator = torch.Generator().manual_seed(seed)
        in_ch = 3
        for block, width in enumerate((8, 16, 32), start=1):
            if block > 1:
                self.stages[f"pool{block - 1}"] = nn.AvgPool2d(2)
            conv = nn.Conv2d(in_ch, width, 3, padding=1)
            with torch.no_grad():
                conv.weight.normal_(0.0, (2.0 / (9 * in_ch)) ** 0.5, generator=generator)
                conv.bias.zero_()
            self.stages[f"conv{block}_1"] = conv
            self.stages[f"relu{block}_1"] = nn.ReLU()
            in_ch = width


def weights_available() -> bool:
    return True


def build(weights=None, allow_download: bool = True, progress=None) -> TinyBackbone:
    """Random weights; ``weights``, if given, is a state dict file to load strictly."""
    backbone = TinyBackbone()
    if weights is not None:
        from ..weights import load_state_dict

        backbone.load_state_dict(load_state_dict(weights), strict=True)
    return backbone
