"""Diffusion styling: a diffusion model redraws the photo with the painting as an image prompt.

Algorithm (Ye et al. 2023, IP-Adapter; Wang et al. 2024, InstantStyle; Zhang et al. 2023,
ControlNet), for a photo and one or more paintings:
  1. The base pipeline, SDXL (default) or SD 1.5, from a local folder or a Hugging Face model id
     already in the user's cache (nothing is downloaded here: ``impasto download sdxl``).
  2. IP-Adapter: each painting goes through the adapter's CLIP image encoder; its tokens reach
     the UNet's cross-attention beside the text's, scaled by ``ip_scale`` (well below 1: at 1 the
     painting's content leaks into the picture).
  3. InstantStyle block masking (``ip_blocks``): the image prompt reaches only the block that
     carries style (``style``, the default), also the one that carries layout
     (``style_and_layout``), or every block (``all``, plain IP-Adapter).
  4. Structure from the photo: img2img from it at ``strength`` (how far the picture may move),
     and a ControlNet on the photo's Canny edges (OpenCV, the default), or on its depth
     (``control depth``: a monocular depth estimator, impasto.depth), or none.
  5. Style LoRAs (``lora PATH[:SCALE]``, several): loaded as adapters with their scales and
     fused into the UNet for the run; ``DiffusionRunner.close`` unfuses and unloads them.
  6. The prompt (may be empty: the image prompt carries the style; ``auto``: style keywords
     CLIP finds in the first painting, impasto.style_words) and a negative prompt,
     ``steps`` denoising steps with classifier-free guidance ``guidance``, the scheduler, the
     seed (a CPU generator: the same seed gives the same picture on the same device).

Departures, and why: several paintings are blended by averaging their image-prompt embeddings
with the ``style_blend`` weights (the adapter takes one image per adapter); the picture is
made with sides rounded to multiples of 64 (what the UNets take) and resized to the photo's
exact aspect with ``size`` on the long side; memory savers (model CPU offload, VAE tiling)
switch on by themselves on CUDA when free memory is short, or as asked by ``offload``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import keep_option, option
from ..depth import DEFAULT_DEPTH_MODEL
from ..devices import DEVICE_CHOICES, resolve_device
from ..errors import InputError
from ..images import resize_to
from ..progress import ProgressCallback, ProgressEvent, report
from .base import Method, Prepared, StyleResult, style_weights

FAMILY_CHOICES: tuple[str, ...] = ("auto", "sdxl", "sd15")
IP_BLOCK_CHOICES: tuple[str, ...] = ("style", "style_and_layout", "all")
CONTROL_CHOICES: tuple[str, ...] = ("canny", "depth", "none")
SCHEDULER_CHOICES: tuple[str, ...] = ("default", "euler", "euler_a", "dpm", "ddim")
OFFLOAD_CHOICES: tuple[str, ...] = ("auto", "none", "model", "sequential")
PRECISION_CHOICES: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
SIDE_MULTIPLE = 64
CANNY_THRESHOLDS = (100, 200)
DEFAULT_NEGATIVE = "blurry, low quality, distorted, watermark, text"


@dataclass(frozen=True)
class Family:
    """What differs between the base models: the default repositories and the block names."""

    name: str
    base: str
    ip_subfolder: str
    ip_weight: str
    controlnets: dict[str, str]  # a ControlNet repository per kind of control image
    size: int
    style_block: dict[str, Any]  # InstantStyle: where style lives (ip scale dict, scale = 1)
    layout_block: dict[str, Any]  # and layout


FAMILIES: dict[str, Family] = {
    "sdxl": Family(
        "sdxl",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "sdxl_models",
        "ip-adapter_sdxl.safetensors",
        {
            "canny": "diffusers/controlnet-canny-sdxl-1.0",
            "depth": "diffusers/controlnet-depth-sdxl-1.0",
        },
        1024,
        style_block={"up": {"block_0": [0.0, 1.0, 0.0]}},
        layout_block={"down": {"block_2": [0.0, 1.0]}},
    ),
    "sd15": Family(
        "sd15",
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "models",
        "ip-adapter_sd15.safetensors",
        {
            "canny": "lllyasviel/sd-controlnet-canny",
            "depth": "lllyasviel/control_v11f1p_sd15_depth",
        },
        512,
        style_block={"up": {"block_1": 1.0}},
        layout_block={"down": {"block_2": 1.0}, "mid": 1.0},
    ),
}
IP_ADAPTER_REPO = "h94/IP-Adapter"


@dataclass
class DiffusionConfig:
    """Options of ``stylize --method diffusion``."""

    base: str | None = option(
        None,
        "the base model: a Hugging Face model id in your cache or a local folder",
        metavar="ID_OR_FOLDER",
        default_text="SDXL base 1.0",
    )
    family: str = option(
        "auto", "the base model's family (auto: read from its folder)", choices=FAMILY_CHOICES
    )
    ip_adapter: str = option(
        IP_ADAPTER_REPO, "the IP-Adapter repository (id or local folder)", metavar="ID_OR_FOLDER"
    )
    ip_scale: float = option(
        0.6,
        "how strongly the painting steers the picture (above about 0.8 its content leaks in)",
        min=0.0,
        max=2.0,
    )
    ip_blocks: str = option(
        "style",
        "which UNet blocks see the painting (InstantStyle: style only keeps its content out)",
        choices=IP_BLOCK_CHOICES,
    )
    control: str = option(
        "canny",
        "structure from the photo through a ControlNet: its edges, or its depth",
        choices=CONTROL_CHOICES,
    )
    controlnet: str | None = option(
        None,
        "the ControlNet (id or local folder)",
        metavar="ID_OR_FOLDER",
        default_text="the family's, for --control",
    )
    depth_model: str = option(
        DEFAULT_DEPTH_MODEL,
        "the depth estimator for --control depth (id or local folder)",
        metavar="ID_OR_FOLDER",
    )
    control_scale: float = option(0.5, "how strictly the edges are kept", min=0.0, max=2.0)
    strength: float = option(
        0.7, "how far the picture may move from the photo (img2img)", min=0.05, max=1.0
    )
    lora: list[str] | None = option(
        None, "style LoRA files, each PATH or PATH:SCALE", metavar="PATH[:SCALE]"
    )
    prompt: str = option(
        "",
        "what to draw, in words (the painting carries the style); auto: style keywords CLIP "
        "finds in the first painting (impasto describe-style)",
        default_text="none",
    )
    negative_prompt: str = option(DEFAULT_NEGATIVE, "what to avoid, in words")
    steps: int = option(30, "denoising steps", min=1, max=500)
    guidance: float = option(5.0, "classifier-free guidance scale", min=0.0, max=30.0)
    scheduler: str = option(
        "default", "the sampler ('default': the one the model came with)", choices=SCHEDULER_CHOICES
    )
    style_blend: list[float] | None = option(
        None, "weights of several style images", metavar="W", default_text="equal"
    )
    size: int | None = option(
        None,
        "long side of the output in pixels (made at the nearest multiple of 64)",
        min=16,
        max=4096,
        default_text="the family's: 1024 or 512",
    )
    seed: int = option(0, "random seed", min=0, max=2**63 - 1)
    device: str = option("auto", "where to compute", choices=DEVICE_CHOICES)
    precision: str = option("auto", "auto: fp16 on CUDA, fp32 elsewhere", choices=PRECISION_CHOICES)
    offload: str = option(
        "auto",
        "memory savers: model or sequential CPU offload (auto: by free GPU memory)",
        choices=OFFLOAD_CHOICES,
    )
    keep: str | None = keep_option()


# --------------------------------------------------------------------------- where weights are


def family_of(folder: Path, asked: str) -> Family:
    """The family of the base model in ``folder`` (its model_index.json), or the one asked."""
    if asked != "auto":
        return FAMILIES[asked]
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        raise InputError(
            f"{folder} has no readable model_index.json: not a diffusers model folder"
        ) from None
    return FAMILIES["sdxl" if "text_encoder_2" in index else "sd15"]


def ip_scales(family: Family, blocks: str, scale: float) -> float | dict[str, Any]:
    """The IP-Adapter scale for ``pipe.set_ip_adapter_scale``: one number for every block
    (``all``), else InstantStyle's per-block dict with ``scale`` where style (and layout) live."""
    if blocks == "all":
        return scale

    def scaled(value: Any) -> Any:  # a block's scale: a number, a list per attention, a dict
        if isinstance(value, dict):
            return {key: scaled(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [item * scale for item in value]
        return value * scale

    chosen = scaled(family.style_block)
    if blocks == "style_and_layout":
        chosen.update(scaled(family.layout_block))
    return chosen


def parse_lora(spec: str) -> tuple[Path, float]:
    """``PATH`` or ``PATH:SCALE`` (scale 1 when not given)."""
    path_text, colon, scale_text = spec.rpartition(":")
    if not colon or not _is_number(scale_text):
        path_text, scale_text = spec, "1"
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise InputError(f"--lora: file not found: {path}")
    return path, float(scale_text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- the picture


def canny_edges(photo: torch.Tensor) -> torch.Tensor:
    """The photo's Canny edges (OpenCV) as a white-on-black (1, 3, H, W) image in [0, 1]."""
    import cv2
    import numpy as np

    grey = (photo[0].mean(0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    edges = cv2.Canny(np.ascontiguousarray(grey), *CANNY_THRESHOLDS)
    return torch.from_numpy(edges).float().div(255)[None, None].expand(1, 3, -1, -1).clone()


def output_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """The photo's aspect with ``long_side`` on its long side, both sides multiples of 64."""
    scale = long_side / max(height, width)
    return tuple(
        max(SIDE_MULTIPLE, round(side * scale / SIDE_MULTIPLE) * SIDE_MULTIPLE)
        for side in (height, width)
    )


def _exact_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


class DiffusionMethod(Method):
    name = "diffusion"
    config_class = DiffusionConfig

    def check(self, config: DiffusionConfig, style_count: int | None) -> None:
        if style_count:
            style_weights(config.style_blend, style_count)
        for spec in config.lora or []:
            parse_lora(spec)

    def missing_weights(self, config: DiffusionConfig) -> str | None:
        """Every model ``config`` needs that is not on this machine, each with the command that
        fetches it, in one line (a fresh install learns them all at once)."""
        from .. import diffusion_parts as parts
        from ..errors import WeightsError
        from ..style_words import CLIP_REPOSITORY

        problems: list[str] = []

        def look(ref: str, what: str, fetch: str) -> Path | None:
            try:
                return parts.local_folder(ref, what, fetch)
            except (WeightsError, InputError) as error:
                problems.append(str(error))
                return None

        family = FAMILIES["sd15" if config.family == "sd15" else "sdxl"]  # auto: SDXL's
        base = look(config.base or family.base, "the base model", family.name)
        if base is not None:
            try:
                family = family_of(base, config.family)
            except InputError as error:  # e.g. a download cut short: no model_index.json
                problems.append(str(error))
        adapter = look(config.ip_adapter, "the IP-Adapter", f"ip-adapter-{family.name}")
        weights = Path(family.ip_subfolder, family.ip_weight)
        if adapter is not None and not (adapter / weights).is_file():  # it holds both families'
            problems.append(f"the IP-Adapter's {family.name} weights ({weights}) are not in "
                            f"{adapter}: `impasto download ip-adapter-{family.name}` fetches "
                            "them")  # fmt: skip
        if config.control != "none":
            look(
                config.controlnet or family.controlnets[config.control],
                f"the {config.control} ControlNet",
                f"controlnet-{config.control}-{family.name}",
            )
        if config.control == "depth":
            look(config.depth_model, "the depth estimator", "depth-anything")
        if config.prompt.strip().lower() == "auto":
            look(CLIP_REPOSITORY, "CLIP", "clip-text")
        return "; ".join(problems) or None

    def prepare(
        self, config: DiffusionConfig, styles: Sequence[torch.Tensor], *, backbone=None, notify=None
    ) -> DiffusionRunner:
        from .. import diffusion_parts as parts

        device = resolve_device(config.device)
        asked = FAMILIES["sd15" if config.family == "sd15" else "sdxl"]  # auto: SDXL's
        base = parts.local_folder(config.base or asked.base, "the base model", asked.name)
        family = family_of(base, config.family)
        depth = None
        if config.control == "depth":  # before the pipeline: a missing estimator said at once
            from ..depth import DepthEstimator

            depth = DepthEstimator(config.depth_model, device)
        pipe = parts.build_pipeline(config, family, base, device, notify)
        weights = style_weights(config.style_blend, len(styles))
        embeddings = parts.image_prompt(pipe, styles, weights, device, config.guidance > 1)
        scale = ip_scales(family, config.ip_blocks, config.ip_scale)
        parts.set_ip_scale(pipe, scale, family, expect_some=config.ip_scale > 0)
        loras = parts.apply_loras(pipe, [parse_lora(spec) for spec in config.lora or []])
        prompt = config.prompt
        if prompt.strip().lower() == "auto":
            from .. import style_words

            prompt = style_words.prompt_from(style_words.describe(styles[0], top=1))
            if notify is not None:
                notify(f"prompt: {prompt}")
        return DiffusionRunner(config, family, pipe, embeddings, device, loras, prompt, depth)


@dataclass
class DiffusionRunner(Prepared):
    config: DiffusionConfig
    family: Family
    pipe: Any
    embeddings: list[torch.Tensor]
    device_: torch.device
    loras: list[str] = field(default_factory=list)
    prompt: str = ""
    depth: Any = None  # impasto.depth.DepthEstimator, for ``control depth``
    method = "diffusion"

    def __post_init__(self) -> None:
        self.device = str(self.device_)  # no feature network: ``backbone`` stays empty

    def run(self, content: torch.Tensor, progress: ProgressCallback | None = None) -> StyleResult:
        config = self.config
        long_side = config.size or self.family.size
        wanted = _exact_size(*content.shape[-2:], long_side)
        height, width = output_size(*content.shape[-2:], long_side)
        photo = resize_to(content[:1].float().cpu(), height, width).clamp(0, 1)
        arguments: dict[str, Any] = {}
        if config.control != "none":
            arguments["control_image"] = self.control_image(photo)
            arguments["controlnet_conditioning_scale"] = config.control_scale
        steps = max(config.steps, math.ceil(1 / config.strength))  # at least one to run
        total = max(1, int(steps * config.strength))

        def on_step(pipe, step: int, timestep, values: dict) -> dict:
            report(progress, ProgressEvent("denoising", step + 1, total))
            return values

        report(
            progress,
            ProgressEvent(f"{self.family.name} at {width}x{height}", 0, total, kind="stage"),
        )
        generator = torch.Generator("cpu").manual_seed(config.seed)
        output = self.pipe(
            prompt=self.prompt,
            negative_prompt=config.negative_prompt or None,
            image=photo,
            strength=config.strength,
            num_inference_steps=steps,
            guidance_scale=config.guidance,
            ip_adapter_image_embeds=self.embeddings,
            generator=generator,
            output_type="pt",
            callback_on_step_end=on_step,
            height=height,
            width=width,
            **arguments,
        ).images
        image = output[:1].float().cpu().clamp(0, 1)
        if image.shape[-2:] != wanted:
            image = resize_to(image, *wanted).clamp(0, 1)
        details = {"family": self.family.name, "size": [width, height], "loras": self.loras,
                   "prompt": self.prompt}  # fmt: skip
        return StyleResult(image, method="diffusion", device=self.device, details=details)

    def control_image(self, photo: torch.Tensor) -> torch.Tensor:
        """What the ControlNet sees of ``photo``: its Canny edges, or its depth."""
        if self.config.control == "depth":
            return self.depth(photo)
        return canny_edges(photo)

    def close(self) -> None:
        """Unfuse and unload the LoRAs: the pipeline is as it was loaded."""
        from .. import diffusion_parts as parts

        parts.remove_loras(self.pipe, self.loras)
        self.loras = []


METHOD = DiffusionMethod()
