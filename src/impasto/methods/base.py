"""What every method implements: the protocol behind the method table (methods/registry.py).

A method file defines one ``Method`` subclass and exposes an instance as ``METHOD``:

- ``config_class``: a dataclass of ``impasto.config.option`` fields. The CLI flags of
  ``impasto stylize --method NAME``, the keywords of ``impasto.stylize(method=NAME, ...)`` and
  the keys of ``impasto compare`` settings are all built from it; ``check`` adds the checks
  that need more than one field or the number of style images.
- ``prepare(config, styles, ...)``: the slow part done once (weights loaded and placed on the
  device, style statistics computed), returning a ``Prepared`` that ``run``s on many images.
- optionally training (``train_config_class``, ``train``) and export (``export``).

Everything around a method (resolving ``auto`` backbones, fetching weights with progress,
loading and saving files, batching folders, alpha, timing) is done once, for every method, by
impasto.pipeline.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..errors import InputError
from ..progress import ProgressCallback
from ..regions import keep_blend, load_mask

Notify = Callable[[str], None]


@dataclass
class StyleResult:
    """What every method returns.

    ``image``: (B, 3, H, W) float32 in [0, 1] on the CPU (B = 1 from ``impasto.stylize``);
    ``alpha``: the content's alpha resized to the output, or None; ``backbone``: the feature
    network used (or the loss network a model was trained with); ``history``: the losses of
    every step, for methods that optimise; ``details``: method-specific facts (scale sizes,
    model path, ...), JSON-serialisable. ``config``: the method's config object that made it
    (its backbone resolved); ``inputs``: ``{"content": ..., "styles": [...]}``, each input's
    file and sha256 (impasto.provenance.describe_file), for the provenance record. The
    pipeline fills both; a method's ``run`` leaves them empty.
    """

    image: torch.Tensor
    alpha: torch.Tensor | None = None
    method: str = ""
    seconds: float = 0.0
    backbone: str = ""
    device: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    config: Any = None
    inputs: dict[str, Any] = field(default_factory=dict)

    def _single(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.image.ndim != 4 or self.image.shape[0] != 1:
            raise InputError(
                f"this result holds {self.image.shape[0]} images; save each with "
                "impasto.save_image(result.image[i : i + 1], path)"
            )
        return self.image, self.alpha

    def to_pil(self):
        """The image as an 8-bit PIL image: RGB, or RGBA when the content had alpha."""
        from ..images import to_pil

        return to_pil(*self._single())

    def provenance(self) -> dict[str, Any]:
        """The provenance record of this image (impasto.provenance): method, every setting,
        seed, backbone or model (with its sha256), versions, inputs' sha256, output size."""
        from ..provenance import Recipe

        image, _ = self._single()
        recipe = Recipe(
            self.method,
            self.config,
            backbone=self.backbone,
            device=self.device,
            styles=list(self.inputs.get("styles", [])),
        )
        return recipe.record(self.inputs.get("content"), image.shape[-1], image.shape[-2])

    def save(
        self, path: str | os.PathLike, *, quality: int = 95, save_settings: bool = False
    ) -> Path:
        """Write the image to ``path`` (format from the extension, written atomically, alpha
        kept where the format has it) with its provenance record embedded; ``save_settings``:
        also the sidecar ``path + ".json"``. Returns the path."""
        from ..images import save_image
        from ..provenance import write_sidecar

        image, alpha = self._single()
        record = self.provenance()
        written = save_image(image, path, alpha=alpha, quality=quality, metadata=record)
        if save_settings:
            write_sidecar(written, record)
        return written


def style_weights(style_blend: Sequence[float] | None, count: int) -> list[float]:
    """The weights of ``count`` style images (``--style-blend``), normalised to sum to 1; equal
    when ``style_blend`` is None. For every method that blends several styles."""
    if style_blend is None:
        return [1.0 / count] * count
    if len(style_blend) != count:
        raise InputError(
            f"--style-blend has {len(style_blend)} weight(s) for {count} style image(s); give "
            "one weight per style image"
        )
    total = sum(style_blend)
    if any(w < 0 for w in style_blend) or not 0 < total < math.inf:
        raise InputError("--style-blend weights must be >= 0 with a positive, finite sum")
    return [w / total for w in style_blend]


class Prepared(ABC):
    """A method ready to run on many images: weights loaded, style statistics computed.

    ``max_batch``: how many same-size images ``run`` takes at once (1: one at a time).
    ``takes_prior``: ``run`` accepts ``prior`` (impasto.temporal.TemporalPrior), the warped
    previous frame of a video, and keeps the clip consistent itself (methods that optimise);
    the frame runner post-processes the others' outputs instead.
    """

    method: str = ""
    backbone: str = ""
    device: str = "cpu"
    max_batch: int = 1
    takes_prior: bool = False

    def summary(self) -> str:
        """What runs where, for one line of a front end: "vgg19 on cuda"."""
        return f"{self.backbone} on {self.device}" if self.backbone else f"on {self.device}"

    @abstractmethod
    def run(self, content: torch.Tensor, progress: ProgressCallback | None = None) -> StyleResult:
        """Stylise ``content`` (B, 3, H, W) in [0, 1], B <= ``max_batch``; raise Cancelled when
        ``progress`` returns False."""

    def keep_mask(self) -> torch.Tensor | None:
        """``--keep``'s mask (the config's ``keep``), loaded once; None without one."""
        keep = getattr(getattr(self, "config", None), "keep", None)
        if keep is None:
            return None
        if getattr(self, "_keep_mask", None) is None:
            self._keep_mask = load_mask(keep)
        return self._keep_mask

    def checked_run(
        self, content: torch.Tensor, progress: ProgressCallback | None = None, prior: Any = None
    ) -> StyleResult:
        """``run``, and an InputError instead of a picture holding NaN or infinity (a model
        whose weights overflow, settings that blow the optimisation up): never written as a
        black or unchanged image. ``prior``: passed on to methods that take one."""
        keep = self.keep_mask()  # a bad mask fails before any work
        if prior is not None and self.takes_prior:
            result = self.run(content, progress, prior=prior)
        else:
            result = self.run(content, progress)
        if keep is not None:
            result.image = keep_blend(result.image, content.cpu(), keep)
        if not bool(torch.isfinite(result.image).all()):
            raise InputError(
                f"{self.method} ({self.summary()}) produced pixels that are not finite numbers "
                "(NaN or infinity); nothing was written"
            )
        return result


class Method(ABC):
    """One style-transfer method (see the module docstring)."""

    name: ClassVar[str]
    config_class: ClassVar[type]
    train_config_class: ClassVar[type | None] = None
    training_inputs: ClassVar[tuple[str, ...]] = ()  # e.g. ("style", "data") for `train KIND`
    export_formats: ClassVar[tuple[str, ...]] = ()
    compare_options: ClassVar[dict[str, Any]] = {}  # a method's own row in `impasto compare`

    def check(self, config: Any, style_count: int | None) -> None:
        """Checks beyond each field's own (``impasto.config.validate_config`` runs first);
        ``style_count``: how many style images come with it (None: not known yet)."""
        return None

    def missing_weights(self, config: Any) -> str | None:
        """What ``config`` needs that is not on this machine and is not fetched on its own
        (the line that says how to fetch it), or None: a look at the disk, nothing loaded."""
        return None

    @abstractmethod
    def prepare(
        self,
        config: Any,
        styles: Sequence[torch.Tensor],
        *,
        backbone: Any = None,
        notify: Notify | None = None,
    ) -> Prepared:
        """Load and place what ``config`` asks for; ``styles``: (1, 3, H, W) images in [0, 1];
        ``backbone``: the loaded feature network when the config has a ``backbone`` field."""

    def train(
        self,
        config: Any,
        *,
        style: torch.Tensor | None,
        data: Any,
        folder: Path,
        resume: bool,
        backbone: Any,
        info: dict[str, Any],
        progress: ProgressCallback | None,
        notify: Notify | None,
    ) -> Any:
        """Train a model into ``folder`` (methods with a ``train_config_class``)."""
        raise InputError(f"method '{self.name}' does not train")

    def export(self, model: str | os.PathLike, path: Path, format: str, opset: int) -> Path:
        """Write ``model`` in ``format`` (one of ``export_formats``) to ``path``."""
        raise InputError(f"method '{self.name}' has nothing to export")
