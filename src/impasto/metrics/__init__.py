"""Quality metrics for a stylised image: structure, content, style and colour.

Images are float32 RGB in [0, 1], shape (1, 3, H, W). Each metric says its definition, range
and direction in its docstring. ``pixels``: metrics without a network (``ssim``,
``color_distance``); ``features``: metrics on a backbone's features or CLIP embeddings;
``table``: ``METRICS``, the table ``evaluate`` reads; ``evaluation``: ``evaluate`` and its
report; ``temporal``: the warping error of a clip (frames over time); ``clips``:
``evaluate_clip``, ``evaluate`` over the frames of a video or frame folder plus the warping
error; ``reference``: the reference scores (the content itself, the style itself) and the
plain-language verdict; ``base``: the input checks they share. The names below are the public
API.
"""

from .base import ImageLike, MetricUndefined
from .clips import SCORED_FRAMES, ClipReport, evaluate_clip, is_clip
from .evaluation import (
    AUTO_BACKBONES,
    EvaluationReport,
    check_backbone_names,
    choose_backbone,
    clip_encoder,
    evaluate,
)
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
from .temporal import TEMPORAL_FLOW, TemporalReport, WarpingError, warping_error

__all__ = [
    "AUTO_BACKBONES",
    "COLOR_DIRECTIONS",
    "COLOR_QUANTILES",
    "EPS",
    "METRICS",
    "METRIC_CHOICES",
    "SCORED_FRAMES",
    "TEMPORAL_FLOW",
    "VERDICT_METRICS",
    "ClipReport",
    "EvaluationReport",
    "FeatureCache",
    "ImageLike",
    "Metric",
    "MetricUndefined",
    "TemporalReport",
    "WarpingError",
    "check_backbone_names",
    "check_metrics",
    "choose_backbone",
    "clip_content",
    "clip_encoder",
    "clip_style",
    "color_distance",
    "content_distance",
    "evaluate",
    "evaluate_clip",
    "is_clip",
    "load_scoring_backbone",
    "meanstd_distance",
    "share",
    "ssim",
    "style_ratio",
    "style_stand_in",
    "verdict",
    "warping_error",
]
