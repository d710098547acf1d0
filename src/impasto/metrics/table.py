"""The table of metrics: ``METRICS`` maps each name to its function, kind, direction, one-line
meaning and the inputs the function takes; ``evaluate`` (and ``impasto evaluate``) read it.

A new kind of metric (e.g. a temporal one for video, taking frames) is one more row whose
``inputs`` name what it needs; ``evaluate`` passes each function only those inputs. ArtFID is
not implemented (see ``UNAVAILABLE``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import InputError
from .features import clip_content, clip_style, content_distance, meanstd_distance, style_ratio
from .pixels import color_distance, ssim


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
