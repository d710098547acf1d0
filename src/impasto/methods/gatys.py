"""Neural style transfer by optimisation (Gatys, Ecker & Bethge, CVPR 2016).

Algorithm, per scale (coarse to fine):
  1. Resize the content image to this scale and each style image to ``style_scale`` times it.
  2. Targets: backbone features of the content at the content layers; Gram matrices of each
     style at the style layers, blended with the ``style_blend`` weights.
  3. Start from the content (or noise, or the previous scale's result, upsampled).
  4. Minimise  content_weight * L_content + style_weight * L_style + tv_weight * L_tv
     with L-BFGS (or Adam), clamping the image to [0, 1] after each step.
Finally, optionally keep the content's colours (``preserve_color``).

Departures from the paper, and why:
- Losses are relative (see impasto.losses) so weights mean the same across sizes and backbones;
  the paper's absolute weights (alpha/beta ~ 1e-3) do not transfer between networks.
- Coarse-to-fine scales (as in Gatys et al. 2017, "Controlling perceptual factors") keep
  large-scale structure at high resolution and make most steps cheap.
- Total-variation regularisation (Mahendran & Vedaldi 2015; common in implementations).
- The backbone is pluggable; each brings its own layers and weights (defaults per backbone).
- On CUDA the backbone runs under bf16 autocast with channels_last; Gram matrices and losses
  stay in float32.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .. import color, losses
from ..backbones import BACKBONE_CHOICES, Backbone, load_backbone
from ..config import option, validate_config
from ..devices import DEVICE_CHOICES, configure_for_speed, resolve_device
from ..errors import InputError
from ..progress import ProgressCallback, ProgressEvent, report

OPTIMIZER_CHOICES = ("lbfgs", "adam")
INIT_CHOICES = ("content", "noise")
PRECISION_CHOICES = ("auto", "fp32", "bf16")
# The coarsest scale is the largest size obtained by halving ``size`` that stays >= this.
MIN_SCALE_SIZE = 192


@dataclass
class GatysConfig:
    """Options of the Gatys method; the CLI flags are built from these fields."""

    size: int = option(512, "long side of the output in pixels", min=16, max=8192)
    steps: int = option(200, "optimiser steps (loss evaluations) at each scale", min=1,
                        max=100_000)  # fmt: skip
    scales: int | None = option(None, "number of coarse-to-fine scales (default: automatic)",
                                min=1, max=8)  # fmt: skip
    optimizer: str = option("lbfgs", "optimiser", choices=OPTIMIZER_CHOICES)
    learning_rate: float | None = option(None, "step size (default: 1 for L-BFGS, 0.02 for Adam)",
                                         min=1e-6, max=100.0)  # fmt: skip
    content_weight: float = option(50.0, "weight of the content loss", min=0.0)
    style_weight: float = option(1e4, "weight of the style loss", min=0.0)
    tv_weight: float = option(1000.0, "weight of the total-variation loss (smoothness)", min=0.0)
    init: str = option("content", "starting image", choices=INIT_CHOICES)
    style_scale: float = option(1.0, "style image size relative to the output", min=0.05, max=8.0)
    style_blend: list[float] | None = option(
        None, "weights of several style images (default: equal)", cli=False
    )
    preserve_color: str = option("none", "keep the content's colours",
                                 choices=color.PRESERVE_COLOR_CHOICES)  # fmt: skip
    backbone: str = option("auto", "feature network", choices=BACKBONE_CHOICES)
    content_layers: list[str] | None = option(None, "content layers (default: backbone's)",
                                              cli=False)  # fmt: skip
    style_layers: dict[str, float] | None = option(
        None, "style layers and weights (default: backbone's)", cli=False
    )
    seed: int = option(0, "random seed (bit-identical output on the CPU)", min=0)
    device: str = option("auto", "where to compute", choices=DEVICE_CHOICES)
    precision: str = option("auto", "auto: bf16 on CUDA, fp32 elsewhere",
                            choices=PRECISION_CHOICES)  # fmt: skip
    compile: bool = option(False, "torch.compile the feature network (CUDA; slow first step)")
    save_every: int = option(0, "save an intermediate image every N steps (0: never)",
                             min=0)  # fmt: skip


@dataclass
class GatysResult:
    """The stylised image (1, 3, H, W) in [0, 1] on the CPU, with what it took to make it."""

    image: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    backbone: str = ""
    device: str = ""
    seconds: float = 0.0
    scale_sizes: list[int] = field(default_factory=list)
    alpha: torch.Tensor | None = None  # set by impasto.stylize from the content file


def scale_sizes(size: int, scales: int | None = None) -> list[int]:
    """Long sides of the coarse-to-fine scales, ending at ``size`` (each half the next)."""
    sizes = [size]
    while (scales is None and sizes[0] // 2 >= MIN_SCALE_SIZE) or (
        scales is not None and len(sizes) < scales
    ):
        if sizes[0] // 2 < 16:
            break
        sizes.insert(0, sizes[0] // 2)
    return sizes


def _resize_long(image: torch.Tensor, long_side: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    factor = long_side / max(height, width)
    new = (max(1, round(height * factor)), max(1, round(width * factor)))
    if new == (height, width):
        return image
    return F.interpolate(image, size=new, mode="bicubic", align_corners=False,
                         antialias=True).clamp(0, 1)  # fmt: skip


def _blend_weights(config: GatysConfig, count: int) -> list[float]:
    if config.style_blend is None:
        return [1.0 / count] * count
    if len(config.style_blend) != count:
        raise InputError(
            f"--style-blend has {len(config.style_blend)} weights for {count} style images"
        )
    if any(w < 0 for w in config.style_blend) or sum(config.style_blend) <= 0:
        raise InputError("--style-blend weights must be >= 0 with a positive sum")
    total = sum(config.style_blend)
    return [w / total for w in config.style_blend]


def _check_images(content: torch.Tensor, styles: Sequence[torch.Tensor]) -> None:
    if not styles:
        raise InputError("at least one style image is needed")
    for image in (content, *styles):
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise InputError(f"images must be (1, 3, H, W) tensors, got {tuple(image.shape)}")


class _Objective:
    """Content, style and TV losses at one scale, with the targets precomputed."""

    def __init__(self, backbone, network, content, styles, blend, config, content_layers,
                 style_layers, autocast, channels_last) -> None:  # fmt: skip
        # ``network`` (possibly torch.compile'd) runs the optimised image; the targets use the
        # plain ``backbone`` so a compiled network is compiled once per scale, not three times.
        self.backbone, self.network, self.config = backbone, network, config
        self.autocast, self.channels_last = autocast, channels_last
        self.content_layers = list(content_layers)
        self.style_weights = dict(style_layers)
        self.layers = sorted(set(self.content_layers) | set(self.style_weights))
        with torch.no_grad():
            content_features = self._features(content)
            self.content_targets = {k: content_features[k] for k in self.content_layers}
            self.style_targets = {k: 0.0 for k in self.style_weights}
            for image, weight in zip(styles, blend, strict=True):
                features = self._features(image)
                for k in self.style_weights:
                    self.style_targets[k] = self.style_targets[k] + weight * losses.gram_matrix(
                        features[k]
                    )

    def _features(self, image: torch.Tensor, network=None) -> dict[str, torch.Tensor]:
        if self.channels_last:
            # A copy in the layout cuDNN prefers; the optimised image itself stays contiguous
            # because torch.optim.LBFGS flattens gradients with .view(-1).
            image = image.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            # ``is None``, not ``or``: a compiled module forwards __len__ and has no truth value.
            network = self.backbone if network is None else network
            features = network(image, self.layers)
        return {k: v.float() for k, v in features.items()}

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = self._features(image, self.network)
        content = sum(
            losses.content_loss(features[k], self.content_targets[k]) for k in self.content_layers
        ) / max(1, len(self.content_layers))
        weight_sum = sum(self.style_weights.values()) or 1.0
        style = (
            sum(
                w * losses.style_loss(losses.gram_matrix(features[k]), self.style_targets[k])
                for k, w in self.style_weights.items()
            )
            / weight_sum
        )
        tv = losses.tv_loss(image)
        config = self.config
        total = config.content_weight * content + config.style_weight * style
        total = total + config.tv_weight * tv
        return total, {"total": total, "content": content, "style": style, "tv": tv}


def stylize(content: torch.Tensor, styles: Sequence[torch.Tensor],
            config: GatysConfig | None = None, *, backbone: Backbone | None = None,
            progress: ProgressCallback | None = None, notify=None) -> GatysResult:  # fmt: skip
    """Stylise ``content`` (1, 3, H, W) in [0, 1] with one or more ``styles``.

    ``backbone``: a loaded backbone to reuse (else ``config.backbone`` is loaded, announcing a
    fallback through ``notify(str)``). Raises InputError / WeightsError / Cancelled.
    """
    config = config or GatysConfig()
    validate_config(config)
    _check_images(content, styles)
    blend = _blend_weights(config, len(styles))
    device = resolve_device(config.device)
    configure_for_speed(device)
    started = time.perf_counter()
    if backbone is None:
        backbone = load_backbone(config.backbone, notify=notify)
    content_layers = config.content_layers or backbone.defaults.content_layers
    style_layers = config.style_layers or dict(backbone.defaults.style_layers)
    try:
        backbone.check_layers([*content_layers, *style_layers])
    except ValueError as error:
        raise InputError(str(error)) from error

    use_bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    backbone = backbone.to(device)
    if device.type == "cuda":
        backbone = backbone.to(memory_format=torch.channels_last)

    def autocast():
        if use_bf16:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    network = torch.compile(backbone, dynamic=False) if config.compile else backbone
    content = content.to(device)
    styles = [s.to(device) for s in styles]
    if config.preserve_color == "histogram":
        styles = [color.match_color(s, content) for s in styles]

    sizes = scale_sizes(config.size, config.scales)
    total_steps = config.steps * len(sizes)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    image = None
    step_count = 0
    for scale_index, size in enumerate(sizes):
        content_here = _resize_long(content, size)
        styles_here = [_resize_long(s, max(16, round(size * config.style_scale))) for s in styles]
        objective = _Objective(backbone, network, content_here, styles_here, blend, config,
                               content_layers, style_layers, autocast,
                               channels_last=device.type == "cuda")  # fmt: skip
        if image is None:
            if config.init == "noise":
                image = torch.rand(content_here.shape, generator=generator).to(device)
            else:
                image = content_here.clone()
        else:
            image = F.interpolate(image, size=content_here.shape[-2:], mode="bicubic",
                                  align_corners=False).clamp(0, 1)  # fmt: skip
        image = image.detach().contiguous().requires_grad_(True)
        stage = f"scale {scale_index + 1}/{len(sizes)} ({size} px)"

        budget = _Budget(config.steps)

        def evaluate(image=image, objective=objective, stage=stage, budget=budget):
            """One loss evaluation (forward + backward); records and reports it."""
            nonlocal step_count
            budget.spend()
            total, terms = objective(image)
            total.backward()
            budget.offer(total, image)
            step_count += 1
            values = {k: float(v.detach()) for k, v in terms.items()}
            history.append(values)
            preview = None
            if config.save_every and step_count % config.save_every == 0:
                preview = image.detach().float().clamp(0, 1).cpu().clone()
            report(progress, ProgressEvent(stage, step_count, total_steps, values, preview))
            return total

        try:
            _optimize(config, image, evaluate)
        except _BudgetSpent:
            pass
        with torch.no_grad():
            image.copy_(budget.best_image).clamp_(0, 1)

    result = image.detach().float().contiguous().cpu()
    if config.preserve_color == "luminance":
        result = color.preserve_luminance(result, content.float().cpu())
    return GatysResult(
        image=result.clamp(0, 1),
        history=history,
        backbone=backbone.name,
        device=str(device),
        seconds=time.perf_counter() - started,
        scale_sizes=sizes,
    )


class _BudgetSpent(Exception):
    """Raised by the loss closure once a scale's evaluations are used up."""


class _Budget:
    """Counts a scale's loss evaluations and keeps the best image seen.

    L-BFGS's line search may ask for one evaluation more than ``max_eval``; the budget stops it
    exactly at ``steps``. The best evaluated image is kept, since the last iterate of a line
    search is not always the best one.
    """

    def __init__(self, steps: int) -> None:
        self.left = steps
        self.best_loss = float("inf")
        self.best_image: torch.Tensor | None = None

    def spend(self) -> None:
        if self.left <= 0:
            raise _BudgetSpent
        self.left -= 1

    def offer(self, loss: torch.Tensor, image: torch.Tensor) -> None:
        value = float(loss.detach())
        if value < self.best_loss or self.best_image is None:
            self.best_loss = value
            self.best_image = image.detach().clone()


def _optimize(config: GatysConfig, image: torch.Tensor, evaluate) -> None:
    """Run ``config.steps`` loss evaluations of L-BFGS or Adam on ``image`` in place.

    ``evaluate`` raises _BudgetSpent when the evaluations are used up (handled by the caller).
    L-BFGS runs as one call (max_iter = max_eval = steps) so no evaluation is wasted: calling it
    one iteration at a time re-evaluates the loss at the start of every call. The image is
    clamped to [0, 1] when the scale ends rather than between L-BFGS iterations, which would
    break its curvature estimates. Adam clamps after every step.
    """
    if config.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS(
            [image], lr=config.learning_rate or 1.0, max_iter=config.steps,
            max_eval=config.steps, history_size=50, tolerance_grad=-1.0,
            tolerance_change=-1.0, line_search_fn="strong_wolfe",
        )  # fmt: skip

        def closure():
            optimizer.zero_grad(set_to_none=True)
            return evaluate()

        optimizer.step(closure)
        return
    optimizer = torch.optim.Adam([image], lr=config.learning_rate or 0.02)
    for _ in range(config.steps):
        optimizer.zero_grad(set_to_none=True)
        evaluate()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)
