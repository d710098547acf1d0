"""Reading the scores: what the content itself and the style itself score, and a verdict.

A score alone says little ("SSIM 0.52": good or bad?). ``evaluate`` therefore scores two
references on the same metrics, with the same network: the content itself (as if it were the
result: the untouched photo) and the style itself (``style_stand_in``: the painting cropped and
resized to the result's size). Every metric places the result somewhere between the two, and
``verdict`` says where in one plain sentence:

- structure (``ssim``, else ``content_distance``, else ``clip_content``): the share of the way
  from the style's score to the content's; 100% = as much as the untouched content keeps;
- style statistics (``style_ratio``, else ``meanstd_distance``, else ``clip_style``) and colours
  (``color_distance``): the share of the way from the content's score to the style's; 100% = as
  near the style as the painting itself.

Shares can leave 0..100% (a result noisier than the painting, or nearer the style's statistics
than the cropped painting); the sentence says so rather than clamping.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .table import METRICS

VERDICT_METRICS: dict[str, tuple[str, ...]] = {
    "structure": ("ssim", "content_distance", "clip_content"),
    "style": ("style_ratio", "meanstd_distance", "clip_style"),
    "colour": ("color_distance",),
}
"""For each part of the verdict, the metrics that can speak for it, first choice first."""

_WORDS = ((0.02, "none"), (0.1, "almost none"), (0.4, "some"), (0.6, "about half"), (0.9, "most"))
"""Upper limits (exclusive) of the shares each phrase covers; 0.9 and up is "almost all"."""


def style_stand_in(style: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """The style image as a result would be: its largest centred crop with the aspect ratio of
    ``output``, resized to ``output``'s size. (1, 3, H, W) in [0, 1]."""
    from ..images import resize_to

    height, width = (int(side) for side in output.shape[-2:])
    style_h, style_w = (int(side) for side in style.shape[-2:])
    if style_w * height > width * style_h:  # the style is wider: keep its full height
        crop_h, crop_w = style_h, max(1, round(style_h * width / height))
    else:
        crop_h, crop_w = max(1, round(style_w * height / width)), style_w
    top, left = (style_h - crop_h) // 2, (style_w - crop_w) // 2
    return resize_to(style[..., top : top + crop_h, left : left + crop_w], height, width)


def share(name: str, value: float, content_score: float, style_score: float) -> float | None:
    """Where ``value`` of metric ``name`` lies between the two references, as the verdict reads
    it: for a structure metric 0 at the style's score and 1 at the content's, for a style or
    colour metric 0 at the content's score and 1 at the style's. None when the two references
    score the same (within 1e-9 of the larger), so that no share can be told."""
    span = content_score - style_score
    if abs(span) <= 1e-9 * max(1.0, abs(content_score), abs(style_score)):
        return None
    kept = (value - style_score) / span  # 0 = like the style, 1 = like the content
    return kept if METRICS[name].measures == "structure" else 1.0 - kept


def _amount(fraction: float) -> str:
    """The phrase of ``_WORDS`` for a share in 0..1."""
    for limit, words in _WORDS:
        if fraction < limit:
            return words
    return "almost all"


def _structure(fraction: float, percent: str) -> str:
    if fraction < 0.0:
        return f"keeps less of the content's structure than the style image itself ({percent})"
    return f"keeps {_amount(min(fraction, 1.0))} of the content's structure ({percent})"


def _nearness(fraction: float, what: str, percent: str) -> str:
    if fraction > 1.0:
        return f"comes nearer the style's {what} than the style image itself ({percent})"
    if fraction < 0.0:
        return f"moves away from the style's {what} ({percent})"
    return f"comes {_amount(fraction)} of the way to the style's {what} ({percent})"


_UNTOLD = {
    "structure": "how much structure is kept",
    "style": "how near the style's statistics came",
    "colour": "how near the style's colours came",
}


def verdict(metrics: Mapping[str, float], references: Mapping[str, Mapping[str, float]]) -> str:
    """One plain sentence: how much of the content's structure the result keeps and how near
    the style's statistics and colours it came, each relative to the reference scores
    (``references["content"]``, ``references["style"]``: name -> value). "" when no metric of
    ``VERDICT_METRICS`` has a value for the result and both references."""
    content, style = references.get("content", {}), references.get("style", {})
    parts = []
    for part, names in VERDICT_METRICS.items():
        name = next((n for n in names if n in metrics and n in content and n in style), None)
        if name is None:
            continue
        fraction = share(name, metrics[name], content[name], style[name])
        if fraction is None:
            parts.append(f"cannot tell {_UNTOLD[part]} ({name}: content and style score the same)")
        elif part == "structure":
            parts.append(_structure(fraction, f"{fraction:.0%} by {name}"))
        else:
            what = "statistics" if part == "style" else "colours"
            parts.append(_nearness(fraction, what, f"{fraction:.0%} by {name}"))
    if not parts:
        return ""
    return (
        "; ".join(parts) + " (percent of the way between the content's and the style's own scores)"
    )
