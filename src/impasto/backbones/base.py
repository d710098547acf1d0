"""The contract every feature extractor (backbone) fulfils.

A backbone takes float32 RGB images in [0, 1], shape (B, 3, H, W), normalises them itself,
and returns the activations of named layers. It carries its own default content layers and
per-layer style weights, because layers chosen for one network do not transfer to another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class LayerDefaults:
    """Default layers for Gatys-style losses on one backbone, with the evidence behind them."""

    content_layers: tuple[str, ...]
    style_layers: Mapping[str, float]
    notes: str = field(default="", compare=False)
    adain_layer: str = ""  # the layer AdaIN transforms (and its decoder inverts)
    wct_layers: tuple[str, ...] = ()  # WCT's levels, coarse to fine


class Backbone(nn.Module):
    """A frozen feature extractor with named layers.

    Subclasses fill ``stages`` (an ``nn.ModuleDict`` in forward order, each stage's output is a
    named layer), ``mean`` / ``std`` buffers for input normalisation, and ``defaults``.
    """

    name: str = "backbone"
    defaults: LayerDefaults
    # The stride of the first layer: above 1, the shallow style layers see the picture on a
    # coarser grid than its pixels (impasto.methods.gatys renders small sizes larger).
    first_stride: int = 1
    # Whether a step runs faster in the channels_last layout on the CPU too (it does on CUDA).
    channels_last_on_cpu: bool = False
    # Memory per optimised pixel in Gatys (the network's activations and their gradients,
    # L-BFGS's curvature pairs), for tiling: measured where a network sets it (docs/tiling.md),
    # else this, on the safe side.
    optimised_bytes_per_pixel: int = 4000

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleDict()

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(self.stages.keys())

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """Map [0, 1] RGB to the network's expected input (never in place)."""
        return (image - self.mean) / self.std

    def check_layers(self, layers: Iterable[str]) -> None:
        """Raise ValueError naming any unknown layer and the accepted ones."""
        known = set(self.layer_names)
        unknown = [name for name in layers if name not in known]
        if unknown:
            raise ValueError(
                f"unknown layer(s) {', '.join(unknown)} for backbone '{self.name}'; "
                f"choose from: {', '.join(self.layer_names)}"
            )

    def forward(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Return {layer: activation} for the requested layers, stopping at the deepest one."""
        wanted = set(layers)
        self.check_layers(wanted)
        features: dict[str, torch.Tensor] = {}
        x = self.normalize(image)
        for name, stage in self.stages.items():
            if not wanted:
                break
            x = stage(x)
            if name in wanted:
                features[name] = x
                wanted.discard(name)
        return features

    def freeze(self) -> Backbone:
        """Evaluation mode, no parameter gradients."""
        self.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self
