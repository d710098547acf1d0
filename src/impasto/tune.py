"""``--auto`` and ``impasto tune``: the setting of a method that best balances style and
structure for one pair of images, found by trying a few at a small size.

Per method, one parameter is searched over a fixed ladder (``SEARCHES``): Gatys's style weight,
the style strength alpha of AdaIN, WCT and photo. Each candidate stylises the photo shrunk to
``TUNE_SIZE`` pixels and is scored by two of impasto's metrics, read as the verdict of
``impasto evaluate`` reads them (impasto.metrics.reference.share):

- style: ``style_ratio`` (Gram distance to the painting relative to the photo's), as a share of
  the way from the photo (0) to the painting itself cropped to the photo's shape (1);
- structure: ``ssim`` with the photo, as a share of the way from that painting crop (0) to the
  photo (1).

The score is their weighted mean, the weights set by ``target`` (``TARGETS``): ``balanced``
weighs both alike, ``stronger`` style twice, ``subtle`` structure twice; the candidate with the
best score wins. The style metric runs on EfficientNet-Lite1 (``TUNE_BACKBONE``): not the network
that stylises (Lite0, by default), and not the one ``impasto evaluate`` scores with (Lite2), so
the tuner never optimises against the evaluator.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .errors import InputError
from .progress import ProgressCallback, ProgressEvent, report

TUNE_SIZE = 256  # long side of the photo while candidates are tried
TUNE_BACKBONE = "efficientnet-lite1"
TARGETS = {"balanced": (1.0, 1.0), "stronger": (2.0, 1.0), "subtle": (1.0, 2.0)}
"""target -> (weight of the style share, weight of the structure share)."""
TARGET_CHOICES = tuple(TARGETS)
ALPHAS = (0.2, 0.35, 0.5, 0.65, 0.8, 1.0)
SEARCHES: dict[str, tuple[str, tuple[float, ...]]] = {
    "gatys": ("style_weight", (1e3, 3e3, 1e4, 3e4, 1e5)),
    "adain": ("alpha", ALPHAS),
    "wct": ("alpha", ALPHAS),
    "photo": ("alpha", ALPHAS),
}
"""method -> (config field searched, the values tried)."""


@dataclass(frozen=True)
class Candidate:
    """One setting tried: its value, its two metrics and their shares, and its score."""

    value: float
    ssim: float
    style_ratio: float
    structure: float  # share of the way from the painting (0) to the photo (1), by SSIM
    style: float  # share of the way from the photo (0) to the painting (1), by style_ratio
    score: float


@dataclass(frozen=True)
class Tuning:
    """What ``tune`` measured and chose: ``config`` is the given one with ``parameter`` set to
    ``chosen``."""

    method: str
    parameter: str
    target: str
    candidates: tuple[Candidate, ...]
    chosen: float
    config: Any
    size: int
    seconds: float

    def table(self) -> list[str]:
        """The curve as lines of text, the chosen row marked."""
        name = self.parameter.replace("_", " ")
        lines = [f"{name:>12}  {'SSIM':>6}  {'style ratio':>11}  {'style':>6}  {'structure':>9}"
                 f"  {'score':>6}"]  # fmt: skip
        for c in self.candidates:
            mark = "  <- chosen" if c.value == self.chosen else ""
            lines.append(f"{c.value:>12g}  {c.ssim:>6.3f}  {c.style_ratio:>11.3f}  "
                         f"{c.style:>6.0%}  {c.structure:>9.0%}  {c.score:>6.3f}"
                         + mark)  # fmt: skip
        return lines

    def plot(self) -> torch.Tensor:
        """The curve as a small chart (impasto.images.draw_curve): (1, 3, H, W) in [0, 1]."""
        from .images import draw_curve

        name = self.parameter.replace("_", " ")
        series = {"style": [c.style for c in self.candidates],
                  "structure": [c.structure for c in self.candidates],
                  "score": [c.score for c in self.candidates]}  # fmt: skip
        labels = [f"{c.value:g}" for c in self.candidates]
        chosen = [c.value for c in self.candidates].index(self.chosen)
        title = f"{self.method}: {name} at {self.size} px, target {self.target}"
        return draw_curve(labels, series, chosen=chosen, title=title, x_title=name)


def score(style: float, structure: float, target: str) -> float:
    """The weighted mean of the style and structure shares that ``target`` asks for."""
    style_weight, structure_weight = TARGETS[target]
    return (style_weight * style + structure_weight * structure) / (style_weight + structure_weight)


def choose(candidates: Sequence[Candidate], target: str) -> Candidate:
    """The candidate that scores best for ``target`` (the first, on a tie)."""
    return max(candidates, key=lambda c: score(c.style, c.structure, target))


def check_target(target: str) -> None:
    if target not in TARGETS:
        raise InputError(f"--target {target!r}: choose one of {', '.join(TARGET_CHOICES)}")


def tunable(method: str) -> None:
    """InputError unless ``method`` has a setting to tune."""
    if method not in SEARCHES:
        methods = ", ".join(f"{name} ({field.replace('_', ' ')})"
                            for name, (field, _values) in SEARCHES.items())  # fmt: skip
        raise InputError(f"--auto: method '{method}' has no setting to tune; it tunes {methods}")


def small_config(method: str, config: Any) -> Any:
    """``config`` as the candidates run it: at TUNE_SIZE (Gatys: in one scale)."""
    changes: dict[str, Any] = {"size": TUNE_SIZE}
    if method == "gatys":  # one scale, at the size the candidates are scored at
        changes["scales"], changes["supersample"] = 1, False
    if hasattr(config, "keep"):
        changes["keep"] = None  # the untouched region would only add the photo to both scores
    return dataclasses.replace(config, **changes)


def _relabelled(progress: ProgressCallback | None, label: str) -> ProgressCallback | None:
    """``progress`` seeing a candidate's step events under ``label`` (its own stages dropped)."""
    if progress is None:
        return None

    def relabel(event: ProgressEvent):
        if event.kind != "step":
            return None
        return progress(dataclasses.replace(event, stage=label, image=None))

    return relabel


def tune(method: str, config: Any, content: torch.Tensor, styles: Sequence[torch.Tensor], *,
         target: str = "balanced", progress: ProgressCallback | None = None,
         notify=None) -> Tuning:  # fmt: skip
    """Try ``method``'s ladder of settings (``SEARCHES``) on ``content`` (1, 3, H, W) shrunk
    to TUNE_SIZE with ``styles``, score each (module docstring) and return the curve and the
    config with the best setting. The first style image is the one scored against."""
    from . import pipeline
    from .images import resize_long_side
    from .metrics import load_scoring_backbone, ssim, style_ratio, style_stand_in
    from .metrics.reference import share

    tunable(method)
    check_target(target)
    started = time.perf_counter()
    parameter, values = SEARCHES[method]
    photo = resize_long_side(content, min(TUNE_SIZE, max(content.shape[-2:])))
    scorer = load_scoring_backbone(TUNE_BACKBONE)
    style = styles[0]
    painting = style_stand_in(style, photo)
    painting_ssim = ssim(painting, photo)
    painting_ratio = style_ratio(painting, style, photo, scorer)
    candidates = []
    for index, value in enumerate(values):
        label = f"tuning {parameter.replace('_', ' ')} {value:g} ({index + 1}/{len(values)})"
        report(progress, ProgressEvent(label, index, len(values), kind="stage"))
        trial = dataclasses.replace(small_config(method, config), **{parameter: value})
        prepared = pipeline.prepare(method, trial, styles, notify=notify)
        image = prepared.checked_run(photo, progress=_relabelled(progress, label)).image[:1]
        similarity = ssim(image, photo)
        ratio = style_ratio(image, style, photo, scorer)
        structure = share("ssim", similarity, 1.0, painting_ssim) or 0.0
        styled = share("style_ratio", ratio, 1.0, painting_ratio) or 0.0
        candidates.append(Candidate(value, similarity, ratio, structure, styled,
                                    score(styled, structure, target)))  # fmt: skip
    best = choose(candidates, target)
    return Tuning(method, parameter, target, tuple(candidates), best.value,
                  dataclasses.replace(config, **{parameter: best.value}), max(photo.shape[-2:]),
                  time.perf_counter() - started)  # fmt: skip
