"""Quality metrics for a stylised image: structure, content, style and colour.

Images are float32 RGB in [0, 1], shape (1, 3, H, W). Each metric says its definition, range
and direction in its docstring. ``pixels``: metrics without a network (``ssim``,
``color_distance``); ``features``: metrics on a backbone's features or CLIP embeddings;
``table``: ``METRICS``, the table ``evaluate`` reads; ``evaluation``: ``evaluate`` and its
report; ``reference``: the reference scores (the content itself, the style itself) and the
plain-language verdict; ``base``: the input checks they share. The names below are the public
API.
"""

from .base import ImageLike, MetricUndefined
from .evaluation import AUTO_BACKBONES, EvaluationReport, choose_backbone, evaluate
from .features import (
    EPS,
    FeatureCache,
    clip_content,
    clip_style,
    content_distance,
    load_scoring_backbone,
    meanstd_distance,
    style_ratio,
)
from .pixels import COLOR_DIRECTIONS, COLOR_QUANTILES, color_distance, ssim
from .reference import VERDICT_METRICS, share, style_stand_in, verdict
from .table import METRIC_CHOICES, METRICS, Metric, check_metrics

__all__ = [
    "AUTO_BACKBONES",
    "COLOR_DIRECTIONS",
    "COLOR_QUANTILES",
    "EPS",
    "METRICS",
    "METRIC_CHOICES",
    "VERDICT_METRICS",
    "EvaluationReport",
    "FeatureCache",
    "ImageLike",
    "Metric",
    "MetricUndefined",
    "check_metrics",
    "choose_backbone",
    "clip_content",
    "clip_style",
    "color_distance",
    "content_distance",
    "evaluate",
    "load_scoring_backbone",
    "meanstd_distance",
    "share",
    "ssim",
    "style_ratio",
    "style_stand_in",
    "verdict",
]
