"""``impasto train decoder``: train the decoders of an arbitrary-style method (AdaIN, WCT) for a
backbone, through the one training core (impasto.training: checkpoints, bit-for-bit resume,
Ctrl-C). The method's file says what its decoders invert (``decoder_layers``) and what they
learn (``decoder_loss``); everything else is here.

At every step: a batch of random photo crops (and, for AdaIN, style crops: batches are pure
functions of (seed, step), impasto.photos), the method's loss, one Adam step. Output: a decoder
folder (impasto.decoders) with metadata saying what it was trained on.

The backbone is frozen and never trained. EfficientNet-Lite2 is refused: it is impasto's
independent scoring network (``impasto evaluate``), and no method may be fitted to it.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import __version__, training
from .backbones import BACKBONE_CHOICES, Backbone, load_backbone
from .config import option, validate_config
from .decoders import DECODER_METHODS, build_decoders, save_decoders
from .devices import (
    AUTOCAST_PRECISIONS,
    DEVICE_CHOICES,
    autocast,
    configure_for_speed,
    resolve_device,
)
from .errors import InputError
from .methods.registry import load_method
from .progress import ProgressCallback

SCORING_BACKBONE = "efficientnet-lite2"
LICENSE_NOTE = (
    "decoder weights: trained on the photos and artworks named in 'data' (see their terms); "
    "impasto code: Apache-2.0"
)


@dataclass
class DecoderTrainConfig:
    """Options of ``impasto train decoder``; the CLI flags are built from these fields."""

    method: str = option("adain", "the method whose decoder to train", choices=DECODER_METHODS)
    backbone: str = option("efficientnet-lite0", "the encoder (frozen; not efficientnet-lite2, "
                           "the scoring network)", choices=BACKBONE_CHOICES)  # fmt: skip
    size: int = option(256, "side of the square training crops in pixels", min=16, max=2048)
    batch: int = option(8, "crops per step", min=1, max=256)
    steps: int = option(4000, "training steps (batches)", min=1, max=10_000_000)
    learning_rate: float = option(5e-4, "Adam step size", min=1e-7, max=1.0)
    content_weight: float = option(1.0, "weight of the feature (content) loss", min=0.0)
    style_weight: float = option(10.0, "AdaIN: weight of the style statistics loss", min=0.0)
    pixel_weight: float = option(1.0, "WCT and photo: weight of the pixel reconstruction loss",
                                 min=0.0)  # fmt: skip
    width: int = option(128, "channels of the deepest decoder's first convolution", min=16,
                        max=1024)  # fmt: skip
    seed: int = option(0, "random seed (decoder start, data order, crops)", min=0,
                       max=2**63 - 1)  # fmt: skip
    checkpoint_every: int = option(200, "write a resumable checkpoint every N steps", min=1)
    preview_every: int = option(200, "write a preview image every N steps (0: never)", min=0)
    device: str = option("auto", "where to compute", choices=DEVICE_CHOICES)
    precision: str = option("auto", "auto: bf16 autocast on CUDA, fp32 elsewhere",
                            choices=AUTOCAST_PRECISIONS)  # fmt: skip

    def loss_weights(self) -> dict[str, float]:
        return {"content": self.content_weight, "style": self.style_weight,
                "pixel": self.pixel_weight}  # fmt: skip


RESUMABLE_CHANGES = ("steps", "checkpoint_every", "preview_every", "device")


@dataclass
class DecoderTrainResult:
    folder: Path
    steps: int
    resumed_from: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    backbone: str = ""
    device: str = ""


def check_backbone(name: str) -> None:
    """InputError for the scoring network (module docstring)."""
    if name == SCORING_BACKBONE:
        raise InputError(
            f"{SCORING_BACKBONE} is impasto's independent scoring network (impasto evaluate); "
            "decoders are never trained on it. Choose another --backbone"
        )


def train_decoder(
    photos,
    folder: str | os.PathLike,
    config: DecoderTrainConfig | None = None,
    *,
    styles=None,
    resume: bool = False,
    data_notes: dict[str, str] | None = None,
    backbone: Backbone | None = None,
    progress: ProgressCallback | None = None,
    notify=None,
) -> DecoderTrainResult:
    """Train ``config.method``'s decoders on ``photos`` (a PhotoSet; ``styles``, another, for
    AdaIN) into the model folder ``folder`` (with ``training/``: checkpoints and previews).
    ``resume`` and cancelling work as in impasto.training; ``data_notes``: the terms of the
    photos and styles, recorded in the metadata."""
    config = config or DecoderTrainConfig()
    validate_config(config)
    method = load_method(config.method)
    if method.decoder_needs_styles and styles is None:
        raise InputError(f"training a {config.method} decoder needs style images (--styles DIR)")
    for name, images in (("photos", photos), ("style images", styles)):
        if images is not None and min(min(p.shape[-2:]) for p in images.photos) < config.size:
            raise InputError(f"{name} must be loaded at a short side of at least --size "
                             f"{config.size}")  # fmt: skip
    if not method.decoder_needs_styles:
        styles = None
    folder = Path(folder)
    data = {"photos": photos.description()}
    if method.decoder_needs_styles:
        data["styles"] = styles.description()
    run = training.fingerprint(config, RESUMABLE_CHANGES, data=data)
    checkpoint = training.checkpoint_to_resume(folder, run, resume)

    device = resolve_device(config.device)
    configure_for_speed(device)
    mixed = functools.partial(autocast, device, config.precision)
    if backbone is None:
        backbone = load_backbone(config.backbone, notify=notify)
    check_backbone(backbone.name)
    backbone = backbone.to(device).freeze()
    try:
        layers = method.decoder_layers(backbone)
        skips = method.decoder_skips(backbone)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            decoders = build_decoders(backbone, layers, config.width, skips=skips)
    except ValueError as error:
        raise InputError(str(error)) from error
    decoders = decoders.to(device)
    optimizer = torch.optim.Adam(decoders.parameters(), lr=config.learning_rate)
    start = 0
    if checkpoint is not None:
        decoders.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        start = int(checkpoint["step"])
    if start > config.steps:
        raise InputError(f"the checkpoint is at step {start}, past --steps {config.steps}")
    weights = config.loss_weights()
    last_losses = checkpoint.get("losses") if checkpoint is not None else None
    style_seed = config.seed + 1  # style crops in another order than the photos

    def batch_of(images, step: int, seed: int) -> torch.Tensor | None:
        if images is None:
            return None
        return images.batch(step, config.batch, config.size, seed).to(device)

    def train_step(step: int) -> dict[str, float]:
        x = batch_of(photos, step, config.seed)
        s = batch_of(styles, step, style_seed)
        with mixed():
            terms = method.decoder_loss(backbone, decoders, x, s, weights)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        names = sorted(terms)
        numbers = torch.stack([terms[name].detach().float() for name in names]).tolist()
        return dict(zip(names, numbers, strict=True))

    def save(step: int, losses_now: dict[str, float] | None) -> None:
        nonlocal last_losses
        last_losses = losses_now or last_losses
        training.save_run(folder, step, decoders, optimizer, run, last_losses)

    preview_photo = photos.batch(0, 1, config.size, config.seed).to(device)
    preview_style = styles.batch(0, 1, config.size, style_seed).to(device) if styles else None

    def preview(step: int) -> torch.Tensor:
        decoders.eval()
        with torch.no_grad(), mixed():
            image = method.decoder_preview(backbone, decoders, preview_photo, preview_style)
        decoders.train()
        image = image.float().clamp(0, 1).cpu()
        training.write_preview(folder, step, image)
        return image

    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    decoders.train()
    history = training.run_steps(start, config.steps, train_step, save,
                                 checkpoint_every=config.checkpoint_every,
                                 preview_every=config.preview_every, preview=preview,
                                 progress=progress)  # fmt: skip
    step = max(start, config.steps)
    notes = data_notes or {}
    for key, value in notes.items():
        if key in data and value:
            data[key] = {**data[key], "terms": value}
    metadata = {
        "method": config.method,
        "impasto_version": __version__,
        "backbone": backbone.name,
        "layers": list(layers),
        "training": asdict(config),
        "steps_done": step,
        "data": data,
        "final_losses": history[-1] if history else last_losses,
        "license": LICENSE_NOTE,
    }
    save_decoders(folder, config.method, backbone.name, decoders.cpu().eval(), metadata)
    return DecoderTrainResult(folder, step, start, time.perf_counter() - started, history,
                              backbone.name, str(device))  # fmt: skip


class DecoderTrainer:
    """The training kind ``decoder`` of the method table (impasto.methods.registry)."""

    name = "decoder"
    train_config_class = DecoderTrainConfig
    training_inputs = ("data", "styles")
    required_inputs = ("data",)

    def check_inputs(self, config: DecoderTrainConfig, given: dict) -> None:
        """Before anything is read or loaded: AdaIN needs style images; never the scoring
        network."""
        check_backbone(config.backbone)
        if load_method(config.method).decoder_needs_styles and given.get("styles") is None:
            raise InputError(
                f"training a {config.method} decoder needs a folder of style images (--styles)"
            )

    def train(self, config: DecoderTrainConfig, *, data, styles, folder, resume, backbone, info,
              progress, notify) -> DecoderTrainResult:  # fmt: skip
        notes = {"photos": info.get("data_note"), "styles": info.get("styles_note")}
        return train_decoder(data, folder, config, styles=styles, resume=resume,
                             data_notes=notes, backbone=backbone, progress=progress,
                             notify=notify)  # fmt: skip


TRAINER = DecoderTrainer()
