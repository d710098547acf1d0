"""What the arbitrary-style methods (AdaIN, WCT) share around their one transform: options,
loading the decoders and their encoder, placing them on a device, the style images' features,
masks, and the run over a batch of photos.

Each method file says only what is its own: how features are transformed (AdaIN: channel
means and deviations; WCT: whitening and colouring) and in which order the layers are decoded.
"""

from __future__ import annotations

import dataclasses
import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .. import color, tiling
from ..backbones import Backbone, load_backbone
from ..config import keep_option, option
from ..decoders import DecoderModel, check_decoder_backbone, load_decoders
from ..devices import DEVICE_CHOICES, PRECISION_CHOICES, configure_for_speed, resolve_device
from ..errors import InputError
from ..images import resize_long_side, resize_to
from ..memory import memory_budget, parse_memory
from ..model_folder import MODELS_DIR
from ..progress import ProgressCallback
from ..regions import Moments, check_masks, load_mask, masks_at
from .base import Method, Notify, Prepared, StyleResult, style_weights

MIN_SIDE = 16  # two feature pixels at stride 8: reflection padding needs them
TILE_MARGIN = 96  # an encoder and a decoder see further than the fast network: docs/tiling.md
TILE_DISCARD = 64
BYTES_PER_PIXEL = {"adain": 450, "wct": 500, "photo": 750}  # measured: docs/tiling.md


@dataclass
class TransferConfig:
    """The options AdaIN and WCT share (each method's config adds its own)."""

    alpha: float = option(1.0, "how much style: 0 keeps the photo, 1 takes the style fully",
                          min=0.0, max=1.0)  # fmt: skip
    style_blend: list[float] | None = option(
        None, "weights of several style images, one per style image", metavar="W",
        default_text="equal",
    )  # fmt: skip
    mask: list[str] | None = option(
        None,
        "one mask image per style image, in the same order: white gives that style its region "
        "(uncovered regions keep the photo)",
        metavar="MASK",
    )
    style_size: int = option(512, "long side of the style images in pixels", min=32, max=4096)
    size: int | None = option(None, "long side of the output in pixels", min=MIN_SIDE,
                              max=16384, default_text="the input's size")  # fmt: skip
    preserve_color: str = option("none", "keep the content's colours (luminance: its colours; "
                                 "histogram: its colour statistics)",
                                 choices=color.PRESERVE_COLOR_CHOICES)  # fmt: skip
    batch: int = option(4, "images of the same size stylised together", min=1, max=1024)
    device: str = option("auto", "where to compute", choices=DEVICE_CHOICES)
    precision: str = option("auto", "auto: fp16 on CUDA, fp32 elsewhere (fp16 needs a GPU)",
                            choices=PRECISION_CHOICES)  # fmt: skip
    max_memory: str | None = option(
        None, "memory the run may use, e.g. 4GB: larger pictures go through in tiles",
        metavar="SIZE", default_text="what the device has free",
    )  # fmt: skip
    keep: str | None = keep_option()


def check_transfer_config(config: TransferConfig, method: str, style_count: int | None) -> None:
    """The checks of the shared options that need more than one field."""
    from ..decoders import default_decoder
    from ..model_folder import find_model

    decoder = getattr(config, "decoder", None)
    if decoder is None and default_decoder(method) is None:
        raise InputError(
            f"method '{method}' needs a decoder (--decoder): none is shipped in this "
            f"installation; train one with `impasto train decoder --method {method}`"
        )
    if decoder is not None and not isinstance(decoder, DecoderModel):
        find_model(decoder)  # a missing decoder fails before any work
    if style_count is not None:
        if style_count < 1:
            raise InputError(f"method '{method}' needs at least one style image")
        style_weights(config.style_blend, style_count)
        if config.mask is not None and len(config.mask) != style_count:
            raise InputError(
                f"--mask: {len(config.mask)} mask(s) for {style_count} style image(s); give "
                "one mask per style image, in the same order"
            )
    if config.precision == "fp16" and resolve_device(config.device).type == "cpu":
        raise InputError("--precision fp16 needs a GPU; use fp32 or bf16 on the CPU")
    if config.max_memory is not None:
        parse_memory(config.max_memory)


class TransferRunner(Prepared):
    """A decoder method ready to run: the encoder and decoders placed, the styles' features
    computed (``prepare_styles``); ``transfer`` is the method's own algorithm."""

    def __init__(self, method: str, config: TransferConfig, model: DecoderModel,
                 styles: Sequence[torch.Tensor], notify: Notify | None) -> None:  # fmt: skip
        self.method, self.model, self.notify = method, model, notify
        shipped = model.path.resolve().parent == MODELS_DIR.resolve()
        # the config as it runs: the decoder named (the shipped default too), for provenance
        self.config = dataclasses.replace(config, decoder=model.name if shipped else
                                          str(model.path.resolve()))  # fmt: skip
        self.device_object = resolve_device(config.device)
        configure_for_speed(self.device_object)
        self.device = str(self.device_object)
        precision = config.precision
        if precision == "auto":
            precision = "fp16" if self.device_object.type == "cuda" else "fp32"
        self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
            precision
        ]
        encoder = load_backbone(model.backbone, notify=notify)
        check_decoder_backbone(model, encoder)
        self.encoder: Backbone = self._place(encoder.freeze())
        self.decoders = self._place(model.decoders.eval())
        self.backbone = model.backbone
        self.multiple = 2 ** max(config.upsamplings for config in model.decoders.configs)
        self.bytes_per_pixel = BYTES_PER_PIXEL.get(method, max(BYTES_PER_PIXEL.values()))
        self.max_batch = config.batch
        self.weights = style_weights(config.style_blend, len(styles))
        self.masks = None
        if config.mask is not None:
            self.masks = [load_mask(mask) for mask in config.mask]
            check_masks(self.masks, len(styles))
        with torch.inference_mode():
            self.prepare_styles(
                [resize_long_side(style, config.style_size).to(self.device_object, self.dtype)
                 for style in styles]
            )  # fmt: skip

    def _place(self, module: torch.nn.Module) -> torch.nn.Module:
        module = module.to(self.device_object, self.dtype)
        if self.device_object.type in ("cuda", "cpu"):  # both faster channels_last
            module = module.to(memory_format=torch.channels_last)
        return module

    def summary(self) -> str:
        return f"decoder {self.model.name} ({self.backbone}) on {self.device}"

    def encode(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        x = image.to(self.device_object, self.dtype).contiguous(memory_format=torch.channels_last)
        return self.encoder(x, layers)

    def decode(self, layer: str, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        features = features.to(self.dtype).contiguous(memory_format=torch.channels_last)
        return self.decoders(layer, features, size).float().clamp(0, 1)

    def through(self, image: torch.Tensor, masks: list[torch.Tensor] | None,
                levels: Sequence[str], step, progress: ProgressCallback | None,
                what: str) -> torch.Tensor:  # fmt: skip
        """``step(picture, masks, content)`` -> the decoded picture, run on (B, 3, H, W)
        ``image``: whole (``content`` None: the step takes the picture's own statistics), or,
        when the picture is larger than a tile or than --max-memory allows (impasto.tiling),
        tile by tile, each tile with its crop of ``masks`` and the whole picture's statistics
        at ``levels`` (``content``: {level: [Moments per region]}), gathered first in a pass
        over the tiles' cores. Returns (B, 3, H, W) float32."""
        room = tiling.tile_pixels(image, memory_budget(self.config.max_memory,
                                                       self.device_object),
                                  self.bytes_per_pixel, margin=TILE_MARGIN)  # fmt: skip
        if room is None:
            return step(image, masks, None)
        if image.shape[0] > 1:  # statistics are per picture
            return torch.cat([self.through(one[None], masks, levels, step, progress, what)
                              for one in image])  # fmt: skip
        core = tiling.core_for(room, TILE_MARGIN, self.multiple)
        content = self.gather(image, masks, levels, core)

        def piece(tile: torch.Tensor, window: tuple[int, int, int, int]) -> torch.Tensor:
            top, bottom, left, right = window
            crops = None if masks is None else [mask[..., top:bottom, left:right]
                                                for mask in masks]  # fmt: skip
            return step(tile, crops, content).float().cpu()

        return tiling.run_tiled(piece, image.cpu(), core, margin=TILE_MARGIN,
                                discard=TILE_DISCARD, multiple=self.multiple, positions=True,
                                progress=progress, what=what)  # fmt: skip

    def gather(self, image: torch.Tensor, masks: list[torch.Tensor] | None,
               levels: Sequence[str], core: int) -> dict[str, list[Moments]]:  # fmt: skip
        """The picture's feature statistics at ``levels``, one Moments per mask (one without
        masks), summed over the tiles' cores: each core is counted once."""
        regions = masks if masks is not None else [None]
        moments = {level: [Moments() for _ in regions] for level in levels}
        height, width = image.shape[-2:]
        for top, bottom, core_top, core_bottom in tiling.spans(height, core, TILE_MARGIN):
            for left, right, core_left, core_right in tiling.spans(width, core, TILE_MARGIN):
                features = self.encode(image[..., top:bottom, left:right], levels)
                for level in levels:
                    found = features[level]
                    stride = (bottom - top) // found.shape[-2]
                    rows = slice((core_top - top) // stride, (core_bottom - top) // stride)
                    columns = slice((core_left - left) // stride, (core_right - left) // stride)
                    kept = found[..., rows, columns]
                    for region, total in zip(regions, moments[level], strict=True):
                        weight = None
                        if region is not None:
                            crop = region[..., core_top:core_bottom, core_left:core_right]
                            weight = masks_at([crop], tuple(kept.shape[-2:]))
                        total.add(kept, weight)
        return moments

    def masks_for(self, size: tuple[int, int]) -> list[torch.Tensor] | None:
        """The masks resized to an image of ``size`` (height, width), on the device."""
        if self.masks is None:
            return None
        return [resize_to(mask, *size).to(self.device_object) for mask in self.masks]

    @abstractmethod
    def prepare_styles(self, styles: list[torch.Tensor]) -> None:
        """Compute what the transform needs of the style images (placed, resized)."""

    @abstractmethod
    def transfer(self, content: torch.Tensor, masks: list[torch.Tensor] | None,
                 progress: ProgressCallback | None) -> torch.Tensor:  # fmt: skip
        """(B, 3, H, W) photos on the device -> stylised (B, 3, H, W) float32 in [0, 1]."""

    def finish(self, image: torch.Tensor, content: torch.Tensor,
               progress: ProgressCallback | None) -> torch.Tensor:  # fmt: skip
        """What the method does to its decoded images (B, 3, H, W) on the CPU, given the
        photos: nothing, unless it says otherwise."""
        return image

    def run(self, content: torch.Tensor, progress: ProgressCallback | None = None) -> StyleResult:
        started = time.perf_counter()
        if content.ndim != 4 or content.shape[1] != 3:
            raise InputError(f"images must be (B, 3, H, W) tensors, got {tuple(content.shape)}")
        if self.config.size is not None:
            content = resize_long_side(content, self.config.size)
        if min(content.shape[-2:]) < MIN_SIDE:
            raise InputError(
                f"images must be at least {MIN_SIDE} pixels on each side, got "
                f"{content.shape[-1]}x{content.shape[-2]}"
            )
        size = tuple(content.shape[-2:])
        with torch.inference_mode():
            padded = pad_to_multiple(content, self.multiple)
            image = self.transfer(padded, self.masks_for(tuple(padded.shape[-2:])), progress)
        image = self.finish(image[..., : size[0], : size[1]].cpu(), content.cpu(), progress)
        image = color.preserve_colors(image, content, self.config.preserve_color)
        result = StyleResult(image.clamp(0, 1), method=self.method, backbone=self.backbone,
                             device=self.device)  # fmt: skip
        result.seconds = time.perf_counter() - started
        result.details = {"decoder": str(self.model.path)}
        return result


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """``image`` padded (replicating its edges, right and bottom) to sides that are multiples
    of ``multiple``: every layer's feature map then covers it exactly, whether the backbone
    rounds its sizes up or down, and the decoded image is cropped back."""
    height, width = image.shape[-2:]
    return F.pad(image, (0, (-width) % multiple, 0, (-height) % multiple), mode="replicate")


def resolve_decoder(config: Any, method: str) -> DecoderModel:
    """The config's decoder loaded (the shipped default when it names none)."""
    from ..decoders import default_decoder

    if isinstance(config.decoder, DecoderModel):
        return config.decoder
    name = config.decoder or default_decoder(method)
    if name is None:
        check_transfer_config(config, method, None)  # says how to get one
    return load_decoders(name, method)


class TransferMethod(Method):
    """What the table's ``adain`` and ``wct`` do alike: the checks, ``prepare`` through their
    ``runner_class``, and ONNX export of their ``graph_class`` (the whole method as a module of
    content, style and alpha)."""

    runner_class: ClassVar[type]
    graph_class: ClassVar[type]
    export_formats = ("onnx",)

    def check(self, config: Any, style_count: int | None) -> None:
        check_transfer_config(config, self.name, style_count)

    def decoder_skips(self, backbone) -> tuple[str, ...]:
        """Shallower layers that join the decoders on their way up (none: plain decoders)."""
        return ()

    def prepare(self, config: Any, styles: Sequence[torch.Tensor], *, backbone=None,
                notify=None) -> TransferRunner:  # fmt: skip
        return self.runner_class(self.name, config, resolve_decoder(config, self.name), styles,
                                 notify)  # fmt: skip

    def export(self, model, path, format: str, opset: int):
        from ..export import GraphInput, export_onnx, image_input

        decoder = load_decoders(model, self.name)
        graph = self.graph_class(load_backbone(decoder.backbone), decoder.decoders)
        inputs = (image_input("content", "content"), image_input("style", "style", seed=1),
                  GraphInput("alpha", "alpha", (1,)))  # fmt: skip
        return export_onnx(graph, path, opset=opset, inputs=inputs)
