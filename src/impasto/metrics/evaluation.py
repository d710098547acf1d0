"""``evaluate``: score a stylised image against its content and style with the metrics of
``METRICS``, and say which could not be scored and why.

Feature metrics should be scored with a network other than the one that made the image (a
stylisation optimised against a network's features flatters that network); ``evaluate`` with
``backbone="auto"`` picks one that differs from ``made_with`` when it can.

CLIP similarities use OpenAI's CLIP ViT-B/32 image encoder when its weights are on this machine
(``impasto download clip-vit-b32``, or ``IMPASTO_CLIP_WEIGHTS``); without them they are reported
as unavailable with the way to get them, never as a number.

To make the numbers readable, ``evaluate`` also scores two references with the same metrics and
network (the content itself and the style itself, see ``impasto.metrics.reference``) and says in
one sentence where the result lies between them (``EvaluationReport.verdict``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, WeightsError
from .base import ImageLike, MetricUndefined, check_image, match_long_side, size_text
from .features import FeatureCache, load_scoring_backbone
from .reference import style_stand_in, verdict
from .table import METRICS, check_metrics

AUTO_BACKBONES: tuple[str, ...] = ("efficientnet-lite2", "efficientnet-lite0", "vgg19")
"""Order of preference for ``backbone="auto"``."""

_BETTER = {"higher": "higher is better", "lower": "lower is better"}


@dataclass
class EvaluationReport:
    """What ``evaluate`` measured.

    metrics: name -> value, in ``METRICS`` order; backbone: the network the feature metrics
    used ("none" when none was needed); unavailable: name -> reason for metrics without a
    value; notes: plain sentences worth telling the user (e.g. a biased backbone choice);
    references: "content" and "style" -> name -> what the content itself and the style itself
    score (empty when not asked for); verdict: one plain sentence placing the result between
    the references ("" without them).
    """

    metrics: dict[str, float]
    backbone: str
    unavailable: dict[str, str]
    notes: list[str] = field(default_factory=list)
    references: dict[str, dict[str, float]] = field(default_factory=dict)
    verdict: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": dict(self.metrics),
            "references": {kind: dict(values) for kind, values in self.references.items()},
            "verdict": self.verdict,
            # "higher is better" as before (scripts read it); "toward" names the reference
            # each metric moves toward as it gets "better", so 1.0 SSIM reads as the content
            "directions": {name: _BETTER[METRICS[name].direction] for name in self.metrics},
            "toward": {name: METRICS[name].toward for name in self.metrics},
            "backbone": self.backbone,
            "unavailable": dict(self.unavailable),
            "notes": list(self.notes),
        }


def choose_backbone(made_with: str | None = None) -> str:
    """The network for ``backbone="auto"``: the first of ``AUTO_BACKBONES`` whose weights are
    here and that differs from ``made_with``; the same network only when no other is here.
    Raises WeightsError when none has weights."""
    from ..backbones import weights_available

    here = [name for name in AUTO_BACKBONES if weights_available(name)]
    if not here:
        raise WeightsError(
            f"no backbone to score features with: none of {', '.join(AUTO_BACKBONES)} "
            "has weights on this machine"
        )
    others = [name for name in here if name != made_with]
    return others[0] if others else here[0]


def check_backbone_names(backbone: str | Any, made_with: str | None) -> None:
    """InputError unless ``backbone`` is "auto", a registry name or a Backbone, and
    ``made_with`` is None or a registry name."""
    from ..backbones import BACKBONES

    if made_with is not None and made_with not in BACKBONES:
        raise InputError(
            f"unknown made_with backbone '{made_with}'; choose from: {', '.join(BACKBONES)}"
        )
    if isinstance(backbone, str) and backbone != "auto" and backbone not in BACKBONES:
        raise InputError(
            f"unknown backbone '{backbone}'; choose from: auto, {', '.join(BACKBONES)}"
        )


def clip_encoder(weights) -> tuple[Any, str]:
    """The CLIP image encoder for ``weights`` (a file, a loaded encoder, or None: see
    ``impasto.clip.clip_weights_path``): (encoder, "") or (None, the 'unavailable' reason) when
    there are no CLIP weights. Weights that exist but do not load raise WeightsError (a broken
    file is an error)."""
    from .. import clip

    if isinstance(weights, torch.nn.Module):
        return weights, ""
    if clip.clip_weights_path(weights) is None:
        return None, clip.missing_reason()
    return clip.load_clip(weights), ""


def _load(image: ImageLike, what: str) -> torch.Tensor:
    if isinstance(image, (str, os.PathLike)):
        from ..images import load_image

        return load_image(Path(image)).rgb
    return check_image(image, what)


def evaluate(
    output: ImageLike,
    content: ImageLike,
    style: ImageLike,
    backbone: str | Any = "auto",
    made_with: str | None = None,
    metrics: Sequence[str] | None = None,
    clip_weights: str | os.PathLike | Any | None = None,
    references: bool = True,
) -> EvaluationReport:
    """Score a stylised ``output`` against its ``content`` and ``style`` images.

    Images: tensors (1, 3, H, W) in [0, 1] or paths. The output and the content must have the
    same aspect ratio (within 1%), else InputError; the content is resized to the output's size.
    ``backbone``: a registry name, a Backbone, or "auto" (see ``choose_backbone``; avoids
    ``made_with``, the network that produced the output). ``metrics``: names from
    ``METRIC_CHOICES`` (default: all). ``clip_weights``: a CLIP weights file or a loaded
    ``CLIPImageEncoder`` (default: see ``impasto.clip.clip_weights_path``); without weights the
    CLIP metrics are reported as unavailable with the way to get them. ``references``: also
    score the content itself and the style itself (about twice the work) and write the verdict.
    """
    selected = check_metrics(metrics)
    check_backbone_names(backbone, made_with)

    output = _load(output, "output")
    content = _load(content, "content")
    style = _load(style, "style")
    out_h, out_w = output.shape[-2:]
    con_h, con_w = content.shape[-2:]
    if abs((out_w / out_h) / (con_w / con_h) - 1) > 0.01:
        raise InputError(
            f"output ({size_text(output)}) and content ({size_text(content)}) have different "
            "aspect ratios; score an output against the content it was made from"
        )
    if (con_h, con_w) != (out_h, out_w):
        from ..images import resize_to

        content = resize_to(content, int(out_h), int(out_w))
    painting, style = style, match_long_side(style, output)

    scored = list(selected)
    notes: list[str] = []
    network = None
    backbone_name = "none"
    if any(METRICS[name].kind == "feature" for name in scored):
        if isinstance(backbone, str):
            backbone_name = choose_backbone(made_with) if backbone == "auto" else backbone
            network = load_scoring_backbone(backbone_name)
        else:
            network = backbone
            backbone_name = getattr(backbone, "name", type(backbone).__name__)
        if made_with is not None and backbone_name == made_with:
            notes.append(
                f"feature metrics use {backbone_name}, the network that made the output; "
                "they flatter it"
            )
        network = FeatureCache(network)

    unavailable: dict[str, str] = {}
    clip = None
    if any(METRICS[name].kind == "clip" for name in scored):
        clip, reason = clip_encoder(clip_weights)
        if clip is None:
            for name in [name for name in scored if METRICS[name].kind == "clip"]:
                unavailable[name] = reason
                scored.remove(name)

    inputs = {"output": output, "content": content, "style": style, "backbone": network}
    inputs["clip"] = clip
    values = _score(scored, inputs, unavailable)
    report = EvaluationReport(values, backbone_name, unavailable, notes)
    if references:
        stand_ins = {"content": content, "style": style_stand_in(painting, output)}
        for kind, image in stand_ins.items():
            report.references[kind] = _score(scored, {**inputs, "output": image})
        report.verdict = verdict(values, report.references)
    return report


def _score(
    names: Sequence[str], inputs: dict[str, Any], unavailable: dict[str, str] | None = None
) -> dict[str, float]:
    """name -> value for each metric of ``names`` on ``inputs``; a metric without a value for
    these inputs is left out (with its reason in ``unavailable`` when given)."""
    values: dict[str, float] = {}
    for name in names:
        metric = METRICS[name]
        try:
            values[name] = float(metric.function(*(inputs[key] for key in metric.inputs)))
        except MetricUndefined as error:
            if unavailable is not None:
                unavailable[name] = str(error)
    return values
