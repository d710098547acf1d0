"""Johnson et al.'s image transformation network (ECCV 2016), as impasto builds it: the fast
method's network, and a building block for any feed-forward image-to-image method.

9x9 conv (width c), two stride-2 3x3 convs (2c, 4c), residual blocks at 4c, two (x2 nearest
upsample, 3x3 conv) stages back to c, a 9x9 conv to RGB; instance normalisation and ReLU after
every conv but the last. Departures from the paper are listed in impasto.methods.fast.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .layers import PADDING_CHOICES, ConvNormReLU, PaddedConv2d, ResidualBlock, UpsampleConv

EDGE_KERNEL_CHOICES: tuple[int, ...] = (3, 5, 7, 9)


@dataclass(frozen=True)
class NetworkConfig:
    """The architecture, stored in a model's config.json."""

    channels: int = 32
    residual_blocks: int = 5
    padding: str = "reflect"
    edge_kernel: int = 9  # the first and last convolutions' kernel (the paper's 9)


def network_config_from(options: dict) -> NetworkConfig:
    """A model folder's network options, checked before anything is built (an untrusted config
    must not size the network): ValueError naming the first bad option."""
    known = {f.name for f in fields(NetworkConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown network options {', '.join(unknown)}")
    config = NetworkConfig(**options)
    for name, low, high in (("channels", 1, 256), ("residual_blocks", 0, 32)):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"'{name}' must be a whole number from {low} to {high}")
    if not isinstance(config.padding, str) or config.padding not in PADDING_CHOICES:
        raise ValueError(f"unknown padding {config.padding!r}")
    edge = config.edge_kernel
    if type(edge) is not int or edge not in EDGE_KERNEL_CHOICES:  # 9.0 == 9, True == 1
        raise ValueError(f"'edge_kernel' must be one of {EDGE_KERNEL_CHOICES}")
    return config


class TransformNet(nn.Module):
    """Images (B, 3, H, W) in [0, 1], any H and W -> stylised images of the same shape."""

    def __init__(self, config: NetworkConfig = NetworkConfig()) -> None:
        super().__init__()
        c, pad, edge = config.channels, config.padding, config.edge_kernel
        self.config = config
        self.encoder = nn.Sequential(
            ConvNormReLU(3, c, edge, 1, pad),
            ConvNormReLU(c, 2 * c, 3, 2, pad),
            ConvNormReLU(2 * c, 4 * c, 3, 2, pad),
        )
        self.residuals = nn.Sequential(
            *(ResidualBlock(4 * c, pad) for _ in range(config.residual_blocks))
        )
        self.decoder = nn.Sequential(
            UpsampleConv(4 * c, 2 * c, pad),
            UpsampleConv(2 * c, c, pad),
            PaddedConv2d(c, 3, edge, 1, pad),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        pad_h, pad_w = (-height) % 4, (-width) % 4
        # Unconditional (often a zero pad): an exported graph must not bake in one size's branch.
        x = F.pad(images * 2.0 - 1.0, (0, pad_w, 0, pad_h), mode="replicate")
        y = torch.sigmoid(self.decoder(self.residuals(self.encoder(x))))
        return y[..., :height, :width]
