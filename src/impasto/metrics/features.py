"""Feature metrics: distances between what a network sees in two images.

``content_distance``, ``style_ratio`` and ``meanstd_distance`` take a Backbone (or a registry
name) and compare its features; ``clip_content`` and ``clip_style`` compare CLIP image
embeddings. ``FeatureCache`` lets ``evaluate`` run a backbone once per image.

Feature metrics should be scored with a network other than the one that made the image (a
stylisation optimised against a network's features flatters that network).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import InputError
from ..losses import gram_matrix
from .base import MetricUndefined, check_image, match_long_side, same_size

EPS = 1e-12


def load_scoring_backbone(name: str):
    """The backbone registered as ``name`` (frozen, eval mode), loaded as the metrics load one:
    its weights are never downloaded. Raises WeightsError when they are not on this machine
    (the message names the fix), InputError for an unknown name."""
    from ..backbones import load_backbone

    # Never download inside a metric: a missing VGG-19 is a WeightsError naming the fix.
    return load_backbone(name, allow_download=False)


class FeatureCache:
    """Wraps a backbone and remembers each image's features, so ``evaluate`` runs the network
    once per image. Called like a backbone: ``cache(image, layers) -> {layer: features}``.

    Keyed by tensor identity; the cache holds a reference to each image so ids stay unique.
    """

    def __init__(self, backbone) -> None:
        self.backbone = backbone
        self.name = getattr(backbone, "name", type(backbone).__name__)
        self.defaults = backbone.defaults
        self._entries: dict[int, tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}

    def __call__(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        entry = self._entries.get(id(image))
        if entry is None or entry[0] is not image or not set(layers) <= entry[1].keys():
            wanted = set(layers) | set(self.defaults.content_layers)
            wanted |= set(self.defaults.style_layers)
            entry = (image, _run_backbone(self.backbone, image, sorted(wanted)))
            self._entries[id(image)] = entry
        return {name: entry[1][name] for name in layers}

    def forget(self, keep: Sequence[torch.Tensor] = ()) -> None:
        """Drop the features of every image but those in ``keep`` (by identity): scoring a
        clip keeps the style's features and forgets each frame's."""
        kept = {id(image) for image in keep}
        self._entries = {key: entry for key, entry in self._entries.items() if key in kept}


def _run_backbone(backbone, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    if isinstance(backbone, FeatureCache):
        return backbone(image, layers)
    parameter = next(iter(backbone.parameters()), None) if hasattr(backbone, "parameters") else None
    if parameter is not None:
        image = image.to(device=parameter.device, dtype=parameter.dtype)
    with torch.no_grad():
        features = backbone(image, layers)
    return {name: value.double() for name, value in features.items()}


def _backbone(backbone):
    """A Backbone (or FeatureCache) as given, or one loaded by name without downloading."""
    if isinstance(backbone, str):
        return load_scoring_backbone(backbone)
    if not hasattr(backbone, "defaults"):
        raise InputError(f"backbone must be a name or a Backbone, got {type(backbone).__name__}")
    return backbone


# --------------------------------------------------------------------------- backbone features


def content_distance(image: torch.Tensor, content: torch.Tensor, backbone) -> float:
    """Relative feature distance of ``image`` to ``content`` on the backbone's content layers.

    Mean over ``backbone.defaults.content_layers`` of ||F(x) - F(c)||^2 / ||F(c)||^2 (the
    normalised content loss of Gatys et al. 2016). Same size images, (1, 3, H, W).
    ``backbone``: a Backbone or a registry name (weights must be on this machine).

    Range [0, inf); 0 for identical images; lower = closer to the content.
    """
    image, content = check_image(image, "image"), check_image(content, "content")
    same_size(image, content, "content_distance")
    backbone = _backbone(backbone)
    layers = list(backbone.defaults.content_layers)
    fx, fc = _run_backbone(backbone, image, layers), _run_backbone(backbone, content, layers)
    values = [
        float((fx[name] - fc[name]).pow(2).sum() / (fc[name].pow(2).sum() + EPS)) for name in layers
    ]
    return sum(values) / len(values)


def _gram_distance(image: torch.Tensor, style: torch.Tensor, backbone) -> float:
    """Mean over style layers of ||G(x) - G(s)||^2 / ||G(s)||^2."""
    layers = list(backbone.defaults.style_layers)
    fx, fs = _run_backbone(backbone, image, layers), _run_backbone(backbone, style, layers)
    values = []
    for name in layers:
        gx, gs = gram_matrix(fx[name]), gram_matrix(fs[name])
        values.append(float((gx - gs).pow(2).sum() / (gs.pow(2).sum() + EPS)))
    return sum(values) / len(values)


def style_ratio(image: torch.Tensor, style: torch.Tensor, content: torch.Tensor, backbone) -> float:
    """How far ``image`` is from the style, relative to how far the content was.

    Gram distance d(x, s) = mean over ``backbone.defaults.style_layers`` (unweighted) of the
    relative Gram error ||G(x) - G(s)||^2 / ||G(s)||^2 (Gatys et al. 2016), with ``style``
    resized so its long side equals the image's. style_ratio = d(image, s) / d(content, s);
    ``content`` must have the image's size. Raises MetricUndefined when d(content, s) is 0.

    Range [0, inf); 1.0 for the content itself; lower = closer to the style (below 1: the
    style statistics moved toward the style).
    """
    image, style = check_image(image, "image"), check_image(style, "style")
    content = check_image(content, "content")
    same_size(image, content, "style_ratio")
    backbone = _backbone(backbone)
    style = match_long_side(style, image)
    baseline = _gram_distance(content, style, backbone)
    if baseline <= EPS:
        raise MetricUndefined("style_ratio is undefined: the content already has the style's Grams")
    return _gram_distance(image, style, backbone) / baseline


def meanstd_distance(image: torch.Tensor, style: torch.Tensor, backbone) -> float:
    """Distance of the channel mean and standard deviation of features (AdaIN statistics).

    For each layer of ``backbone.defaults.style_layers``: mu and sigma are per-channel mean and
    standard deviation over positions (Huang & Belongie 2017), and the layer's distance is
    (||mu_x - mu_s|| + ||sigma_x - sigma_s||) / (||mu_s|| + ||sigma_s||); the result is the mean
    over layers. ``style`` is resized so its long side equals the image's.

    Range [0, inf); 0 for identical images; lower = closer to the style.
    """
    image, style = check_image(image, "image"), check_image(style, "style")
    backbone = _backbone(backbone)
    style = match_long_side(style, image)
    layers = list(backbone.defaults.style_layers)
    fx, fs = _run_backbone(backbone, image, layers), _run_backbone(backbone, style, layers)
    values = []
    for name in layers:
        x, s = fx[name].flatten(2), fs[name].flatten(2)
        mu_x, mu_s = x.mean(dim=2), s.mean(dim=2)
        sd_x, sd_s = x.std(dim=2, correction=0), s.std(dim=2, correction=0)
        scale = mu_s.norm() + sd_s.norm() + EPS
        values.append(float(((mu_x - mu_s).norm() + (sd_x - sd_s).norm()) / scale))
    return sum(values) / len(values)


# --------------------------------------------------------------------------- CLIP embeddings


def _clip_similarity(image: torch.Tensor, other: torch.Tensor, clip) -> float:
    parameter = next(iter(clip.parameters()))
    with torch.no_grad():
        pair = [clip(x.to(parameter.device, parameter.dtype)) for x in (image, other)]
    return float((pair[0] * pair[1]).sum())


def clip_style(image: torch.Tensor, style: torch.Tensor, clip) -> float:
    """Cosine similarity of the CLIP image embeddings of ``image`` and ``style``.

    Both images are resized (short side to the encoder's resolution, 224 for ViT-B/32) and
    centre-cropped as CLIP's preprocessing does; ``clip`` is a ``CLIPImageEncoder``.
    Range [-1, 1]; 1.0 for identical images; higher = closer to the style (CLIP sees what a
    picture depicts as well as how it is painted, so this mixes content and style).
    """
    image, style = check_image(image, "image"), check_image(style, "style")
    return _clip_similarity(image, style, clip)


def clip_content(image: torch.Tensor, content: torch.Tensor, clip) -> float:
    """Cosine similarity of the CLIP image embeddings of ``image`` and ``content``.

    Same preprocessing as ``clip_style``. Range [-1, 1]; 1.0 for identical images; higher =
    more of the content's meaning kept.
    """
    image, content = check_image(image, "image"), check_image(content, "content")
    return _clip_similarity(image, content, clip)
