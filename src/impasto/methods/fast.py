"""Fast style transfer: a feed-forward network trained once per style (Johnson, Alahi & Fei-Fei,
"Perceptual Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016).

Training (``train``), at every step:
  1. x: a batch of random crops, randomly flipped, from a folder of photos (impasto.photos).
  2. y = T(x): the transformation network (impasto.nn.transform_net, below).
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
  layout (impasto.nn.layers.set_kernels): CUDA's own instance-norm, group-norm and
  reflection-pad kernels convert channels_last to NCHW and the next convolution converts back,
  which made fp16 channels_last slower than fp32 in pytorch/examples' network
  (benchmarks/bench_fast.py).
- Relative losses and a pluggable loss network (the offline default is EfficientNet-Lite0; the
  paper used VGG-16). Width ``channels`` (paper: 32), ``residual_blocks`` (paper: 5) and the
  first/last kernel ``edge_kernel`` (paper: 9) are options: a narrower, smaller network is what
  makes real time reachable on a CPU.
- Mixed precision (bfloat16 autocast) on CUDA.

Resuming: the training core (impasto.training) makes a resumed run repeat an uninterrupted one
bit for bit (on the same device and software).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import __version__, color, losses, tiling, training
from ..backbones import BACKBONE_CHOICES, Backbone, load_backbone
from ..config import keep_option, option, validate_config
from ..devices import (
    AUTOCAST_PRECISIONS,
    DEVICE_CHOICES,
    PRECISION_CHOICES,
    autocast,
    configure_for_speed,
    resolve_device,
)
from ..errors import InputError
from ..images import resize_long_side
from ..memory import memory_budget, parse_memory
from ..model_folder import (
    check_destination,
    find_model,
    load_model_folder,
    save_model_folder,
    shipped_models,
)
from ..nn.fit import weights_misfit
from ..nn.layers import PADDING_CHOICES, inference_kernels, set_kernels
from ..nn.transform_net import (
    EDGE_KERNEL_CHOICES,
    NetworkConfig,
    TransformNet,
    network_config_from,
)
from ..progress import ProgressCallback
from .base import Method, Prepared, StyleResult

MIN_SIDE = 16  # reflection padding of the 9x9 convolutions needs a few pixels
CHECKPOINT = training.CHECKPOINT
PREVIEWS = training.PREVIEWS
LICENSE_NOTE = (
    "model weights: same licence as the style image and the training photos; impasto code: "
    "Apache-2.0"
)

# --------------------------------------------------------------------------- training


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
    style_size: int | None = option(
        None, "long side of the style image", min=16, max=4096, default_text="--size"
    )
    backbone: str = option("auto", "loss network", choices=BACKBONE_CHOICES)
    channels: int = option(32, "network width (the paper's 32; 16 is ~3x faster on a CPU)",
                           min=4, max=256)  # fmt: skip
    residual_blocks: int = option(5, "residual blocks (the paper's 5)", min=0, max=32)
    padding: str = option("reflect", "convolution padding", choices=PADDING_CHOICES)
    edge_kernel: int = option(9, "kernel of the first and last convolutions (the paper's 9; 5 "
                              "is faster on a CPU)", choices=EDGE_KERNEL_CHOICES)  # fmt: skip
    seed: int = option(0, "random seed (network start, data order, crops)", min=0, max=2**63 - 1)
    checkpoint_every: int = option(200, "write a resumable checkpoint every N steps", min=1)
    preview_every: int = option(200, "write a preview image every N steps (0: never)", min=0)
    device: str = option("auto", "where to compute", choices=DEVICE_CHOICES)
    precision: str = option("auto", "auto: bf16 autocast on CUDA, fp32 elsewhere",
                            choices=AUTOCAST_PRECISIONS)  # fmt: skip

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


def style_tensor_sha256(style: torch.Tensor) -> str:
    """sha256 of the style image's pixels as float32 (used when no file is given)."""
    import hashlib

    return hashlib.sha256(style.float().contiguous().cpu().numpy().tobytes()).hexdigest()


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
    run = training.fingerprint(config, RESUMABLE_CHANGES, style_sha256=style_sha,
                               data=photos.description())  # fmt: skip
    checkpoint = training.checkpoint_to_resume(folder, run, resume)

    device = resolve_device(config.device)
    configure_for_speed(device)
    mixed = functools.partial(autocast, device, config.precision)
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

    style_image = resize_long_side(style, config.style_size or config.size).to(device)
    with torch.no_grad(), mixed():
        style_features = backbone(style_image, list(style_layers))
    targets = losses.blended_grams([style_features], [1.0], style_layers)
    weights = losses.LossWeights(config.content_weight, config.style_weight, config.tv_weight)
    preview_input = _preview_crop(photos, config.size).to(device)
    last_losses = checkpoint.get("losses") if checkpoint is not None else None

    def train_step(step: int) -> dict[str, float]:
        x = photos.batch(step, config.batch, config.size, config.seed).to(device)
        with mixed():
            y = network(x)
            features_y = backbone(y, layers)
            with torch.no_grad():
                features_x = backbone(x, content_layers)
        total, terms = losses.perceptual_loss(y, features_y, features_x, targets, style_layers,
                                              weights)  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        # one device-to-host copy per step (each float() would wait for the GPU separately)
        names = ("total", "content", "style", "tv")
        numbers = torch.stack([terms[name] for name in names]).detach().float().tolist()
        return dict(zip(names, numbers, strict=True))

    def save(step: int, losses_now: dict[str, float] | None) -> None:
        nonlocal last_losses
        last_losses = losses_now or last_losses  # kept for a resume that trains no step
        training.save_run(folder, step, network, optimizer, run, last_losses)

    def preview(step: int) -> torch.Tensor:
        network.eval()
        with torch.no_grad(), mixed():
            image = network(preview_input).float().cpu()
        network.train()
        training.write_preview(folder, step, image)
        return image

    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    network.train()
    history = training.run_steps(start, config.steps, train_step, save,
                                 checkpoint_every=config.checkpoint_every,
                                 preview_every=config.preview_every, preview=preview,
                                 progress=progress)  # fmt: skip
    step = max(start, config.steps)
    metadata = {
        "method": "fast",
        "impasto_version": __version__,
        "style": style_info,
        "backbone": backbone.name,
        "training": asdict(config),
        "steps_done": step,
        "data": {**photos.description(), **({"terms": data_note} if data_note else {})},
        "final_losses": history[-1] if history else last_losses,
        "license": LICENSE_NOTE,
    }
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    save_model_folder(folder, "fast", asdict(config.network()), state, metadata)
    return TrainResult(folder, step, start, time.perf_counter() - started, history,
                       backbone.name, str(device))  # fmt: skip


def _preview_crop(photos, size: int) -> torch.Tensor:
    """The centre crop of the first photo: the same preview input at every step."""
    photo = photos.photos[0]
    height, width = photo.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return photo[None, :, top : top + size, left : left + size].float() / 255.0


# --------------------------------------------------------------------------- inference


@dataclass
class FastModel:
    """A loaded fast-style model: the network (eval mode, CPU) and its folder's metadata."""

    network: TransformNet
    metadata: dict[str, Any]
    path: Path


def load_model(model: str | os.PathLike) -> FastModel:
    """Load a model folder, or a shipped model by name. Raises InputError when invalid."""
    path = find_model(model)
    folder = load_model_folder(path, method="fast")
    try:
        network_config = network_config_from(folder.network)
        misfit = weights_misfit(lambda: TransformNet(network_config), folder.state_dict)
        if misfit:  # found on the meta device: nothing the config asks for is allocated yet
            raise InputError(f"{path}: the weights do not fit the network of its config: {misfit}")
        network = TransformNet(network_config)
        network.load_state_dict(folder.state_dict, strict=True)
    except ValueError as error:  # the config's own checks
        raise InputError(f"{path}: {error}") from error
    except (TypeError, RuntimeError) as error:
        raise InputError(f"{path}: the weights do not match the config ({error})") from error
    return FastModel(network.eval(), folder.metadata, path)


@dataclass
class FastConfig:
    """Options of ``stylize --method fast``."""

    model: str | None = option(
        None,
        "the model (required): a folder from `impasto train fast`, or a shipped model: "
        f"{', '.join(shipped_models('fast')) or 'none'}",
        metavar="MODEL",
    )
    size: int | None = option(
        None,
        "long side of the output in pixels",
        min=16,
        max=16384,
        default_text="the input's size",
    )
    preserve_color: str = option("none", "keep the content's colours (luminance: its colours; "
                                 "histogram: its colour statistics)",
                                 choices=color.PRESERVE_COLOR_CHOICES)  # fmt: skip
    batch: int = option(4, "images of the same size stylised together", min=1, max=1024)
    device: str = option("auto", "where to compute", choices=DEVICE_CHOICES)
    precision: str = option(
        "auto",
        "auto: fp16 channels_last on CUDA, fp32 elsewhere (fp16 needs a GPU)",
        choices=PRECISION_CHOICES,
    )
    compile: bool = option(
        False,
        "torch.compile the network, on the CPU as on a GPU: the first image, and the first of "
        "each new size, are slow (seconds), the next ones faster; for many frames of one size",
    )
    max_memory: str | None = option(
        None, "memory the run may use, e.g. 4GB: larger pictures go through in tiles",
        metavar="SIZE", default_text="what the device has free",
    )  # fmt: skip
    keep: str | None = keep_option()


class Stylizer:
    """A model placed on a device in its fastest form; call it on batches (B, 3, H, W).

    CUDA: channels_last and half precision (fp16 unless ``precision`` says otherwise), with the
    instance norms and paddings computed by kernels that keep channels_last (``set_kernels``);
    the CPU: float32 channels_last (faster than NCHW there too: benchmarks/bench_fast.py).
    ``compile``: ``torch.compile`` (fuses the norms, paddings and ReLUs around the convolutions);
    each new input shape compiles again, so it pays off over many images of one size (video).
    """

    def __init__(self, model: FastModel, device: str = "auto", precision: str = "auto",
                 channels_last: bool | None = None, compile: bool = False,
                 max_memory: str | None = None) -> None:  # fmt: skip
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
        self.max_memory = max_memory
        # working memory per pixel, measured in float32: 215, 398, 767 bytes at widths 8, 16, 32
        self.bytes_per_pixel = (24 * model.network.config.channels + 32) * self.dtype.itemsize / 4

    def __call__(self, images: torch.Tensor, progress: ProgressCallback | None = None
                 ) -> torch.Tensor:  # fmt: skip
        """(B, 3, H, W) in [0, 1] -> (B, 3, H, W) in [0, 1], float32 on the CPU; in tiles when
        the picture would not fit in ``max_memory`` or is larger than a tile (impasto.tiling)."""
        room = tiling.tile_pixels(images, memory_budget(self.max_memory, self.device),
                                  self.bytes_per_pixel)  # fmt: skip
        return tiling.run_network(self.network, self.forward, images, room, multiple=4,
                                  progress=progress)  # fmt: skip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            y = self.network(x)
        return y.float().contiguous().cpu().clamp(0, 1)


def stylize(content: torch.Tensor, model: FastModel | Stylizer, config: FastConfig | None = None,
            progress: ProgressCallback | None = None) -> torch.Tensor:  # fmt: skip
    """Stylise ``content`` (B, 3, H, W) in [0, 1]; returns (B, 3, h, w) in [0, 1] on the CPU;
    ``progress``: a step event per tile where the picture goes through in tiles."""
    config = config or FastConfig()
    validate_config(config)
    if content.ndim != 4 or content.shape[1] != 3:
        raise InputError(f"images must be (B, 3, H, W) tensors, got {tuple(content.shape)}")
    if isinstance(model, Stylizer):
        stylizer = model
    else:
        stylizer = Stylizer(model, config.device, config.precision, compile=config.compile,
                            max_memory=config.max_memory)  # fmt: skip
    if config.size is not None:
        content = resize_long_side(content, config.size)
    if min(content.shape[-2:]) < MIN_SIDE:
        raise InputError(
            f"images must be at least {MIN_SIDE} pixels on each side, got "
            f"{content.shape[-1]}x{content.shape[-2]}"
        )
    return color.preserve_colors(stylizer(content, progress), content, config.preserve_color)


# --------------------------------------------------------------------------- the method


class FastMethod(Method):
    """The method table's ``fast``: a trained model, no style images; batches of same-size
    images; ``impasto train fast``; ONNX export."""

    name = "fast"
    config_class = FastConfig
    train_config_class = FastTrainConfig
    training_inputs = ("style", "data")
    export_formats = ("onnx",)
    compare_options = {"model": "vangogh-bedroom"}

    def check(self, config: FastConfig, style_count: int | None) -> None:
        if config.model is None:
            shipped = ", ".join(shipped_models("fast")) or "none in this installation"
            raise InputError(
                f"method 'fast' needs a model (--model / model=): a model folder, or a shipped "
                f"model: {shipped}"
            )
        if not isinstance(config.model, FastModel):
            find_model(config.model)  # a missing model fails before any work
        if config.precision == "fp16" and resolve_device(config.device).type == "cpu":
            raise InputError("--precision fp16 needs a GPU; use fp32 or bf16 on the CPU")
        if config.max_memory is not None:
            parse_memory(config.max_memory)

    def prepare(self, config: FastConfig, styles: Sequence[torch.Tensor], *, backbone=None,
                notify=None) -> FastRunner:  # fmt: skip
        model = config.model if isinstance(config.model, FastModel) else load_model(config.model)
        return FastRunner(config, model)

    def train(self, config: FastTrainConfig, *, style, data, folder, resume, backbone, info,
              progress, notify) -> TrainResult:  # fmt: skip
        return train(style, data, folder, config, resume=resume, style_info=info.get("style"),
                     data_note=info.get("data_note"), backbone=backbone, progress=progress,
                     notify=notify)  # fmt: skip

    def export(self, model, path: Path, format: str, opset: int) -> Path:
        from ..export import export_onnx

        return export_onnx(load_model(model).network, path, opset=opset)


class FastRunner(Prepared):
    method = "fast"

    def __init__(self, config: FastConfig, model: FastModel) -> None:
        self.config, self.model = config, model
        self.stylizer = Stylizer(model, config.device, config.precision, compile=config.compile,
                                 max_memory=config.max_memory)  # fmt: skip
        self.backbone = str(model.metadata.get("backbone", ""))
        self.device = str(self.stylizer.device)
        self.max_batch = config.batch

    def summary(self) -> str:
        return f"model {self.model.path.name} on {self.device}"

    def run(self, content: torch.Tensor, progress: ProgressCallback | None = None) -> StyleResult:
        """One forward pass, then a ``step`` event per batch (False from progress: Cancelled)."""
        from ..progress import ProgressEvent, report

        started = time.perf_counter()
        image = stylize(content, self.stylizer, self.config, progress)
        report(progress, ProgressEvent(f"model {self.model.path.name}", len(image), len(image)))
        result = StyleResult(image, method="fast", backbone=self.backbone, device=self.device)
        result.seconds = time.perf_counter() - started
        result.details = {"model": str(self.model.path)}
        return result


METHOD = FastMethod()
TRAINER = METHOD  # the training kind `fast` (impasto.methods.registry.TRAINING_KINDS)
