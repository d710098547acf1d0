"""VGG-19 (Simonyan & Zisserman 2014), the loss network of Gatys et al. (2016).

Defined here so torchvision is not needed; torchvision's ImageNet state dict loads into it
(``features.N.*`` keys keep torchvision's indices; the classifier is not built and its keys are
dropped explicitly, every feature key must match). Layers are named ``conv1_1``, ``relu1_1``, ...,
``pool1``, ... as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from ..weights import VGG19 as WEIGHTS
from .base import Backbone, LayerDefaults

# Channels per block; "M" ends a block with pooling.
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M")  # fmt: skip

DEFAULTS = LayerDefaults(
    content_layers=("relu4_2",),
    # Gatys et al. use equal weights on relu1_1..relu5_1; since our per-layer losses are
    # normalised by the target Gram's energy (see losses.py), equal weights stay balanced.
    style_layers={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0},
    notes="Gatys et al. 2016: content relu4_2, style relu1_1..relu5_1.",
    adain_layer="relu4_1",  # Huang & Belongie 2017
    wct_layers=("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1"),  # Li et al. 2017
)


class VGG19(Backbone):
    """VGG-19 convolutional part with named layers and ImageNet input normalisation."""

    name = "vgg19"
    defaults = DEFAULTS
    optimised_bytes_per_pixel = 3600  # measured on the CPU: 3450 (docs/tiling.md)

    def __init__(self) -> None:
        super().__init__()
        mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
        self.register_buffer("std", std, persistent=False)
        block, conv, in_ch = 1, 1, 3
        for width in VGG19_CONFIG:
            if width == "M":
                self.stages[f"pool{block}"] = nn.MaxPool2d(2, 2)
                block, conv = block + 1, 1
                continue
            self.stages[f"conv{block}_{conv}"] = nn.Conv2d(in_ch, width, 3, padding=1)
            self.stages[f"relu{block}_{conv}"] = nn.ReLU(inplace=False)
            in_ch, conv = width, conv + 1

    def load_torchvision_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load torchvision's ``vgg19`` state dict strictly (classifier keys are dropped)."""
        index_of = {name: i for i, name in enumerate(self.stages)}
        renamed = {}
        for key, value in state_dict.items():
            if key.startswith("classifier."):
                continue
            parts = key.split(".")
            if len(parts) != 3 or parts[0] != "features" or not parts[1].isdigit():
                raise KeyError(f"unexpected key {key!r} in VGG-19 state dict")
            _, index, kind = parts
            names = [n for n, i in index_of.items() if i == int(index)]
            if not names:
                raise KeyError(f"unexpected key {key!r} in VGG-19 state dict")
            renamed[f"stages.{names[0]}.{kind}"] = value
        self.load_state_dict(renamed, strict=True)


def weights_available() -> bool:
    """True when the cached weights are here and match their sha256 (hashed once, remembered):
    ``auto`` must never pick a damaged file, and treats one as no weights."""
    from ..errors import WeightsError
    from ..weights import verified_path

    try:
        return verified_path(WEIGHTS) is not None
    except WeightsError:
        return False


def build(weights=None, allow_download: bool = True, progress=None) -> VGG19:
    """VGG-19 with torchvision's ImageNet weights: ``weights`` path, else the cache (once its
    sha256 matched), else download."""
    from ..weights import ensure, load_state_dict

    path = (
        weights
        if weights is not None
        else ensure(WEIGHTS, progress=progress, allow_download=allow_download)
    )
    backbone = VGG19()
    backbone.load_torchvision_state_dict(load_state_dict(path))
    return backbone
