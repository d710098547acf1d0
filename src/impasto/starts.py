"""The starting image of a Gatys optimisation (``--init``): the photo, the photo graded to the
paintings' colours (impasto.grading), or noise; ``auto`` picks by mode (docs/defaults.md)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .regions import masks_at


def starting_image(config) -> str:
    """``config.init`` with auto resolved: the photo in the paintings' colours, except with
    --photorealistic, whose regulariser keeps the result a local colour change of the photo
    and starts from the photo itself (from the graded one it kept less: docs/defaults.md)."""
    if config.init != "auto":
        return config.init
    return "content" if config.photorealistic else "graded"


def graded_start(content: torch.Tensor, styles: Sequence[torch.Tensor], blend: Sequence[float],
                 regions=None) -> torch.Tensor:  # fmt: skip
    """The photo with the paintings' colours (impasto.grading, their pixels mixed in the
    ``blend`` shares): the start that leaves the optimiser the texture to paint, not the
    palette. ``regions`` (content masks, style masks or None), as stylize has them: each
    region of the photo takes its own style's colours (--mask: style i's within mask i;
    label masks: the style image's region of the same label); what no mask covers stays."""
    from . import grading

    if regions is None:
        counts = [round(grading.SAMPLES * weight) for weight in blend]
        reference = torch.cat([grading.pixel_sample(style, count=count)
                               for style, count in zip(styles, counts, strict=True)
                               if count > 0])  # fmt: skip
        return grading.grade_to(content, [reference]).clamp(0, 1)
    content_masks, style_masks = regions
    masks = list(masks_at(content_masks, tuple(content.shape[-2:])).split(1))
    if style_masks is None:  # --mask: one per style image
        references = [grading.pixel_sample(style) for style in styles]
    else:  # label masks: regions of the (first) style image
        references = [grading.pixel_sample(styles[0], weight=mask) if float(mask.sum()) > 0
                      else grading.pixel_sample(styles[0]) for mask in style_masks]  # fmt: skip
    return grading.grade_to(content, references, masks).clamp(0, 1)
