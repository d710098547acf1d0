"""Reusable layers for image-to-image networks (the fast method's transformation network, and
decoders to come): instance norm, reflection padding and convolutions whose computation can be
switched to kernels that keep channels_last tensors in that layout.

Why the switch: CUDA's own instance-norm, group-norm and reflection-pad kernels convert
channels_last input to NCHW and the next convolution converts back, which made fp16
channels_last slower than fp32 in pytorch/examples' network (benchmarks/bench_fast.py,
benchmarks/README.md). ``set_kernels`` picks, ``inference_kernels`` says which to pick.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

PADDING_CHOICES: tuple[str, ...] = ("reflect", "zeros")
NORM_KERNELS = ("group_norm", "var_mean", "batch_norm")
PAD_KERNELS = ("torch", "layout")


class InstanceNorm(nn.Module):
    """Per-image, per-channel normalisation over H and W with a learned scale and shift.

    ``kernel`` picks how it is computed (the same function each time):
    - ``group_norm`` (default): a group norm with one channel per group, one fused kernel. On the
      CPU it keeps channels_last tensors in that layout and was 5x faster than explicit ops
      (benchmarks/README.md). On CUDA it copies channels_last input to NCHW first.
    - ``var_mean``: per-channel statistics, then one multiply-add; elementwise ops keep any
      layout, so channels_last stays channels_last (the CUDA inference path). In half
      precision the statistics are summed in float32 but come back rounded, and the
      multiply-add runs in the input's precision: for activations whose mean is many times
      their spread that is less exact than the group norm (not the case in trained networks:
      within 0.0021 of the fp32 reference's pixels on an H200).
    - ``batch_norm``: for a batch of one image, instance norm is batch norm in training mode
      without running statistics, whose CUDA kernels read channels_last natively; larger
      batches use ``var_mean``.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.kernel = "group_norm"
        self.statistics: str | tuple[torch.Tensor, torch.Tensor] | None = None  # see below

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # statistics_from: "record" keeps this input's (std, mean); a kept pair is used
        # instead of each input's own
        if isinstance(self.statistics, tuple):
            return self._from_statistics(x, self.statistics)
        if self.statistics == "record":
            std, mean = torch.std_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
            self.statistics = (std, mean)
            return self._from_statistics(x, self.statistics)
        if self.kernel == "var_mean" or (self.kernel == "batch_norm" and x.shape[0] > 1):
            return self._from_statistics(x)
        weight, bias = self.weight.to(x.dtype), self.bias.to(x.dtype)
        if self.kernel == "batch_norm":
            return F.batch_norm(x, None, None, weight, bias, training=True, eps=self.eps)
        return F.group_norm(x, x.shape[1], weight, bias, self.eps)

    def _from_statistics(self, x: torch.Tensor, statistics=None) -> torch.Tensor:
        # std, not var: a half-precision variance overflows from a spread of 256 up
        if statistics is None:
            std, mean = torch.std_mean(x, dim=(2, 3), keepdim=True, correction=0)
        else:
            std, mean = statistics
        scale = self.weight.float().view(1, -1, 1, 1) * torch.rsqrt(std.float().square() + self.eps)
        shift = self.bias.float().view(1, -1, 1, 1) - mean.float() * scale
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


@contextmanager
def statistics_from(network: nn.Module, images: torch.Tensor) -> Iterator[None]:
    """Within the block, every InstanceNorm of ``network`` normalises with the per-image,
    per-channel statistics it met when ``network`` ran on ``images`` (B, 3, h, w), not with
    its input's own: so tiles of a picture are normalised alike, as the whole picture would be
    (Thumbnail Instance Normalization, Chen et al., "Towards Ultra-Resolution Neural Style
    Transfer via Thumbnail Instance Normalization", AAAI 2022). ``images`` is the whole
    picture where it fits in memory (then the tiles' statistics are exactly the picture's), a
    smaller copy of it otherwise. Tiles must come in batches of B, the images' order."""
    norms = [module for module in network.modules() if isinstance(module, InstanceNorm)]
    for norm in norms:
        norm.statistics = "record"
    try:
        with torch.inference_mode():
            network(images)
        yield
    finally:
        for norm in norms:
            norm.statistics = None


def reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``F.pad(x, (pad,) * 4, mode="reflect")`` that keeps x's memory layout.

    CUDA's reflection-pad kernel returns NCHW whatever it is given, so a channels_last network
    pays a layout conversion there and another one in the next convolution. Here: one copy of
    x into the middle of a tensor of x's layout, then the thin borders mirrored in place.
    """
    if pad == 0:
        return x
    batch, channels, height, width = x.shape
    if pad >= height or pad >= width:
        raise ValueError(f"reflection padding {pad} needs more than {pad} pixels per side")
    out = torch.empty(
        (batch, channels, height + 2 * pad, width + 2 * pad),
        dtype=x.dtype,
        device=x.device,
        memory_format=layout_of(x),
    )
    inner = slice(pad, pad + width)
    out[:, :, pad : pad + height, inner] = x
    # rows above and below mirror the rows next to the edge (the edge row is not repeated)
    out[:, :, :pad, inner] = _mirrored(x[:, :, 1 : pad + 1], 2)
    out[:, :, pad + height :, inner] = _mirrored(x[:, :, height - pad - 1 : height - 1], 2)
    # then whole columns, corners included, from the padded rows
    out[:, :, :, :pad] = _mirrored(out[:, :, :, pad + 1 : 2 * pad + 1], 3)
    out[:, :, :, pad + width :] = _mirrored(out[:, :, :, width - 1 : width + pad - 1], 3)
    return out


def _mirrored(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x if x.shape[dim] == 1 else x.flip(dim)


class PaddedConv2d(nn.Conv2d):
    """A convolution with ``kernel // 2`` padding (reflect or zeros) on every side.

    The same weights and result as ``nn.Conv2d(padding_mode=...)``; padding here lets the
    channels_last inference path choose a padding kernel that keeps that layout (``pad_kernel``
    ``layout``: ``reflect_pad``; ``torch``: ``F.pad``, the default and what ONNX export sees).
    """

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, padding: str = "reflect"
    ) -> None:
        if padding not in PADDING_CHOICES:
            raise ValueError(f"unknown padding {padding!r}; choose from {PADDING_CHOICES}")
        super().__init__(cin, cout, kernel, stride, padding=0)
        self.pad = kernel // 2
        self.padding_kind = padding
        self.pad_kernel = "torch"
        self.align_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.weight, self.bias
        extra_in = (-self.in_channels) % self.align_channels
        extra_out = (-self.out_channels) % self.align_channels
        if extra_in or extra_out:
            # Zero channels in and out (the RGB ends): the same sums, a tensor-core friendly shape.
            x = F.pad(x, (0, 0, 0, 0, 0, extra_in))
            weight = F.pad(weight, (0, 0, 0, 0, 0, extra_in, 0, extra_out))
            weight = weight.contiguous(memory_format=layout_of(x))
            bias = F.pad(bias, (0, extra_out)) if bias is not None else None
        if self.padding_kind == "zeros":
            y = F.conv2d(x, weight, bias, self.stride, self.pad)
        else:
            if self.pad_kernel == "layout":
                x = reflect_pad(x, self.pad)
            else:
                x = F.pad(x, (self.pad,) * 4, mode="reflect")
            y = F.conv2d(x, weight, bias, self.stride)
        return y[:, : self.out_channels] if extra_out else y


def layout_of(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def set_kernels(
    network: nn.Module, norm: str = "group_norm", pad: str = "torch", align: int = 1
) -> nn.Module:
    """Choose how ``network``'s instance norms, paddings and convolutions are computed (the
    results are the same). ``align``: convolutions with a channel count that is not a multiple
    of it (the 3-channel RGB ends) run with zero channels added up to one."""
    if norm not in NORM_KERNELS or pad not in PAD_KERNELS or align < 1:
        raise ValueError(f"unknown kernels norm={norm!r} pad={pad!r} align={align!r}")
    for module in network.modules():
        if isinstance(module, InstanceNorm):
            module.kernel = norm
        elif isinstance(module, PaddedConv2d):
            module.pad_kernel = pad
            module.align_channels = align
    return network


class ConvNormReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: str) -> None:
        super().__init__(
            PaddedConv2d(cin, cout, kernel, stride, padding),
            InstanceNorm(cout),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, padding: str) -> None:
        super().__init__()
        self.conv1 = PaddedConv2d(channels, channels, 3, 1, padding)
        self.norm1 = InstanceNorm(channels)
        self.conv2 = PaddedConv2d(channels, channels, 3, 1, padding)
        self.norm2 = InstanceNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        return x + self.norm2(self.conv2(y))


class UpsampleConv(nn.Module):
    """x2 nearest-neighbour upsampling, then a 3x3 conv, instance norm and ReLU."""

    def __init__(self, cin: int, cout: int, padding: str) -> None:
        super().__init__()
        self.block = ConvNormReLU(cin, cout, 3, 1, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def inference_kernels(
    device_type: str, channels_last: bool, compiled: bool
) -> tuple[str, str, int]:
    """(norm, pad, align) for ``set_kernels`` at inference.

    Measured on an H200 (benchmarks/README.md): eager channels_last on CUDA needs the
    layout-keeping norm and padding (CUDA's group-norm, instance-norm and reflection-pad
    kernels convert channels_last to NCHW, and the next convolution converts back: the slow
    fp16 channels_last runs of popular implementations). Under torch.compile torch's own ops
    compile better (4K, one run: 3.1x the reference with them and 8-channel RGB convolutions,
    2.4x with the layout-keeping ops and 3 channels); the 8 channels alone save ~0.7 ms in the
    first layer's 9x9 convolution at 4K (3.0 vs 3.7 ms); eager, that channel padding costs
    more than it saves. The CPU's fused group norm keeps the layout and needs none of this.
    """
    if device_type != "cuda" or not channels_last:
        return "group_norm", "torch", 1
    if compiled:
        return "group_norm", "torch", 8
    return "batch_norm", "layout", 1
