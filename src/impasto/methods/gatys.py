"""Neural style transfer by optimisation (Gatys, Ecker & Bethge, CVPR 2016).

Algorithm, per scale (coarse to fine):
  1. Resize the content image to this scale and each style image to ``style_scale`` times it.
  2. Targets: backbone features of the content at the content layers; Gram matrices of each
     style at the style layers, blended with the ``style_blend`` weights.
  3. Start from the content (or noise, or the previous scale's result, upsampled).
  4. Minimise  content_weight * L_content + style_weight * L_style + tv_weight * L_tv
     with L-BFGS (or Adam), clamping the image to [0, 1] after each step.
Finally, optionally keep the content's colours (``preserve_color``, the post-process shared by
every method); ``recolor_style`` instead gives each style image the content's colours first
(Gatys et al. 2017's colour histogram matching as a pre-pass).

Departures from the paper, and why:
- Losses are relative (see impasto.losses) so weights mean the same across sizes and backbones;
  the paper's absolute weights (alpha/beta ~ 1e-3) do not transfer between networks.
- Coarse-to-fine scales (as in Gatys et al. 2017, "Controlling perceptual factors") keep
  large-scale structure at high resolution and make most steps cheap.
- Total-variation regularisation (Mahendran & Vedaldi 2015; common in implementations).
- The backbone is pluggable; each brings its own layers and weights (defaults per backbone).
- On CUDA the backbone runs under bf16 autocast with channels_last (on the CPU too where the
  backbone says it is faster: EfficientNet-Lite, 1.02-1.17x a step); Gram matrices and losses
  stay in float32. ``cuda_graph`` replays each evaluation from a CUDA graph (impasto.cuda_graphs).
- A scale too large for ``max_memory`` is optimised tile by tile (impasto.tiled_refinement),
  each tile against the whole picture's style loss (impasto.perceptual.TiledGrams) and faded
  into its neighbours, so the tiles share one style and no seam shows.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from .. import color, cuda_graphs, tiled_refinement
from ..backbones import BACKBONE_CHOICES, Backbone, load_backbone
from ..config import keep_option, option, validate_config
from ..devices import (
    AUTOCAST_PRECISIONS,
    DEVICE_CHOICES,
    autocast,
    configure_for_speed,
    resolve_device,
)
from ..errors import InputError, partial_kept_on_stop
from ..images import long_side_shape, resize_long_side, resize_to
from ..memory import memory_budget, parse_memory
from ..optimisation import OPTIMIZER_CHOICES, EvaluationBudget, optimise
from ..perceptual import Objective, ScaleObjectives, network_features
from ..progress import ProgressCallback, ProgressEvent, report
from ..regions import load_mask, masks_at
from ..starts import graded_start, starting_image
from ..temporal import TemporalPrior
from .base import Method, Prepared, StyleResult, style_weights

INIT_CHOICES = ("auto", "content", "graded", "noise")
# The coarsest scale is the largest size obtained by halving ``size`` that stays >= this.
MIN_SCALE_SIZE = 192
# Below this long side a backbone with a strided first layer paints a grid a few pixels wide
# (docs/defaults.md, "Small sizes"): such runs are optimised at twice the size and shrunk.
SUPERSAMPLE_BELOW = 384
MIN_SCALE_STEPS = 10  # a finer scale's fewest evaluations under --step-decay
MIN_SIDE = 16  # the short side every image needs at every scale (the backbones downsample)
PHOTOREALISM_WEIGHT = 1e5  # --photorealistic, by trying it: docs/photo.md
# Memory of one scale's optimisation, measured on the CPU (docs/tiling.md): the process and the
# network, the picture-sized tensors, and per optimised pixel the backbone's
# ``optimised_bytes_per_pixel`` (its activations and their gradients, L-BFGS's 2 x 20 vectors).
FIXED_BYTES = 512 * 2**20
PICTURE_BYTES_PER_PIXEL = 64
PHOTOREAL_BYTES_PER_PIXEL = 2000  # the matting Laplacian's 25 entries a pixel, and its build


@dataclass
class GatysConfig:
    """Options of the Gatys method; the CLI flags are built from these fields."""

    # What a provenance record made before an option existed ran with (impasto.provenance).
    BEFORE_IT_EXISTED: ClassVar[dict[str, object]] = {"step_decay": 1.0, "supersample": False}

    size: int = option(512, "long side of the output in pixels", min=16, max=8192)
    steps: int = option(200, "optimiser steps (loss evaluations) at the coarsest scale", min=1,
                        max=100_000)  # fmt: skip
    step_decay: float = option(0.25, "each finer scale runs this share of the steps of the scale "
                               "before it (1: --steps at every scale)", min=0.05,
                               max=1.0)  # fmt: skip
    scales: int | None = option(
        None,
        "number of coarse-to-fine scales, each half the next (automatic: down to 192 px or more)",
        min=1,
        max=8,
        default_text="automatic",
    )
    optimizer: str = option("lbfgs", "optimiser", choices=OPTIMIZER_CHOICES)
    learning_rate: float | None = option(
        None, "step size", min=1e-6, max=100.0, default_text="1 for L-BFGS, 0.02 for Adam"
    )
    content_weight: float = option(20.0, "weight of the content loss", min=0.0)
    style_weight: float = option(1e4, "weight of the style loss", min=0.0)
    tv_weight: float = option(1000.0, "weight of the total-variation loss (smoothness)", min=0.0)
    supersample: bool = option(True, f"optimise a result under {SUPERSAMPLE_BELOW} px at twice "
                               "its size and shrink it, on a network whose first layer is "
                               "strided (EfficientNet): no pixel-grid hatching")  # fmt: skip
    init: str = option("auto", "starting image (graded: the photo in the paintings' colours; "
                       "auto: graded, or the photo with --photorealistic)",
                       choices=INIT_CHOICES)  # fmt: skip
    style_scale: float = option(1.0, "style image size relative to the output", min=0.05, max=8.0)
    style_blend: list[float] | None = option(
        None,
        "weights of several style images, one per style image",
        metavar="W",
        default_text="equal",
    )
    preserve_color: str = option("none", "keep the content's colours (luminance: its colours; "
                                 "histogram: its colour statistics)",
                                 choices=color.PRESERVE_COLOR_CHOICES)  # fmt: skip
    recolor_style: bool = option(False, "give each style image the content's colour statistics "
                                 "before stylising (a pre-pass)")  # fmt: skip
    backbone: str = option("auto", "feature network", choices=BACKBONE_CHOICES)
    weights: str | None = option(None, "local weights file for the backbone (instead of the "
                                 "cache)", metavar="PATH")  # fmt: skip
    content_layers: list[str] | None = option(
        None, "content layers", metavar="NAME", default_text="the backbone's"
    )
    style_layers: dict[str, float] | None = option(
        None,
        "style layers and their weights (WEIGHT: 1 when not given)",
        metavar="NAME[:WEIGHT]",
        default_text="the backbone's",
    )
    seed: int = option(0, "random seed (bit-identical output on the CPU)", min=0, max=2**63 - 1)
    device: str = option("auto", "where to compute", choices=DEVICE_CHOICES)
    precision: str = option("auto", "auto: bf16 autocast on CUDA, fp32 elsewhere",
                            choices=AUTOCAST_PRECISIONS)  # fmt: skip
    compile: bool = option(False, "torch.compile the feature network (pays off on CUDA; slow "
                           "first step)")  # fmt: skip
    cuda_graph: bool = option(False, "on CUDA: replay each scale's loss evaluation from a CUDA "
                              "graph (for launch-bound networks; checked against an eager "
                              "evaluation, and left off if it differs)")  # fmt: skip
    save_every: int = option(0, "save an intermediate image every N steps (0: never)",
                             min=0)  # fmt: skip
    photorealistic: bool = option(False, "keep the result a photograph: add the "
                                  "matting-Laplacian regulariser (Luan et al. 2017)")  # fmt: skip
    photorealism_weight: float = option(PHOTOREALISM_WEIGHT, "weight of that regulariser",
                                        min=0.0)  # fmt: skip
    content_mask: str | None = option(None, "a label image of the photo: each region matches "
                                      "the Gram statistics of the style's region of the same "
                                      "colour (with --style-mask)", metavar="LABELS")  # fmt: skip
    style_mask: str | None = option(None, "a label image of the style image, for "
                                    "--content-mask", metavar="LABELS")  # fmt: skip
    mask: list[str] | None = option(None, "one mask image per style image, in the same order: "
                                    "white gives that style its region (uncovered regions keep "
                                    "only the photo's content)", metavar="MASK")  # fmt: skip
    keep: str | None = keep_option()
    max_memory: str | None = option(
        None, "memory the run may use, e.g. 8GB: a scale that would not fit is optimised tile "
        "by tile", metavar="SIZE", default_text="what the device has free",
    )  # fmt: skip


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


def working_size(size: int, backbone: Backbone, supersample: bool = True) -> int:
    """The long side a ``size`` px result is optimised at: with ``supersample``, twice ``size``
    below SUPERSAMPLE_BELOW on a backbone whose first layer is strided; else ``size``."""
    small = size < SUPERSAMPLE_BELOW and backbone.first_stride > 1
    return 2 * size if supersample and small else size


def scale_steps(steps: int, scales: int, decay: float) -> list[int]:
    """Evaluations at each of ``scales`` scales, coarse to fine: ``steps`` at the coarsest,
    ``decay`` times the previous at each finer one (at least MIN_SCALE_STEPS, at most
    ``steps``)."""
    counts = [steps]
    for _ in range(scales - 1):
        counts.append(min(steps, max(MIN_SCALE_STEPS, round(counts[-1] * decay))))
    return counts


def check_sides(content: torch.Tensor, styles: Sequence[torch.Tensor], config: GatysConfig) -> None:
    """Refuse images too thin for the backbone at the smallest scale (e.g. 1x5000 pixels),
    naming the image and the limit, instead of failing deep inside a convolution."""
    smallest = scale_sizes(config.size, config.scales)[0]
    images = [("the content image", content, smallest)]
    style_size = max(16, round(smallest * config.style_scale))
    images += [(f"style image {i + 1}", style, style_size) for i, style in enumerate(styles)]
    for what, image, long_side in images:
        height, width = image.shape[-2:]
        short = round(min(height, width) * long_side / max(height, width))
        if short < MIN_SIDE:
            raise InputError(
                f"{what} ({width}x{height} pixels) is too thin: at {long_side} px its short side "
                f"is {short} px, and it must be at least {MIN_SIDE} (crop it, or raise --size)"
            )


def stylize(content: torch.Tensor, styles: Sequence[torch.Tensor],
            config: GatysConfig | None = None, *, backbone: Backbone | None = None,
            progress: ProgressCallback | None = None, notify=None,
            prior: TemporalPrior | None = None) -> StyleResult:  # fmt: skip
    """Stylise ``content`` (1, 3, H, W) in [0, 1] with one or more ``styles``.

    ``prior``: a video frame after the first (impasto.temporal, Ruder et al. 2016): only the
    last scale runs, from the warped previous frame where it is reliable, with
    ``temporal_steps`` of ``config.steps`` and a temporal loss of ``temporal_weight``.
    ``backbone``: a loaded backbone to reuse (else ``config.backbone`` is loaded, announcing a
    fallback through ``notify(str)``). Raises InputError / WeightsError / Cancelled.
    """
    config = config or GatysConfig()
    validate_config(config)
    if not styles:
        raise InputError("method 'gatys' needs at least one style image")
    for image in (content, *styles):
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise InputError(f"images must be (1, 3, H, W) tensors, got {tuple(image.shape)}")
    blend = style_weights(config.style_blend, len(styles))
    check_sides(content, styles, config)
    device = resolve_device(config.device)
    configure_for_speed(device)
    started = time.perf_counter()
    if backbone is None:
        weights = Path(config.weights).expanduser() if config.weights else None
        backbone = load_backbone(config.backbone, weights=weights, notify=notify)
    content_layers = config.content_layers or backbone.defaults.content_layers
    style_layers = config.style_layers or dict(backbone.defaults.style_layers)
    try:
        backbone.check_layers([*content_layers, *style_layers])
    except ValueError as error:
        raise InputError(str(error)) from error

    backbone = backbone.to(device)
    channels_last = device.type == "cuda" or (
        device.type == "cpu" and backbone.channels_last_on_cpu
    )
    if channels_last:
        backbone = backbone.to(memory_format=torch.channels_last)
    graphs = graphs_for(config, device)
    mixed = functools.partial(autocast, device, config.precision, cache=graphs is None)
    network = torch.compile(backbone, dynamic=False) if config.compile else backbone
    content = content.to(device)
    styles = [s.to(device) for s in styles]
    if config.recolor_style:
        styles = [color.match_color(s, content) for s in styles]

    regions = None
    if config.mask is not None:
        regions = ([load_mask(mask).to(device) for mask in config.mask], None)
    if config.content_mask is not None:
        from .. import labels

        sizes_given = (tuple(content.shape[-2:]), tuple(styles[0].shape[-2:]))
        found = labels.region_masks(config.content_mask, config.style_mask, *sizes_given)
        regions = ([r.content.to(device) for r in found], [r.style.to(device) for r in found])
    sizes = scale_sizes(working_size(config.size, backbone, config.supersample), config.scales)
    steps_at = scale_steps(config.steps, len(sizes), config.step_decay)
    if prior is not None:
        sizes, steps_at = sizes[-1:], [temporal_steps(config.steps)]
    height, width = content.shape[-2:]
    output = long_side_shape(height, width, config.size)  # a supersampled run's too
    budget = memory_budget(config.max_memory, device)
    shapes = [long_side_shape(height, width, size) for size in sizes]
    tile_cores = [tile_core(*shape, budget, config, backbone.optimised_bytes_per_pixel)
                  for shape in shapes]  # fmt: skip
    counts = [1 if core is None else len(tiled_refinement.windows(*shape, core))
              for shape, core in zip(shapes, tile_cores, strict=True)]  # fmt: skip
    total_steps = sum(steps * count for steps, count in zip(steps_at, counts, strict=True))
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    image = None
    step_count = 0
    watched: EvaluationBudget | None = None  # the whole picture's, when a scale runs whole

    def so_far() -> StyleResult | None:
        """The best image yet, at the output's size: what a stop keeps."""
        best = watched.best_image if watched is not None else None
        best = best if best is not None else image
        if best is None:
            return None
        final = resize_long_side(content, config.size).cpu()
        picture = resize_to(best.detach().float().cpu(), *final.shape[-2:])
        picture = color.preserve_colors(picture, final, config.preserve_color).clamp(0, 1)
        details = {"scale_sizes": sizes, "stopped_at_step": step_count, "steps": total_steps}
        return StyleResult(picture, method="gatys", history=list(history), details=details,
                           backbone=backbone.name, device=str(device),
                           seconds=time.perf_counter() - started)  # fmt: skip

    def optimised(start, objective, stage, steps, whole=True):
        """``start`` after ``steps`` evaluations of ``objective``, each recorded and reported
        (``whole``: ``start`` is the whole picture, what a stop keeps)."""
        nonlocal step_count, watched
        image = start.detach().contiguous().requires_grad_(True)
        budget = EvaluationBudget(steps)
        watched = budget if whole else None
        evaluation = functools.partial(cuda_graphs.forward_backward, objective, image)
        broken_before = graphs.broken if graphs is not None else None
        if graphs is not None and whole and steps >= cuda_graphs.MIN_GRAPHED_EVALUATIONS:
            evaluation = cuda_graphs.GraphedEvaluation(objective, image, graphs)  # tiles: eager

        def evaluate():
            nonlocal step_count
            budget.spend()
            _, terms = evaluation()
            # one transfer from the device for every term, not one each
            values = dict(zip(terms, torch.stack([v.float() for v in terms.values()]).tolist(),
                              strict=True))  # fmt: skip
            budget.offer(values["total"], image)
            step_count += 1
            if not math.isfinite(values["total"]):
                raise InputError(
                    f"the loss is not a finite number at step {step_count} "
                    f"({values['total']}): the weights are too large (--content-weight, "
                    "--style-weight, --tv-weight)"
                )
            history.append(values)
            preview = None
            if config.save_every and step_count % config.save_every == 0 and whole:
                preview = resize_to(image.detach().float().cpu(), *output)
            report(progress, ProgressEvent(stage, step_count, total_steps, values, preview))
            return values["total"]  # a number: the optimiser needs no other wait for the device

        optimise(image, evaluate, steps, budget, optimizer=config.optimizer,
                 learning_rate=config.learning_rate)  # fmt: skip
        if graphs is not None and graphs.broken != broken_before and notify is not None:
            notify(f"--cuda-graph: off from {stage} on: {graphs.broken}")  # said once: here
        return image.detach()

    with partial_kept_on_stop(so_far):
        for scale_index, (size, core, steps) in enumerate(zip(sizes, tile_cores, steps_at,
                                                              strict=True)):  # fmt: skip
            content_here = resize_long_side(content, size)
            styles_here = [resize_long_side(s, max(16, round(size * config.style_scale)))
                           for s in styles]  # fmt: skip
            shape = content_here.shape[-2:]
            if prior is not None:  # at the output's size: brought to this scale's
                prior_here = (temporal_weight(prior.strength),
                              resize_to(prior.image, *shape).to(device),
                              F.interpolate(prior.reliable, size=tuple(shape),
                                            mode="bilinear").to(device))  # fmt: skip
                reliable = prior_here[2]
                image = reliable * prior_here[1] + (1 - reliable) * content_here
            elif image is None:
                init = starting_image(config)
                if init == "noise":
                    image = torch.rand(content_here.shape, generator=generator).to(device)
                elif init == "graded":
                    image = graded_start(content_here, styles, blend, regions)
                else:
                    image = content_here.clone()
            else:
                image = F.interpolate(image, size=shape, mode="bicubic",
                                      align_corners=False).clamp(0, 1)  # fmt: skip
            masks_here = None
            if regions is not None and core is not None:  # cropped with the tiles
                masks_here = list(masks_at(regions[0], tuple(shape)).split(1))
            stage = f"scale {scale_index + 1}/{len(sizes)} ({size} px)"
            report(progress, ProgressEvent(stage, step_count, total_steps, kind="stage"))
            build = functools.partial(Objective, backbone, network, styles=styles_here,
                                      blend=blend, config=config, content_layers=content_layers,
                                      style_layers=style_layers, autocast=mixed,
                                      channels_last=channels_last)  # fmt: skip
            tiles = None if core is None else tiled_refinement.windows(*shape, core)
            objective_for = ScaleObjectives(build, content_here, regions, masks_here,
                                            prior_here if prior is not None else None,
                                            tiles)  # fmt: skip
            if tiles is None:
                image = optimised(image, objective_for(), stage, steps)
                continue
            style_features = functools.partial(
                network_features, backbone, layers=list(style_layers), autocast=mixed,
                channels_last=channels_last,
            )  # fmt: skip
            grams = objective_for.grams
            with torch.no_grad():  # the whole picture's Gram matrices, core by core
                for tile in tiles:
                    pixels = image[..., tile.top : tile.bottom, tile.left : tile.right]
                    grams.measure_core(style_features(pixels), tile)

            def refine(pixels, index, fade, stage=stage, objective_for=objective_for, tiles=tiles,
                       style_features=style_features, grams=grams, steps=steps):  # fmt: skip
                with torch.no_grad():
                    grams.start(style_features(pixels), fade)
                where = f"{stage}, tile {index + 1}/{len(tiles)}"
                result = optimised(pixels, objective_for(index, fade), where, steps,
                                   whole=False)  # fmt: skip
                with torch.no_grad():
                    grams.finish(style_features(result), fade)
                return result

            tiled_refinement.refine_in_tiles(image, refine, tiles)

    result = resize_to(image.detach().float().cpu(), *output)
    result = color.preserve_colors(result, content.cpu(), config.preserve_color)
    return StyleResult(image=result.clamp(0, 1), method="gatys", history=history,
                       backbone=backbone.name, device=str(device),
                       seconds=time.perf_counter() - started,
                       details={"scale_sizes": sizes, "tiles": counts})  # fmt: skip


def graphs_for(config: GatysConfig, device: torch.device) -> cuda_graphs.CudaGraphs | None:
    """CUDA graphs for the evaluations, where asked for and possible: on CUDA, without the
    photorealism regulariser (its sparse product is left eager) or torch.compile."""
    if config.cuda_graph and device.type == "cuda" and not (config.photorealistic
                                                             or config.compile):  # fmt: skip
        return cuda_graphs.CudaGraphs(device)
    return None


def tile_core(height: int, width: int, budget: int | None, config: GatysConfig,
              network_bytes: int) -> int | None:  # fmt: skip
    """The largest tile core with which a ``height`` x ``width`` scale fits in ``budget`` bytes
    with ``network_bytes`` a pixel for the network (None: it runs whole)."""
    per_pixel = network_bytes + (PHOTOREAL_BYTES_PER_PIXEL if config.photorealistic else 0)
    fixed = FIXED_BYTES + height * width * PICTURE_BYTES_PER_PIXEL
    return tiled_refinement.largest_core(height, width, budget, per_pixel, fixed)


class GatysMethod(Method):
    """The method table's ``gatys``: every image is its own optimisation (max_batch 1)."""

    name = "gatys"
    config_class = GatysConfig

    def check(self, config: GatysConfig, style_count: int | None) -> None:
        if style_count:
            style_weights(config.style_blend, style_count)
        from ..labels import check_label_options

        check_label_options(config.content_mask, config.style_mask, style_count)
        if config.mask is not None and config.content_mask is not None:
            raise InputError("--mask and --content-mask/--style-mask: give one or the other")
        if config.mask is not None and style_count and len(config.mask) != style_count:
            raise InputError(f"--mask: {len(config.mask)} mask(s) for {style_count} style image(s)")
        if config.max_memory is not None:
            parse_memory(config.max_memory)
        if config.weights is not None:
            path = Path(config.weights).expanduser()
            if not path.is_file():
                problem = "it is a directory" if path.is_dir() else "file not found"
                raise InputError(f"--weights '{config.weights}': {problem}")
        resolve_device(config.device)  # e.g. --device cuda without a GPU

    def prepare(self, config: GatysConfig, styles, *, backbone=None, notify=None) -> GatysRunner:
        if backbone is None:
            weights = Path(config.weights).expanduser() if config.weights else None
            backbone = load_backbone(config.backbone, weights=weights, notify=notify)
        return GatysRunner(config, list(styles), backbone, notify)


class GatysRunner(Prepared):
    method = "gatys"

    def __init__(self, config: GatysConfig, styles, backbone: Backbone, notify) -> None:
        self.config, self.styles, self.network, self.notify = config, styles, backbone, notify
        self.backbone = backbone.name
        self.device = str(resolve_device(config.device))

    takes_prior = True

    def run(self, content: torch.Tensor, progress: ProgressCallback | None = None,
            prior: TemporalPrior | None = None) -> StyleResult:  # fmt: skip
        return stylize(content, self.styles, self.config, backbone=self.network,
                       progress=progress, notify=self.notify, prior=prior)  # fmt: skip


METHOD = GatysMethod()

TEMPORAL_WEIGHT = 2e3
"""The temporal loss weight at strength 0.5 (docs/video.md); x s / (1 - s) at strength s."""


def temporal_weight(strength: float) -> float:
    """Ruder et al.'s temporal loss weight for ``--temporal`` strength s in (0, 1)."""
    return TEMPORAL_WEIGHT * strength / (1.0 - strength)


def temporal_steps(steps: int) -> int:
    """Steps for a frame after the first: it starts from the warped previous frame, so it
    needs fewer (half, at least 10, at most ``steps``)."""
    return min(steps, max(10, steps // 2))
