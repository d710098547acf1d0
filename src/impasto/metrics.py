"""Quality metrics for a stylised image: structure, content, style and colour.

Images are float32 RGB in [0, 1], shape (1, 3, H, W). Each metric says its definition, range
and direction in its docstring; ``METRICS`` is the table ``evaluate`` (and ``impasto evaluate``)
reads: name -> function, kind, direction, one-line meaning and the inputs the function takes.
A new kind of metric (e.g. a temporal one for video, taking frames) is one more row whose
``inputs`` name what it needs; ``evaluate`` passes each function only those inputs.

Feature metrics should be scored with a network other than the one that made the image (a
stylisation optimised against a network's features flatters that network); ``evaluate`` with
``backbone="auto"`` picks one that differs from ``made_with`` when it can.

CLIP similarities use OpenAI's CLIP ViT-B/32 image encoder when its weights are on this machine
(``impasto download clip-vit-b32``, or ``IMPASTO_CLIP_WEIGHTS``); without them they are reported
as unavailable with the way to get them, never as a number. ArtFID is not implemented (see
``UNAVAILABLE``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .color import rgb_to_yiq
from .errors import InputError, WeightsError
from .losses import gram_matrix

EPS = 1e-12

# --------------------------------------------------------------------------- helpers

ImageLike = torch.Tensor | str | os.PathLike


class MetricUndefined(InputError):
    """A metric has no value for these inputs (e.g. a ratio whose denominator is zero)."""


def _check_image(image: Any, what: str) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise InputError(f"{what} must be a torch.Tensor or a path, got {type(image).__name__}")
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise InputError(f"{what} must have shape (1, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise InputError(f"{what} must be a float tensor in [0, 1], got {image.dtype}")
    return image


def _size(image: torch.Tensor) -> str:
    return f"{image.shape[-1]}x{image.shape[-2]}"


def _same_size(image: torch.Tensor, other: torch.Tensor, what: str) -> None:
    if image.shape[-2:] != other.shape[-2:]:
        raise InputError(
            f"{what}: images must have the same size, got {_size(image)} and {_size(other)}"
        )


def _match_long_side(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``image`` resized so its long side equals ``reference``'s (itself when it already does)."""
    from .images import resize_long_side

    long_side = max(reference.shape[-2:])
    if max(image.shape[-2:]) == long_side:
        return image
    return resize_long_side(image, int(long_side))


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
        return _load_backbone(backbone)
    if not hasattr(backbone, "defaults"):
        raise InputError(f"backbone must be a name or a Backbone, got {type(backbone).__name__}")
    return backbone


def _load_backbone(name: str):
    from .backbones import load_backbone

    # Never download inside a metric: a missing VGG-19 is a WeightsError naming the fix.
    return load_backbone(name, allow_download=False)


# --------------------------------------------------------------------------- pixel metrics


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, size, size)


def ssim(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Structural similarity of the luminance (YIQ Y) of ``image`` and ``reference``.

    Wang et al. 2004: SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) /
    ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)), local statistics from an 11x11
    Gaussian window (sigma 1.5), C1 = 0.01^2, C2 = 0.03^2 (data range 1), valid convolution
    (no padding), averaged over the map. Both images (1, 3, H, W), same size, at least 11x11.

    Range [-1, 1]; 1.0 for identical images; higher is better (more of the structure kept).
    """
    image, reference = _check_image(image, "image"), _check_image(reference, "reference")
    _same_size(image, reference, "ssim")
    if min(image.shape[-2:]) < 11:
        raise InputError(f"ssim needs images of at least 11x11 pixels, got {_size(image)}")
    x = rgb_to_yiq(image.double())[:, :1]
    y = rgb_to_yiq(reference.to(x).double())[:, :1]
    window = _gaussian_window().to(x)
    c1, c2 = 0.01**2, 0.03**2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return float((numerator / denominator).mean())


def _fibonacci_directions(count: int = 64) -> torch.Tensor:
    """``count`` unit vectors spread evenly over the sphere (Fibonacci lattice), (count, 3).

    The polar axis is Y (luminance): the polar coordinates are z_k = 1 - (2k + 1) / count, the
    midpoints of ``count`` equal slices of [-1, 1]; the azimuth turns by the golden angle.
    Deterministic and more even than random directions.
    """
    k = torch.arange(count, dtype=torch.float64)
    z = 1 - (2 * k + 1) / count
    radius = torch.sqrt(1 - z**2)
    angle = k * math.pi * (3 - math.sqrt(5))
    return torch.stack([z, radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)


COLOR_DIRECTIONS: torch.Tensor = _fibonacci_directions(64)
"""The 64 unit directions in YIQ space that ``color_distance`` projects onto, (64, 3)."""

COLOR_QUANTILES = 256


def _quantiles(values: torch.Tensor, count: int) -> torch.Tensor:
    """Quantiles of each column of ``values`` (N, D) at levels (i + 0.5) / count -> (count, D).

    Linear interpolation between order statistics (like numpy's default); no size limit.
    """
    ordered, _ = torch.sort(values, dim=0)
    n = ordered.shape[0]
    levels = (torch.arange(count, dtype=torch.float64) + 0.5) / count
    position = levels * (n - 1)
    low = position.floor().long()
    high = position.ceil().long()
    frac = (position - low).to(ordered)[:, None]
    return ordered[low] * (1 - frac) + ordered[high] * frac


def color_distance(image: torch.Tensor, style: torch.Tensor) -> float:
    """Sliced Wasserstein-1 distance between the pixel colours of ``image`` and ``style`` in YIQ.

    Every pixel is a point (Y, I, Q); the two colour clouds are projected onto the 64 fixed
    unit directions of ``COLOR_DIRECTIONS``; along each direction the 1-D Wasserstein-1
    distance is the mean absolute difference of the two distributions' quantiles at 256 levels
    ((i + 0.5) / 256). The result is the mean over directions, times 2: for directions spread
    evenly over the sphere the mean of |d . u| is |u| / 2, so the factor makes two single
    colours score (about) their Euclidean distance in YIQ. Sizes may differ; no resizing.

    Range [0, about 1.8]; 0 for identical colour distributions; lower = closer to the style's
    colours.
    """
    image, style = _check_image(image, "image"), _check_image(style, "style")
    directions = COLOR_DIRECTIONS
    distances = []
    for picture in (image, style):
        pixels = rgb_to_yiq(picture.double()).reshape(3, -1).T.cpu()  # (N, 3)
        distances.append(_quantiles(pixels @ directions.T, COLOR_QUANTILES))
    per_direction = (distances[0] - distances[1]).abs().mean(dim=0)
    return float(2 * per_direction.mean())


# --------------------------------------------------------------------------- feature metrics


def content_distance(image: torch.Tensor, content: torch.Tensor, backbone) -> float:
    """Relative feature distance of ``image`` to ``content`` on the backbone's content layers.

    Mean over ``backbone.defaults.content_layers`` of ||F(x) - F(c)||^2 / ||F(c)||^2 (the
    normalised content loss of Gatys et al. 2016). Same size images, (1, 3, H, W).
    ``backbone``: a Backbone or a registry name (weights must be on this machine).

    Range [0, inf); 0 for identical images; lower = closer to the content.
    """
    image, content = _check_image(image, "image"), _check_image(content, "content")
    _same_size(image, content, "content_distance")
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
    image, style = _check_image(image, "image"), _check_image(style, "style")
    content = _check_image(content, "content")
    _same_size(image, content, "style_ratio")
    backbone = _backbone(backbone)
    style = _match_long_side(style, image)
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
    image, style = _check_image(image, "image"), _check_image(style, "style")
    backbone = _backbone(backbone)
    style = _match_long_side(style, image)
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


# --------------------------------------------------------------------------- CLIP metrics


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
    image, style = _check_image(image, "image"), _check_image(style, "style")
    return _clip_similarity(image, style, clip)


def clip_content(image: torch.Tensor, content: torch.Tensor, clip) -> float:
    """Cosine similarity of the CLIP image embeddings of ``image`` and ``content``.

    Same preprocessing as ``clip_style``. Range [-1, 1]; 1.0 for identical images; higher =
    more of the content's meaning kept.
    """
    image, content = _check_image(image, "image"), _check_image(content, "content")
    return _clip_similarity(image, content, clip)


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Metric:
    """One row of ``METRICS``.

    function: called with the inputs named in ``inputs`` (in that order), returns a float.
    kind: "pixel" (no network), "feature" (needs a backbone), "clip" (needs the CLIP image
    encoder); later "temporal" (frames).
    direction: "higher" or "lower" is better.
    """

    function: Callable[..., float]
    kind: str
    direction: str
    description: str
    inputs: tuple[str, ...]


METRICS: dict[str, Metric] = {
    "ssim": Metric(
        ssim, "pixel", "higher",
        "luminance structure kept from the content (1 = identical)",
        ("output", "content"),
    ),
    "content_distance": Metric(
        content_distance, "feature", "lower",
        "relative feature distance to the content (0 = identical)",
        ("output", "content", "backbone"),
    ),
    "style_ratio": Metric(
        style_ratio, "feature", "lower",
        "Gram distance to the style relative to the content's (1 = no style gained)",
        ("output", "style", "content", "backbone"),
    ),
    "meanstd_distance": Metric(
        meanstd_distance, "feature", "lower",
        "distance of feature channel means/stds to the style's (0 = identical)",
        ("output", "style", "backbone"),
    ),
    "color_distance": Metric(
        color_distance, "pixel", "lower",
        "sliced Wasserstein distance to the style's colours in YIQ (0 = same palette)",
        ("output", "style"),
    ),
    "clip_content": Metric(
        clip_content, "clip", "higher",
        "CLIP image-embedding similarity to the content (1 = same meaning)",
        ("output", "content", "clip"),
    ),
    "clip_style": Metric(
        clip_style, "clip", "higher",
        "CLIP image-embedding similarity to the style image (1 = identical)",
        ("output", "style", "clip"),
    ),
}  # fmt: skip

UNAVAILABLE: dict[str, str] = {
    "artfid": "unavailable: not implemented yet (ArtFID is a score over a set of results: "
    "LPIPS on AlexNet plus FID on Inception-v3 features; see README 'Metrics')",
}
"""Metrics that are planned but not implemented; reported with the reason, never a number."""

METRIC_CHOICES: tuple[str, ...] = (*METRICS, *UNAVAILABLE)

DIRECTION_TEXT = {"higher": "higher is better", "lower": "lower is better"}

AUTO_BACKBONES: tuple[str, ...] = ("efficientnet-lite2", "efficientnet-lite0", "vgg19")
"""Order of preference for ``backbone="auto"``."""


# --------------------------------------------------------------------------- evaluate


@dataclass
class EvaluationReport:
    """What ``evaluate`` measured.

    metrics: name -> value, in ``METRICS`` order; backbone: the network the feature metrics
    used ("none" when none was needed); unavailable: name -> reason for metrics without a
    value; notes: plain sentences worth telling the user (e.g. a biased backbone choice).
    """

    metrics: dict[str, float]
    backbone: str
    unavailable: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": dict(self.metrics),
            "directions": {name: DIRECTION_TEXT[METRICS[name].direction] for name in self.metrics},
            "backbone": self.backbone,
            "unavailable": dict(self.unavailable),
            "notes": list(self.notes),
        }


def check_metrics(names: Sequence[str] | None) -> tuple[str, ...]:
    """Validate metric names (None = all of ``METRIC_CHOICES``); InputError names the choices."""
    if names is None:
        return METRIC_CHOICES
    if isinstance(names, str):
        names = [names]
    unknown = [name for name in names if name not in METRIC_CHOICES]
    if unknown:
        raise InputError(
            f"unknown metric(s) {', '.join(repr(n) for n in unknown)}; "
            f"choose from: {', '.join(METRIC_CHOICES)}"
        )
    if not names:
        raise InputError(f"no metric selected; choose from: {', '.join(METRIC_CHOICES)}")
    return tuple(dict.fromkeys(names))


def choose_backbone(made_with: str | None = None) -> str:
    """The network for ``backbone="auto"``: the first of ``AUTO_BACKBONES`` whose weights are
    here and that differs from ``made_with``; the same network only when no other is here.
    Raises WeightsError when none has weights."""
    from .backbones import weights_available

    here = [name for name in AUTO_BACKBONES if weights_available(name)]
    if not here:
        raise WeightsError(
            f"no backbone to score features with: none of {', '.join(AUTO_BACKBONES)} "
            "has weights on this machine"
        )
    others = [name for name in here if name != made_with]
    return others[0] if others else here[0]


def _clip_encoder(weights) -> tuple[Any, str]:
    """(encoder, "") or (None, the 'unavailable' reason) when there are no CLIP weights.
    Weights that exist but do not load raise WeightsError (a broken file is an error)."""
    from . import clip

    if isinstance(weights, torch.nn.Module):
        return weights, ""
    if clip.clip_weights_path(weights) is None:
        return None, clip.missing_reason()
    return clip.load_clip(weights), ""


def _load(image: ImageLike, what: str) -> torch.Tensor:
    if isinstance(image, (str, os.PathLike)):
        from .images import load_image

        return load_image(Path(image)).rgb
    return _check_image(image, what)


def evaluate(
    output: ImageLike,
    content: ImageLike,
    style: ImageLike,
    backbone: str | Any = "auto",
    made_with: str | None = None,
    metrics: Sequence[str] | None = None,
    clip_weights: str | os.PathLike | Any | None = None,
) -> EvaluationReport:
    """Score a stylised ``output`` against its ``content`` and ``style`` images.

    Images: tensors (1, 3, H, W) in [0, 1] or paths. The output and the content must have the
    same aspect ratio (within 1%), else InputError; the content is resized to the output's size.
    ``backbone``: a registry name, a Backbone, or "auto" (see ``choose_backbone``; avoids
    ``made_with``, the network that produced the output). ``metrics``: names from
    ``METRIC_CHOICES`` (default: all). Names in ``UNAVAILABLE`` are reported there, never scored.
    ``clip_weights``: a CLIP weights file or a loaded ``CLIPImageEncoder`` (default: see
    ``impasto.clip.clip_weights_path``); without weights the CLIP metrics are reported as
    unavailable with the way to get them.
    """
    from .backbones import BACKBONES

    selected = check_metrics(metrics)
    if made_with is not None and made_with not in BACKBONES:
        raise InputError(
            f"unknown made_with backbone '{made_with}'; choose from: {', '.join(BACKBONES)}"
        )
    if isinstance(backbone, str) and backbone != "auto" and backbone not in BACKBONES:
        raise InputError(
            f"unknown backbone '{backbone}'; choose from: auto, {', '.join(BACKBONES)}"
        )

    output = _load(output, "output")
    content = _load(content, "content")
    style = _load(style, "style")
    out_h, out_w = output.shape[-2:]
    con_h, con_w = content.shape[-2:]
    if abs((out_w / out_h) / (con_w / con_h) - 1) > 0.01:
        raise InputError(
            f"output ({_size(output)}) and content ({_size(content)}) have different aspect "
            "ratios; score an output against the content it was made from"
        )
    if (con_h, con_w) != (out_h, out_w):
        from .images import resize_to

        content = resize_to(content, int(out_h), int(out_w))
    style = _match_long_side(style, output)

    scored = [name for name in selected if name in METRICS]
    notes: list[str] = []
    network = None
    backbone_name = "none"
    if any(METRICS[name].kind == "feature" for name in scored):
        if isinstance(backbone, str):
            backbone_name = choose_backbone(made_with) if backbone == "auto" else backbone
            network = _load_backbone(backbone_name)
        else:
            network = backbone
            backbone_name = getattr(backbone, "name", type(backbone).__name__)
        if made_with is not None and backbone_name == made_with:
            notes.append(
                f"feature metrics use {backbone_name}, the network that made the output; "
                "they flatter it"
            )
        network = FeatureCache(network)

    values: dict[str, float] = {}
    unavailable: dict[str, str] = {}
    clip = None
    if any(METRICS[name].kind == "clip" for name in scored):
        clip, reason = _clip_encoder(clip_weights)
        if clip is None:
            for name in [name for name in scored if METRICS[name].kind == "clip"]:
                unavailable[name] = reason
                scored.remove(name)

    inputs = {"output": output, "content": content, "style": style, "backbone": network}
    inputs["clip"] = clip
    for name in scored:
        metric = METRICS[name]
        try:
            values[name] = float(metric.function(*(inputs[key] for key in metric.inputs)))
        except MetricUndefined as error:
            unavailable[name] = str(error)
    for name in selected:
        if name in UNAVAILABLE:
            unavailable[name] = UNAVAILABLE[name]
    return EvaluationReport(values, backbone_name, unavailable, notes)
