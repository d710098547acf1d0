"""Fast style transfer: a feed-forward network trained once per style (Johnson, Alahi & Fei-Fei,
"Perceptual Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016).

Training (``train``), at every step:
  1. x: a batch of random crops, randomly flipped, from a folder of photos (impasto.photos).
  2. y = T(x): the transformation network below.
  3. loss = content_weight * L_content(phi(y), phi(x)) + style_weight * L_style(G(phi(y)), G_style)
            + tv_weight * TV(y), with phi a registered backbone (the loss network) and the
     relative losses of impasto.losses; G_style: Gram matrices of the style image.
  4. One Adam step.
Inference (``stylize``): y = T(x), one forward pass, any image size.

The network T: 9x9 conv (width c), two stride-2 3x3 convs (2c, 4c), residual blocks at 4c, two
(x2 nearest upsample, 3x3 conv) stages back to c, a 9x9 conv to RGB; instance normalisation and
ReLU after every conv but the last.

Departures from the paper, and why:
- Instance normalisation (Ulyanov et al. 2016) instead of batch normalisation: the standard fix,
  better results and no train/test difference.
- Upsample-then-convolve instead of fractionally strided convolutions: no checkerboard artefacts
  (Odena et al. 2016).
- Output through a sigmoid into [0, 1] instead of a scaled tanh; inputs are padded to a multiple
  of 4 (replicate) and the output is cropped back, so every size works.
- Instance norm and reflection padding have kernels that keep channels_last tensors in that
  layout (``set_kernels``): CUDA's own instance-norm, group-norm and reflection-pad kernels
  convert channels_last to NCHW and the next convolution converts back, which made fp16
  channels_last slower than fp32 in pytorch/examples' network (benchmarks/bench_fast.py).
- Relative losses and a pluggable loss network (the offline default is EfficientNet-Lite0; the
  paper used VGG-16). Width ``channels`` (paper: 32), ``residual_blocks`` (paper: 5) and the
  first/last kernel ``edge_kernel`` (paper: 9) are options: a narrower, smaller network is what
  makes real time reachable on a CPU.
- Mixed precision (bfloat16 autocast) on CUDA.

Resuming: batches are a pure function of (seed, step) (impasto.photos), the network starts
from ``seed`` and each checkpoint holds the weights, the Adam state and the step, so a resumed
run repeats an uninterrupted one bit for bit (on the same device and software).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__, color, losses
from ..backbones import BACKBONE_CHOICES, Backbone, load_backbone
from ..config import option, validate_config
from ..devices import DEVICE_CHOICES, configure_for_speed, resolve_device
from ..errors import Cancelled, InputError
from ..images import resize_long_side
from ..model_folder import ModelFolder, check_destination, load_model_folder, save_model_folder
from ..progress import ProgressCallback, ProgressEvent, report

METHOD = "fast"
PADDING_CHOICES = ("reflect", "zeros")
EDGE_KERNEL_CHOICES = (3, 5, 7, 9)
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
PRESERVE_COLOR_CHOICES = ("none", "luminance", "histogram")
MIN_SIDE = 16  # reflection padding of the 9x9 convolutions needs a few pixels
CHECKPOINT = Path("training") / "checkpoint.pt"
PREVIEWS = Path("training") / "previews"
LICENSE_NOTE = (
    "model weights: same licence as the style image and the training photos; impasto code: "
    "Apache-2.0"
)

# --------------------------------------------------------------------------- the network


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel == "var_mean" or (self.kernel == "batch_norm" and x.shape[0] > 1):
            return self._from_statistics(x)
        weight, bias = self.weight.to(x.dtype), self.bias.to(x.dtype)
        if self.kernel == "batch_norm":
            return F.batch_norm(x, None, None, weight, bias, training=True, eps=self.eps)
        return F.group_norm(x, x.shape[1], weight, bias, self.eps)

    def _from_statistics(self, x: torch.Tensor) -> torch.Tensor:
        # std, not var: a half-precision variance overflows from a spread of 256 up
        std, mean = torch.std_mean(x, dim=(2, 3), keepdim=True, correction=0)
        scale = self.weight.float().view(1, -1, 1, 1) * torch.rsqrt(std.float().square() + self.eps)
        shift = self.bias.float().view(1, -1, 1, 1) - mean.float() * scale
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


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
    out = torch.empty((batch, channels, height + 2 * pad, width + 2 * pad), dtype=x.dtype,
                      device=x.device, memory_format=_layout_of(x))  # fmt: skip
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

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1,
                 padding: str = "reflect") -> None:  # fmt: skip
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
            weight = weight.contiguous(memory_format=_layout_of(x))
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


def _layout_of(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def set_kernels(network: nn.Module, norm: str = "group_norm", pad: str = "torch",
                align: int = 1) -> nn.Module:  # fmt: skip
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


@dataclass(frozen=True)
class NetworkConfig:
    """The architecture, stored in a model's config.json."""

    channels: int = 32
    residual_blocks: int = 5
    padding: str = "reflect"
    edge_kernel: int = 9  # the first and last convolutions' kernel (the paper's 9)


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


# --------------------------------------------------------------------------- training options


@dataclass
class FastTrainConfig:
    """Options of ``impasto train fast``; the CLI flags are built from these fields."""

    size: int = option(256, "side of the square training crops in pixels", min=16, max=2048)
    batch: int = option(4, "crops per step", min=1, max=256)
    steps: int = option(4000, "training steps (batches)", min=1, max=10_000_000)
    learning_rate: float = option(1e-3, "Adam step size", min=1e-7, max=1.0)
    content_weight: float = option(1.0, "weight of the content loss", min=0.0)
    style_weight: float = option(10.0, "weight of the style loss", min=0.0)
    tv_weight: float = option(10.0, "weight of the total-variation loss (smoothness)", min=0.0)
    style_size: int | None = option(None, "long side of the style image (default: --size)",
                                    min=16, max=4096)  # fmt: skip
    backbone: str = option("auto", "loss network", choices=BACKBONE_CHOICES)
    channels: int = option(32, "network width (the paper's 32; 16 is ~3x faster on a CPU)",
                           min=4, max=256)  # fmt: skip
    residual_blocks: int = option(5, "residual blocks (the paper's 5)", min=0, max=32)
    padding: str = option("reflect", "convolution padding", choices=PADDING_CHOICES)
    edge_kernel: int = option(9, "kernel of the first and last convolutions (the paper's 9; 5 "
                              "is faster on a CPU)", choices=EDGE_KERNEL_CHOICES)  # fmt: skip
    seed: int = option(0, "random seed (network start, data order, crops)", min=0)
    checkpoint_every: int = option(200, "write a resumable checkpoint every N steps", min=1)
    preview_every: int = option(200, "write a preview image every N steps (0: never)", min=0)
    device: str = option("auto", "where to compute", choices=DEVICE_CHOICES)
    precision: str = option("auto", "auto: bf16 autocast on CUDA, fp32 elsewhere",
                            choices=("auto", "fp32", "bf16"))  # fmt: skip

    def network(self) -> NetworkConfig:
        return NetworkConfig(self.channels, self.residual_blocks, self.padding, self.edge_kernel)


# Changing these between an interrupted run and its resumption is allowed; anything else
# would make the resumed run a different run.
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "preview_every", "device")


@dataclass
class TrainResult:
    folder: Path
    steps: int
    resumed_from: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    backbone: str = ""
    device: str = ""


# --------------------------------------------------------------------------- training


def _fingerprint(config: FastTrainConfig, style_sha256: str, data: dict) -> dict[str, Any]:
    kept = {k: v for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES}
    return {"config": kept, "style_sha256": style_sha256, "data": data}


def _atomic_torch_save(value: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    try:
        torch.save(value, partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def read_checkpoint(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The training checkpoint in a model folder (loaded with weights_only=True), or None."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"training checkpoint {path} is unreadable ({error})") from error


def style_tensor_sha256(style: torch.Tensor) -> str:
    """sha256 of the style image's pixels as float32 (used when no file is given)."""
    return hashlib.sha256(style.float().contiguous().cpu().numpy().tobytes()).hexdigest()


def _style_grams(backbone, style: torch.Tensor, layers: dict[str, float], autocast) -> dict:
    with torch.no_grad(), autocast():
        features = backbone(style, list(layers))
    return {name: losses.gram_matrix(features[name].float()) for name in layers}


def train(
    style: torch.Tensor,
    photos,
    folder: str | os.PathLike,
    config: FastTrainConfig | None = None,
    *,
    resume: bool = False,
    style_info: dict[str, Any] | None = None,
    data_note: str | None = None,
    backbone: Backbone | None = None,
    progress: ProgressCallback | None = None,
    notify: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a transformation network for ``style`` (1, 3, H, W) on ``photos`` (a PhotoSet) and
    write the model folder ``folder`` (plus ``training/`` with checkpoints and previews).

    ``resume``: continue from ``folder``'s checkpoint (the settings, style and data must be
    the same; only RESUMABLE_CHANGES may differ). Without it, an existing checkpoint is an
    error, so no run is ever overwritten by accident. A cancel from ``progress`` writes a
    checkpoint at the last finished step and raises Cancelled.
    ``style_info``: provenance of the style image for the metadata (e.g. file name, sha256).
    ``data_note``: where the photos come from and on what terms, recorded in the metadata.
    """
    config = config or FastTrainConfig()
    validate_config(config)
    if style.ndim != 4 or style.shape[:2] != (1, 3):
        raise InputError(f"the style image must be (1, 3, H, W), got {tuple(style.shape)}")
    if min(min(photo.shape[-2:]) for photo in photos.photos) < config.size:
        raise InputError(f"photos must be loaded at a short side of at least --size {config.size}")
    folder = check_destination(folder)
    style_info = dict(style_info or {})
    style_sha = style_info.setdefault("sha256", style_tensor_sha256(style))
    fingerprint = _fingerprint(config, style_sha, photos.description())

    checkpoint = read_checkpoint(folder)
    if checkpoint is not None and not resume:
        raise InputError(
            f"{folder} already holds a training checkpoint (step {int(checkpoint['step'])}); "
            "pass --resume to continue it, or choose another folder"
        )
    if resume and checkpoint is None:
        raise InputError(f"nothing to resume: {folder / CHECKPOINT} does not exist")
    if checkpoint is not None:
        saved = json.loads(checkpoint["fingerprint"])
        if saved != json.loads(json.dumps(fingerprint)):
            changed = sorted(
                key for key in set(saved["config"]) | set(fingerprint["config"])
                if saved["config"].get(key) != fingerprint["config"].get(key)
            )  # fmt: skip
            what = ", ".join(changed) or "the style image or the training photos"
            raise InputError(f"cannot resume {folder}: different {what} than the interrupted run")

    device = resolve_device(config.device)
    configure_for_speed(device)
    use_bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")

    def autocast():
        if use_bf16:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    if backbone is None:
        backbone = load_backbone(config.backbone, notify=notify)
    backbone = backbone.to(device).eval()
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    content_layers = list(backbone.defaults.content_layers)
    style_layers = dict(backbone.defaults.style_layers)
    layers = sorted(set(content_layers) | set(style_layers))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network = TransformNet(config.network())
    network = network.to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    start = 0
    if checkpoint is not None:
        network.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        start = int(checkpoint["step"])
    if start > config.steps:
        raise InputError(f"the checkpoint is at step {start}, past --steps {config.steps}")

    style_size = config.style_size or config.size
    style_image = resize_long_side(style, style_size).to(device)
    targets = _style_grams(backbone, style_image, style_layers, autocast)
    weight_sum = sum(style_layers.values()) or 1.0
    preview_input = _preview_crop(photos, config.size).to(device)

    last_losses = checkpoint.get("losses") if checkpoint is not None else None

    def save_checkpoint(step: int) -> None:
        state = {
            "model": {k: v.detach().cpu() for k, v in network.state_dict().items()},
            "optimizer": _to_cpu(optimizer.state_dict()),
            "step": step,
            "fingerprint": json.dumps(fingerprint),
            "losses": history[-1] if history else last_losses,  # for a resume with no steps
        }
        _atomic_torch_save(state, folder / CHECKPOINT)

    folder.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    step = start
    network.train()
    try:
        while step < config.steps:
            x = photos.batch(step, config.batch, config.size, config.seed).to(device)
            with autocast():
                y = network(x)
                features_y = backbone(y, layers)
                with torch.no_grad():
                    features_x = backbone(x, content_layers)
            content = sum(
                losses.content_loss(features_y[k].float(), features_x[k].float())
                for k in content_layers
            ) / max(1, len(content_layers))
            style_term = (
                sum(
                    w * losses.style_loss(losses.gram_matrix(features_y[k].float()), targets[k])
                    for k, w in style_layers.items()
                )
                / weight_sum
            )
            tv = losses.tv_loss(y.float())
            total = (config.content_weight * content + config.style_weight * style_term
                     + config.tv_weight * tv)  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            step += 1
            # one device-to-host copy per step (each float() would wait for the GPU separately)
            numbers = torch.stack([total, content, style_term, tv]).detach().float().tolist()
            values = dict(zip(("total", "content", "style", "tv"), numbers, strict=True))
            history.append(values)
            preview = None
            if config.preview_every and (step % config.preview_every == 0 or step == config.steps):
                preview = _preview(network, preview_input, autocast)
                _save_preview(preview, folder / PREVIEWS / f"step-{step:07d}.png")
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint(step)
            report(progress, ProgressEvent("training", step, config.steps, values, preview))
    except Cancelled:
        save_checkpoint(step)  # the step boundary: the state is exactly that of step ``step``
        raise

    metadata = {
        "method": METHOD,
        "impasto_version": __version__,
        "style": style_info,
        "backbone": backbone.name,
        "training": asdict(config),
        "steps_done": step,
        "data": {**photos.description(), **({"terms": data_note} if data_note else {})},
        "final_losses": history[-1] if history else last_losses,
        "license": LICENSE_NOTE,
    }
    network_config = asdict(config.network())
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    save_model_folder(folder, METHOD, network_config, state, metadata)
    return TrainResult(folder, step, start, time.perf_counter() - started, history,
                       backbone.name, str(device))  # fmt: skip


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value


def _preview_crop(photos, size: int) -> torch.Tensor:
    """The centre crop of the first photo: the same preview input at every step."""
    photo = photos.photos[0]
    height, width = photo.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return photo[None, :, top : top + size, left : left + size].float() / 255.0


def _preview(network: TransformNet, image: torch.Tensor, autocast) -> torch.Tensor:
    network.eval()
    with torch.no_grad(), autocast():
        out = network(image).float().cpu()
    network.train()
    return out


def _save_preview(image: torch.Tensor, path: Path) -> None:
    from ..images import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(image, path)


# --------------------------------------------------------------------------- inference

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
"""Models shipped inside the package: ``--model NAME`` finds ``MODELS_DIR / NAME``."""


def shipped_models() -> list[str]:
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "config.json").is_file())


@dataclass
class FastModel:
    """A loaded fast-style model: the network (eval mode, CPU) and its folder's metadata."""

    network: TransformNet
    metadata: dict[str, Any]
    path: Path


def load_model(model: str | os.PathLike) -> FastModel:
    """Load a model folder, or a shipped model by name. Raises InputError when invalid."""
    path = Path(model)
    if not path.exists() and str(model) in shipped_models():
        path = MODELS_DIR / str(model)
    if not path.exists():
        shipped = ", ".join(shipped_models()) or "none in this installation"
        raise InputError(
            f"model not found: {model} (a model folder, or a shipped model: {shipped})"
        )
    folder: ModelFolder = load_model_folder(path, method=METHOD)
    try:
        known = {f.name for f in fields(NetworkConfig)}
        unknown = sorted(set(folder.network) - known)
        if unknown:
            raise InputError(f"{path}: unknown network options {', '.join(unknown)}")
        network_config = NetworkConfig(**folder.network)
        if network_config.padding not in PADDING_CHOICES:
            raise InputError(f"{path}: unknown padding '{network_config.padding}'")
        if network_config.edge_kernel not in EDGE_KERNEL_CHOICES:
            raise InputError(f"{path}: unsupported edge_kernel {network_config.edge_kernel!r}")
        network = TransformNet(network_config)
        network.load_state_dict(folder.state_dict, strict=True)
    except (TypeError, RuntimeError) as error:
        raise InputError(f"{path}: the weights do not match the config ({error})") from error
    return FastModel(network.eval(), folder.metadata, path)


@dataclass
class FastResult:
    """What ``impasto.stylize(method="fast")`` returns."""

    image: torch.Tensor
    alpha: torch.Tensor | None
    model: str
    seconds: float
    backbone: str = ""  # the loss network the model was trained with (from its metadata)


@dataclass
class FastConfig:
    """Options of ``stylize --method fast``."""

    size: int | None = option(None, "long side of the output (default: the content's size)",
                              min=16, max=16384)  # fmt: skip
    preserve_color: str = option("none", "keep the content's colours (histogram: match the "
                                 "result's colour statistics to the content's)",
                                 choices=PRESERVE_COLOR_CHOICES)  # fmt: skip
    device: str = option("auto", "where to compute", choices=DEVICE_CHOICES)
    precision: str = option("auto", "auto: fp16 channels_last on CUDA, fp32 elsewhere",
                            choices=PRECISION_CHOICES)  # fmt: skip
    compile: bool = option(False, "torch.compile the network: faster per image after a slow "
                           "first one (and after each new image size)")  # fmt: skip


class Stylizer:
    """A model placed on a device in its fastest form; call it on batches (B, 3, H, W).

    CUDA: channels_last and half precision (fp16 unless ``precision`` says otherwise), with the
    instance norms and paddings computed by kernels that keep channels_last (``set_kernels``);
    the CPU: float32 channels_last (faster than NCHW there too: benchmarks/bench_fast.py).
    ``compile``: ``torch.compile`` (fuses the norms, paddings and ReLUs around the convolutions);
    each new input shape compiles again, so it pays off over many images of one size (video).
    """

    def __init__(self, model: FastModel, device: str = "auto", precision: str = "auto",
                 channels_last: bool | None = None, compile: bool = False) -> None:  # fmt: skip
        if precision not in PRECISION_CHOICES:
            raise InputError(
                f"unknown precision '{precision}'; choose from: {', '.join(PRECISION_CHOICES)}"
            )
        self.device = resolve_device(device)
        configure_for_speed(self.device)
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
            precision
        ]
        if self.device.type == "cpu" and self.dtype == torch.float16:
            raise InputError("--precision fp16 needs a GPU; use fp32 or bf16 on the CPU")
        if channels_last is None:
            channels_last = self.device.type in ("cuda", "cpu")  # both faster (bench_fast.py)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        network = model.network.to(self.device, self.dtype)
        network = network.to(memory_format=self.memory_format).eval()
        self.kernels = inference_kernels(self.device.type, channels_last, compile)
        set_kernels(network, *self.kernels)
        self.network = torch.compile(network, dynamic=False) if compile else network

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, H, W) in [0, 1], float32 on the CPU."""
        x = images.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            y = self.network(x)
        return y.float().contiguous().cpu().clamp(0, 1)


def inference_kernels(device_type: str, channels_last: bool,
                      compiled: bool) -> tuple[str, str, int]:  # fmt: skip
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


def stylize(content: torch.Tensor, model: FastModel | Stylizer,
            config: FastConfig | None = None) -> torch.Tensor:  # fmt: skip
    """Stylise ``content`` (1, 3, H, W) in [0, 1]; returns (1, 3, h, w) in [0, 1] on the CPU."""
    config = config or FastConfig()
    validate_config(config)
    if content.ndim != 4 or content.shape[:2] != (1, 3):
        raise InputError(f"images must be (1, 3, H, W) tensors, got {tuple(content.shape)}")
    if isinstance(model, Stylizer):
        stylizer = model
    else:
        stylizer = Stylizer(model, config.device, config.precision, compile=config.compile)
    if config.size is not None:
        content = resize_long_side(content, config.size)
    if min(content.shape[-2:]) < MIN_SIDE:
        raise InputError(
            f"images must be at least {MIN_SIDE} pixels on each side, got "
            f"{content.shape[-1]}x{content.shape[-2]}"
        )
    result = stylizer(content)
    return apply_color(result, content, config.preserve_color)


def apply_color(result: torch.Tensor, content: torch.Tensor, mode: str) -> torch.Tensor:
    """Colour preservation after the network: ``luminance`` keeps the content's colours
    (YIQ); ``histogram`` matches the result's colour mean/covariance to the content's."""
    if mode == "luminance":
        return color.preserve_luminance(result, content.float().cpu()).clamp(0, 1)
    if mode == "histogram":
        return color.match_color(result, content.float().cpu()).clamp(0, 1)
    return result
