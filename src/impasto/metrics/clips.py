"""``evaluate_clip``: score a stylised clip against the clip it was made from, as ``evaluate``
scores an image, plus the temporal metric (``impasto.metrics.temporal``).

A clip is a video file or a folder of frame images (natural-sorted file names,
``impasto.video.list_frames``). The output clip and the content clip must have the same number
of frames; frame t of the output is scored against frame t of the content.

- The per-image metrics (``METRICS``) and their references are scored on every ``frame_step``-th
  frame (frames 0, k, 2k, ...; by default k is the smallest step that scores at most
  ``SCORED_FRAMES`` frames) and averaged over those frames; the report lists them.
- The warping error uses every frame: it measures change between consecutive frames.
- The style image is resized once to the output's long side, so its features are computed once;
  the style reference ("style itself") is cropped from that resized copy (``evaluate`` crops it
  from the full-size style, so the reference can differ slightly).

Frames are counted first, so that a mismatch fails before any work: a folder's from its file
list, a video's by decoding it once more. Then both clips are read together, streaming: memory
does not grow with the clip. The network and the CLIP encoder are loaded once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from .base import ImageLike, MetricUndefined, check_image, match_long_side, size_text
from .evaluation import (
    EvaluationReport,
    check_backbone_names,
    choose_backbone,
    clip_encoder,
    evaluate,
)
from .features import FeatureCache, load_scoring_backbone
from .reference import verdict
from .table import METRICS, check_metrics
from .temporal import TemporalReport, WarpingError, same_aspect

SCORED_FRAMES = 20
"""The default ``frame_step`` scores at most this many frames with the per-image metrics."""


@dataclass
class ClipReport:
    """What ``evaluate_clip`` measured.

    evaluation: the per-image metrics and references averaged over the scored frames (its
    ``notes`` say when a metric had no value on some of them); temporal: the warping error of
    the output and of the content clip (None when no frame pair had a reliable flow; the reason
    is in ``evaluation.unavailable["warping_error"]``); frame_count: frames in each clip;
    frame_step: every how many frames the per-image metrics were scored; scored_frames: their
    indices (0 = the first frame).
    """

    evaluation: EvaluationReport
    temporal: TemporalReport | None
    frame_count: int
    frame_step: int
    scored_frames: list[int]

    def to_dict(self) -> dict[str, Any]:
        report = self.evaluation.to_dict()
        report["frames"] = {
            "count": self.frame_count,
            "step": self.frame_step,
            "scored": list(self.scored_frames),
        }
        report["temporal"] = None if self.temporal is None else self.temporal.to_dict()
        return report


def is_clip(path: ImageLike) -> bool:
    """Whether ``path`` names a clip: a folder (of frames) or a video file (by its extension)."""
    if not isinstance(path, (str, os.PathLike)):
        return False
    from .. import video

    return Path(path).is_dir() or video.is_video_path(Path(path))


@dataclass
class _Clip:
    """A clip to read: its frame count and a function giving (label, (1, 3, H, W)) per frame."""

    path: Path
    count: int
    frames: Callable[[], Iterator[tuple[str, torch.Tensor]]]


def _open_clip(path: ImageLike, what: str) -> _Clip:
    from .. import video

    if not is_clip(path):
        raise InputError(
            f"{what} {path} is not a clip (a video file or a folder of frames); score a clip "
            "against a clip, an image against an image"
        )
    path = Path(path)
    if path.is_dir():
        files = video.list_frames(path)  # InputError when it holds no frame

        def folder_frames() -> Iterator[tuple[str, torch.Tensor]]:
            from ..images import load_image

            for file in files:
                yield file.name, load_image(file).rgb

        return _Clip(path, len(files), folder_frames)

    def video_frames() -> Iterator[tuple[str, torch.Tensor]]:
        for index, frame in enumerate(video.read_frames(path)):
            yield f"frame {index}", frame.rgb[None] if frame.rgb.dim() == 3 else frame.rgb

    return _Clip(path, sum(1 for _ in video.read_frames(path)), video_frames)


def _one_size(clip: _Clip) -> Iterator[torch.Tensor]:
    """The clip's frames, (1, 3, H, W); InputError naming the first frame of another size."""
    first_label, first_size = "", torch.Size()
    for label, frame in clip.frames():
        if not first_label:
            first_label, first_size = label, frame.shape
        elif frame.shape != first_size:
            raise InputError(
                f"{clip.path}: {label} is {size_text(frame)} but {first_label} is "
                f"{first_size[-1]}x{first_size[-2]}; a clip's frames must all have one size"
            )
        yield frame


def _check_aspect(output: torch.Tensor, content: torch.Tensor) -> None:
    if not same_aspect(tuple(content.shape[-2:]), tuple(output.shape[-2:])):
        raise InputError(
            f"output frames ({size_text(output)}) and content frames ({size_text(content)}) "
            "have different aspect ratios; score a clip against the clip it was made from"
        )


def _check_frame_step(frame_step: int | None) -> None:
    if frame_step is None:
        return
    if isinstance(frame_step, bool) or not isinstance(frame_step, int) or frame_step < 1:
        raise InputError(f"frame step must be a whole number of 1 or more, got {frame_step!r}")


def evaluate_clip(
    output: str | os.PathLike,
    content: str | os.PathLike,
    style: ImageLike,
    backbone: str | Any = "auto",
    made_with: str | None = None,
    metrics: Sequence[str] | None = None,
    clip_weights: str | os.PathLike | Any | None = None,
    references: bool = True,
    frame_step: int | None = None,
) -> ClipReport:
    """Score a stylised clip ``output`` against the ``content`` clip it was made from and the
    ``style`` image (a tensor (1, 3, H, W) in [0, 1] or a path).

    ``output``, ``content``: video files or folders of frames, the same number of frames (at
    least 2), each clip's frames of one size; the output's may differ from the content's in size
    but not in aspect ratio. ``frame_step``: score the per-image metrics on frames 0, k, 2k, ...
    (default: the smallest k that scores at most ``SCORED_FRAMES`` frames). The other arguments
    are ``evaluate``'s. InputError for anything a user can fix.
    """
    selected = check_metrics(metrics)
    check_backbone_names(backbone, made_with)
    _check_frame_step(frame_step)
    if isinstance(style, (str, os.PathLike)):
        from ..images import load_image

        style = load_image(Path(style)).rgb
    style = check_image(style, "style")
    output_clip = _open_clip(output, "output")
    content_clip = _open_clip(content, "content")
    if output_clip.count != content_clip.count:
        raise InputError(
            f"output {output_clip.path} has {output_clip.count} frames and content "
            f"{content_clip.path} {content_clip.count}; score a clip against the clip it was "
            "made from, frame for frame"
        )
    if output_clip.count < 2:
        raise InputError(
            f"{output_clip.path} has only {output_clip.count} frame; a clip needs at least 2 "
            "(score a single frame as an image)"
        )
    step = frame_step or max(1, math.ceil(output_clip.count / SCORED_FRAMES))

    network: str | Any = backbone
    if any(METRICS[name].kind == "feature" for name in selected):
        if isinstance(backbone, str):
            name = choose_backbone(made_with) if backbone == "auto" else backbone
            backbone = load_scoring_backbone(name)
        network = FeatureCache(backbone)  # kept across frames: the style's features once
    clip: Any = clip_weights
    if any(METRICS[name].kind == "clip" for name in selected):
        encoder, _ = clip_encoder(clip_weights)
        clip = clip_weights if encoder is None else encoder  # None: each frame says why

    options = {"backbone": network, "made_with": made_with, "metrics": selected}
    options |= {"clip_weights": clip, "references": references}
    temporal = WarpingError()
    reports: list[EvaluationReport] = []
    scored: list[int] = []
    style_at = style
    pairs = zip(_one_size(output_clip), _one_size(content_clip), strict=True)
    for index, (output_frame, content_frame) in enumerate(pairs):
        if index == 0:
            _check_aspect(output_frame, content_frame)
            # Resized once, so that the style is the same tensor for every frame and its
            # features are computed once (evaluate resizes a style of another long side).
            style_at = match_long_side(style, output_frame)
        temporal.add(output_frame, content_frame)
        if index % step:
            continue
        reports.append(evaluate(output_frame, content_frame, style_at, **options))
        scored.append(index)
        if isinstance(network, FeatureCache):
            network.forget(keep=(style_at,))

    evaluation = _average(reports)
    try:
        temporal_report: TemporalReport | None = temporal.report()
    except MetricUndefined as error:
        temporal_report = None
        evaluation.unavailable["warping_error"] = str(error)
    return ClipReport(evaluation, temporal_report, output_clip.count, step, scored)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _average(reports: Sequence[EvaluationReport]) -> EvaluationReport:
    """One report: each metric and reference averaged over the frames that have a value for it;
    a note for a metric that some frames have no value for, 'unavailable' for one none has."""
    first = reports[0]
    names = [name for name in METRICS if any(name in report.metrics for report in reports)]
    values = {name: [r.metrics[name] for r in reports if name in r.metrics] for name in names}
    notes = list(dict.fromkeys(note for report in reports for note in report.notes))
    for name, found in values.items():
        if len(found) < len(reports):
            reason = next(r.unavailable[name] for r in reports if name in r.unavailable)
            notes.append(
                f"{name} has no value on {len(reports) - len(found)} of the {len(reports)} "
                f"scored frames ({reason}); averaged over the other {len(found)}"
            )
    unavailable: dict[str, str] = {}
    for report in reports:
        for name, reason in report.unavailable.items():
            if name not in values:
                unavailable.setdefault(name, reason)
    averaged = EvaluationReport(
        {name: _mean(found) for name, found in values.items()}, first.backbone, unavailable, notes
    )
    for kind in first.references:
        scores = [report.references[kind] for report in reports]
        kept = [name for name in METRICS if any(name in score for score in scores)]
        averaged.references[kind] = {
            name: _mean([score[name] for score in scores if name in score]) for name in kept
        }
    if averaged.references:
        averaged.verdict = verdict(averaged.metrics, averaged.references)
    return averaged
