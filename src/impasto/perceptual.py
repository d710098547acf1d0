"""The perceptual objective of the methods that optimise pixels (Gatys and its photorealistic
mode), at one scale: the targets computed once, then the loss of an image (impasto.losses'
perceptual_loss, plus the photorealism regulariser, the masked style loss and the temporal
loss where asked). ``ScaleObjectives`` gives the objective of the whole picture or of a tile
of it (impasto.tiled_refinement): the tiles share one set of style targets, and each tile's
style loss is the whole picture's (``TiledGrams``).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from . import losses, photoreal
from .tiled_refinement import Tile


def network_features(network, image, layers, autocast, channels_last) -> dict[str, torch.Tensor]:
    """``network``'s float32 features of ``image`` at ``layers``, under ``autocast()``."""
    if channels_last:
        # A copy in the layout cuDNN prefers; the optimised image itself stays contiguous
        # because torch.optim.LBFGS flattens gradients with .view(-1).
        image = image.contiguous(memory_format=torch.channels_last)
    with autocast():
        features = network(image, layers)
    return {k: v.float() for k, v in features.items()}


class Objective:
    """The perceptual loss (impasto.losses.perceptual_loss) at one scale, targets precomputed."""

    def __init__(self, backbone, network, content, styles, blend, config, content_layers,
                 style_layers, autocast, channels_last, regions=None,
                 targets=None) -> None:  # fmt: skip
        # ``network`` (possibly torch.compile'd) runs the optimised image; the targets use the
        # plain ``backbone`` so a compiled network is compiled once per scale, not three times.
        # ``targets``: another Objective's ``targets`` at this scale (the tiles share them).
        self.backbone, self.network = backbone, network
        self.autocast, self.channels_last = autocast, channels_last
        masked = regions is not None  # label masks: the style loss region by region instead
        self.weights = losses.LossWeights(config.content_weight, 0.0 if masked else
                                          config.style_weight, config.tv_weight)  # fmt: skip
        self.style_layers = dict(style_layers)
        self.extras = []  # (name, weight, term(image, features))
        if config.photorealistic:
            regulariser = photoreal.MattingRegulariser(content)
            self.extras.append(("photorealism", config.photorealism_weight,
                                lambda image, features: regulariser(image)))  # fmt: skip
        self.layers = sorted(set(content_layers) | set(self.style_layers))
        self.gram = None  # G(F_l) when not the image's own Gram matrices (a tile's: TiledGrams)
        self.prior: tuple[float, torch.Tensor, torch.Tensor] | None = None
        with torch.no_grad():
            content_features = self._features(content)
            self.content_targets = {k: content_features[k] for k in content_layers}
            self.targets = targets or self._style_targets(styles, blend, regions)
        self.style_targets, region_targets = self.targets
        if masked:
            content_masks, layers = regions[0], self.style_layers

            def masked_style(image, features):
                return photoreal.masked_style_loss(features, content_masks, region_targets, layers)

            self.extras.append(("masked style", config.style_weight, masked_style))

    def _style_targets(self, styles, blend, regions):
        """(blended Gram matrices, per-region Gram matrices or None) of the style images."""
        style_features = [self._features(image) for image in styles]
        blended = losses.blended_grams(style_features, blend, self.style_layers)
        if regions is None:
            return blended, None
        if regions[1] is None:  # --mask: style i's whole Gram within mask i
            return blended, {name: [losses.gram_matrix(f[name]) for f in style_features]
                             for name in self.style_layers}  # fmt: skip
        # label masks: the style image's region of each label
        return blended, photoreal.masked_grams(style_features[0], regions[1], self.style_layers)

    def _features(self, image: torch.Tensor, network=None) -> dict[str, torch.Tensor]:
        # ``is None``, not ``or``: a compiled module forwards __len__ and has no truth value.
        network = self.backbone if network is None else network
        return network_features(network, image, self.layers, self.autocast, self.channels_last)

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = self._features(image, self.network)
        extra = {name: (weight, term(image, features)) for name, weight, term in self.extras}
        if self.prior is not None:  # a video frame after the first (impasto.temporal)
            weight, target, mask = self.prior
            extra["temporal"] = (weight, losses.temporal_loss(image, target, mask))
        return losses.perceptual_loss(image, features, self.content_targets, self.style_targets,
                                      self.style_layers, self.weights, extra,
                                      gram=self.gram)  # fmt: skip


def core_features(features: torch.Tensor, tile: Tile) -> torch.Tensor:
    """The positions of a window's (1, C, h, w) features that lie in the tile's core (rounded to
    the layer's grid)."""
    height, width = features.shape[-2:]
    rows, columns = tile.bottom - tile.top, tile.right - tile.left
    top = round((tile.core_top - tile.top) * height / rows)
    bottom = round((tile.core_bottom - tile.top) * height / rows)
    left = round((tile.core_left - tile.left) * width / columns)
    right = round((tile.core_right - tile.left) * width / columns)
    return features[..., top:bottom, left:right]


def weighted_sum(features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum_p w(p) F(p) F(p)^T over a window's (1, C, h, w) ``features``, ``weight`` (H, W)
    averaged down to the layer's grid."""
    at_layer = F.interpolate(weight[None, None].to(features), size=features.shape[-2:],
                             mode="area").flatten(2)  # fmt: skip
    flat = features.flatten(2)
    return (flat * at_layer) @ flat.transpose(1, 2)


class TiledGrams:
    """The whole picture's Gram matrices while it is optimised tile by tile: per layer, the sum
    of F F^T over every position (first measured core by core) and their count. A tile's window
    is written into the picture faded (impasto.tiled_refinement.fade, weights w), so while it
    is optimised the whole picture's sum is taken as: the sum as it stands, less the window's
    own w-weighted sum when it started, plus its w-weighted sum now. The style loss then credits
    a pixel's change as much as that change will be kept: block-coordinate descent on the whole
    picture's style loss."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.rest: dict[str, torch.Tensor] = {}  # the sum less the started window's share

    def measure_core(self, features: dict[str, torch.Tensor], tile: Tile) -> None:
        """Add a tile's core, from its window's ``features``, to the whole picture's sums."""
        for name, layer in features.items():
            core = core_features(layer.detach().float(), tile).flatten(2)
            self.sums[name] = self.sums.get(name, 0) + core @ core.transpose(1, 2)
            self.counts[name] = self.counts.get(name, 0) + core.shape[-1]

    def start(self, features: dict[str, torch.Tensor], weight: torch.Tensor) -> None:
        """A window starts, its ``features`` as they are and its fade ``weight``."""
        self.rest = {name: self.sums[name] - weighted_sum(layer.detach().float(), weight)
                     for name, layer in features.items()}  # fmt: skip

    def finish(self, features: dict[str, torch.Tensor], weight: torch.Tensor) -> None:
        """The window is written: its ``features`` now make up its share of the sums."""
        for name, layer in features.items():
            self.sums[name] = self.rest[name] + weighted_sum(layer.detach().float(), weight)

    def gram(self, weight: torch.Tensor):
        """``gram(layer, features)`` for perceptual_loss: the whole picture's Gram matrix with
        the started window's share computed from ``features``."""

        def whole(name: str, features: torch.Tensor) -> torch.Tensor:
            return (self.rest[name] + weighted_sum(features, weight)) / max(1, self.counts[name])

        return whole


class ScaleObjectives:
    """The objectives of one scale: of the whole picture, or of one of its ``tiles`` (its window
    written with the weights ``fade``), sharing one set of style targets; a tile's style loss is
    the whole picture's (TiledGrams), its weight divided by the window's share of the picture so
    that the terms keep their balance."""

    def __init__(self, build, content, regions, masks, prior, tiles=None) -> None:
        # build(content, regions=, targets=) -> Objective; masks: the content's region masks at
        # this scale, to crop (None: the whole picture's); prior: (weight, target, reliable)
        self.build, self.content, self.regions = build, content, regions
        self.masks, self.prior, self.targets = masks, prior, None
        self.tiles, self.grams = tiles, TiledGrams()

    def __call__(self, index: int | None = None, fade: torch.Tensor | None = None) -> Objective:
        height, width = self.content.shape[-2:]
        tile = None if index is None else self.tiles[index]
        top, bottom, left, right = (0, height, 0, width) if tile is None else tile.window

        def crop(picture):
            return picture[..., top:bottom, left:right]

        regions = self.regions
        if self.masks is not None:
            regions = ([crop(mask) for mask in self.masks], regions[1])
        objective = self.build(crop(self.content), regions=regions, targets=self.targets)
        self.targets = objective.targets
        if self.prior is not None:
            weight, target, reliable = self.prior
            objective.prior = (weight, crop(target), crop(reliable))
        if tile is not None:
            objective.gram = self.grams.gram(fade)
            share = float(fade.sum()) / (height * width)
            weights = objective.weights
            objective.weights = dataclasses.replace(weights, style=weights.style / share)
        return objective
