"""The table of metrics: ``METRICS`` maps each name to its function, kind, direction, one-line
meaning and the inputs the function takes; ``evaluate`` (and ``impasto evaluate``) read it.

A new kind of metric is one more row whose ``inputs`` name what it needs; ``evaluate`` passes
each function only those inputs. The temporal metric of a clip (the warping error,
``impasto.metrics.temporal``) is no row: it needs every frame of the clip, not one image;
``evaluate_clip`` (``impasto.metrics.clips``) adds it beside these.

ArtFID is not offered: it scores a set of results (LPIPS on AlexNet plus FID on Inception-v3
features), not one image, and impasto does not implement it.
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
    encoder).
    direction: "higher" or "lower": the way values move nearer the image ``toward`` names.
    measures: "structure" (how much of the content is kept: the content itself scores the
    extreme), "style" or "colour" (how near the style came: the style itself scores it).
    """

    function: Callable[..., float]
    kind: str
    direction: str
    measures: str
    description: str
    inputs: tuple[str, ...]

    @property
    def toward(self) -> str:
        """The image whose own score is this metric's best: "content" or "style"."""
        return "content" if self.measures == "structure" else "style"

    @property
    def direction_text(self) -> str:
        """E.g. "higher = nearer the content": a direction that names what it moves toward,
        not "better" (the untouched content scores the best SSIM of all)."""
        return f"{self.direction} = nearer the {self.toward}"


METRICS: dict[str, Metric] = {
    "ssim": Metric(
        function=ssim,
        kind="pixel",
        direction="higher",
        measures="structure",
        description="luminance structure kept from the content (1 = identical)",
        inputs=("output", "content"),
    ),
    "content_distance": Metric(
        function=content_distance,
        kind="feature",
        direction="lower",
        measures="structure",
        description="relative feature distance to the content (0 = identical)",
        inputs=("output", "content", "backbone"),
    ),
    "style_ratio": Metric(
        function=style_ratio,
        kind="feature",
        direction="lower",
        measures="style",
        description="Gram distance to the style relative to the content's (1 = no style gained)",
        inputs=("output", "style", "content", "backbone"),
    ),
    "meanstd_distance": Metric(
        function=meanstd_distance,
        kind="feature",
        direction="lower",
        measures="style",
        description="distance of feature channel means/stds to the style's (0 = identical)",
        inputs=("output", "style", "backbone"),
    ),
    "color_distance": Metric(
        function=color_distance,
        kind="pixel",
        direction="lower",
        measures="colour",
        description="sliced Wasserstein distance to the style's colours in YIQ (0 = same palette)",
        inputs=("output", "style"),
    ),
    "clip_content": Metric(
        function=clip_content,
        kind="clip",
        direction="higher",
        measures="structure",
        description="CLIP image-embedding similarity to the content (1 = same meaning)",
        inputs=("output", "content", "clip"),
    ),
    "clip_style": Metric(
        function=clip_style,
        kind="clip",
        direction="higher",
        measures="style",
        description="CLIP image-embedding similarity to the style image (1 = identical)",
        inputs=("output", "style", "clip"),
    ),
}

METRIC_CHOICES: tuple[str, ...] = tuple(METRICS)


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
