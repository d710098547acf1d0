"""Decoders of the arbitrary-style methods (AdaIN, WCT) as model folders: build, save, find,
load, and place on a device.

A decoder folder is an ordinary impasto model folder (impasto.model_folder) whose config's
network is ``{"backbone": NAME, "decoders": [DecoderConfig, ...]}``: one decoder per backbone
layer it inverts (one for AdaIN, one per level for WCT), the weights keyed
``<layer>.layers.N.weight``. The backbone named there is the encoder the decoders were trained
on; a method always encodes with that one. Shipped decoders are named ``METHOD-BACKBONE``
(``adain-efficientnet-lite0``) and found without a download.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .backbones import Backbone
from .errors import InputError
from .model_folder import find_model, load_model_folder, save_model_folder, shipped_models
from .nn.decoder import Decoder, DecoderConfig
from .nn.fit import weights_misfit
from .nn.skip_decoder import SkipDecoder

DECODER_METHODS: tuple[str, ...] = ("adain", "wct", "photo")
PROBE_SIDE = 256  # the input side used to measure a layer's stride


class DecoderSet(nn.Module):
    """Decoders by the layer they invert (coarse to fine: deepest layer first)."""

    def __init__(self, configs: list[DecoderConfig]) -> None:
        super().__init__()
        self.configs = list(configs)
        self.decoders = nn.ModuleDict(
            {config.layer: (SkipDecoder if config.skips else Decoder)(config) for config in configs}
        )

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(config.layer for config in self.configs)

    def forward(self, layer: str, features: torch.Tensor, size: tuple[int, int],
                skips: dict[str, torch.Tensor] | None = None) -> torch.Tensor:  # fmt: skip
        if skips is None:
            return self.decoders[layer](features, size)
        return self.decoders[layer](features, size, skips)


def layer_geometry(backbone: Backbone, layers: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """{layer: (channels, log2 stride)} of ``backbone``'s ``layers``, measured on a probe image;
    ValueError for a layer whose stride is not a power of two."""
    probe = torch.zeros(1, 3, PROBE_SIDE, PROBE_SIDE, device=next(backbone.buffers()).device)
    with torch.no_grad():
        features = backbone(probe, layers)
    geometry = {}
    for layer in layers:
        channels, side = features[layer].shape[1], features[layer].shape[-1]
        stride = PROBE_SIDE / side
        if stride != 2 ** round(math.log2(stride)):
            raise ValueError(f"layer {layer} of {backbone.name} has stride {stride}")
        geometry[layer] = (channels, round(math.log2(stride)))
    return geometry


def build_decoders(
    backbone: Backbone,
    layers: tuple[str, ...],
    width: int,
    padding: str = "reflect",
    skips: tuple[str, ...] = (),
) -> DecoderSet:
    """Decoders for ``layers`` of ``backbone`` (deepest first); the deepest starts at ``width``
    channels and each shallower one at the width the deepest has at its resolution, so every
    decoder spends the same channels on the same scale. ``skips``: shallower layers that join
    every decoder on its way up (impasto.nn.skip_decoder)."""
    if skips:
        geometry = layer_geometry(backbone, (*layers, *skips))
        joins = tuple([skip, *geometry[skip]] for skip in skips)
        return DecoderSet([DecoderConfig(layer, *geometry[layer], width, 16, padding, joins)
                           for layer in layers])  # fmt: skip
    geometry = layer_geometry(backbone, layers)
    deepest = max(steps for _, steps in geometry.values())
    configs = [
        DecoderConfig(layer, channels, steps, max(16, width >> (deepest - steps)), 16, padding)
        for layer, (channels, steps) in geometry.items()
    ]
    return DecoderSet(sorted(configs, key=lambda config: -config.upsamplings))


@dataclass
class DecoderModel:
    """Loaded decoders (eval mode, CPU float32), the backbone they decode and the metadata."""

    decoders: DecoderSet
    backbone: str
    metadata: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def shipped_name(method: str, backbone: str) -> str:
    return f"{method}-{backbone}"


def shipped_decoders(method: str) -> list[str]:
    """Names of the decoders for ``method`` shipped inside the package."""
    return shipped_models(method)


def default_decoder(method: str) -> str | None:
    """The decoder ``method`` uses when none is given: the shipped one for the offline default
    backbone, else the first shipped one (None: none shipped)."""
    shipped = shipped_decoders(method)
    preferred = shipped_name(method, "efficientnet-lite0")
    if preferred in shipped:
        return preferred
    return shipped[0] if shipped else None


def save_decoders(folder: str | os.PathLike, method: str, backbone: str, decoders: DecoderSet,
                  metadata: dict[str, Any]) -> Path:  # fmt: skip
    """Write ``decoders`` as the model folder ``folder`` (see the module docstring)."""
    network = {"backbone": backbone, "decoders": [asdict(config) for config in decoders.configs]}
    state = {key.removeprefix("decoders."): value for key, value in decoders.state_dict().items()}
    return save_model_folder(folder, method, network, state, metadata)


def load_decoders(model: str | os.PathLike, method: str) -> DecoderModel:
    """Load a decoder folder of ``method`` (a path or a shipped name); InputError when it is
    missing, of another method, or its weights do not fit its config."""
    path = find_model(model)
    folder = load_model_folder(path, method=method)
    network = folder.network
    backbone = network.get("backbone")
    listed = network.get("decoders")
    if not isinstance(backbone, str) or not isinstance(listed, list) or not listed:
        raise InputError(f"{path}: config.json must name a backbone and list its decoders")
    known = {field.name for field in fields(DecoderConfig)}
    configs = []
    for item in listed:
        if not isinstance(item, dict) or set(item) - known:
            raise InputError(f"{path}: a decoder's config has unknown or missing fields")
        try:
            config = DecoderConfig(**item)
            config.check()  # before anything is built: an untrusted config must not size it
        except (TypeError, ValueError) as error:
            raise InputError(f"{path}: {error}") from error
        configs.append(config)
    if len({config.layer for config in configs}) != len(configs):
        raise InputError(f"{path}: two decoders for the same layer")
    state = {f"decoders.{key}": value for key, value in folder.state_dict.items()}
    misfit = weights_misfit(lambda: DecoderSet(configs), state)
    if misfit:
        raise InputError(f"{path}: the weights do not fit the decoders of its config: {misfit}")
    decoders = DecoderSet(configs)
    decoders.load_state_dict(state, strict=True)
    return DecoderModel(decoders.eval(), backbone, folder.metadata, path)


def check_decoder_backbone(model: DecoderModel, backbone: Backbone) -> None:
    """InputError unless ``backbone`` has every layer the decoders invert, with their shapes."""
    joined = tuple(skip[0] for config in model.decoders.configs for skip in config.skips)
    try:
        backbone.check_layers((*model.decoders.layers, *joined))
        geometry = layer_geometry(backbone, (*model.decoders.layers, *joined))
    except ValueError as error:
        raise InputError(f"decoder {model.name}: {error}") from error
    for config in model.decoders.configs:
        expected = [(config.layer, config.in_channels, config.upsamplings), *config.skips]
        if any(geometry[layer] != (channels, steps) for layer, channels, steps in expected):
            raise InputError(
                f"decoder {model.name} was trained on {model.backbone}, whose layer "
                f"{config.layer} differs from {backbone.name}'s"
            )
