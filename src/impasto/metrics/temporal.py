"""Temporal consistency of a stylised clip: the warping error, and the same for the input clip.

Definition (the short-term warping error of Lai et al. 2018, "Learning Blind Video Temporal
Consistency", on the reliable pixels of Ruder et al. 2016): for each pair of consecutive frames
t-1, t, the motion ``m = impasto.flow.motion_between(input[t-1], input[t])`` (the one fixed
flow, ``TEMPORAL_FLOW``: OpenCV DIS, preset "medium", full resolution) is computed on the
*input* frames, and

    d_t = mean_over_channels((out_t - warp(out_{t-1}, m.flow))^2)
    e_t = sum(m.reliable * d_t) / sum(m.reliable)

in [0, 1]^2 units (images in [0, 1]); the warping error is the mean of e_t over the pairs. The
same figure for the input frames themselves (``input``) is the baseline: flicker-free output
scores about what the input scores (``ratio`` near 1); frames stylised one by one score higher.

When the output frames have another size than the input frames (stylised at another
resolution), the input frames are resized to the output's size (bilinear, antialiased) before
the flow, so the error is measured at the output's resolution, the baseline too.

Frames: (3, H, W) or (1, 3, H, W) float tensors in [0, 1]. ``WarpingError`` takes them one pair
at a time and keeps only the previous input and output, so memory does not grow with the clip.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import InputError
from .base import MetricUndefined, size_text

TEMPORAL_FLOW = "opencv-dis-medium"
"""The flow every warping error is computed with: ``impasto.flow.motion_between`` with
preset "medium" at scale 1.0 (full resolution)."""

STILL = 1e-8
"""An input warping error below this is a still clip's (about one 8-bit step on 0.1% of the
pixels): no ratio is given against it."""

ASPECT_TOLERANCE = 0.01
"""Output and input frames may differ in size but not in aspect ratio (beyond 1%, or beyond
the rounding of a side to whole pixels)."""


@dataclass
class TemporalReport:
    """What ``warping_error`` measured.

    output: the warping error of the output frames (mean over pairs, [0, 1]^2 units; lower is
    steadier); input: the same for the input frames (the baseline); ratio: output / input
    (None when the input's error is below ``STILL``: a still clip); pairs: the frame pairs averaged;
    reliable_fraction: the mean share of pixels the flow check marked reliable; flow: the flow
    method (``TEMPORAL_FLOW``); per_pair_output, per_pair_input: e_t for t = 1, 2, ... (None
    for a pair with no reliable pixel, e.g. a scene cut; such pairs are left out of the means).
    """

    output: float
    input: float
    ratio: float | None
    pairs: int
    reliable_fraction: float
    flow: str = TEMPORAL_FLOW
    per_pair_output: list[float | None] = field(default_factory=list)
    per_pair_input: list[float | None] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "warping_error": self.output,
            "input_warping_error": self.input,
            "ratio": self.ratio,
            "flow": self.flow,
            "pairs": self.pairs,
            "reliable_fraction": self.reliable_fraction,
            "per_pair": {"output": list(self.per_pair_output), "input": list(self.per_pair_input)},
        }


def _frame(frame: Any, what: str) -> torch.Tensor:
    """``frame`` as a (1, 3, H, W) float tensor; InputError naming ``what`` otherwise."""
    if not isinstance(frame, torch.Tensor):
        raise InputError(f"{what} must be a torch.Tensor, got {type(frame).__name__}")
    if frame.dim() == 3:
        frame = frame[None]
    if frame.dim() != 4 or frame.shape[0] != 1 or frame.shape[1] != 3:
        raise InputError(
            f"{what} must have shape (3, H, W) or (1, 3, H, W), got {tuple(frame.shape)}"
        )
    if not frame.is_floating_point():
        raise InputError(f"{what} must be a float tensor in [0, 1], got {frame.dtype}")
    return frame.detach().float().cpu()


def same_aspect(size: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether two (height, width) sizes have the same aspect ratio, within
    ``ASPECT_TOLERANCE`` or the rounding of either side of ``other`` to whole pixels."""
    (height, width), (other_h, other_w) = size, other
    if abs((width / height) / (other_w / other_h) - 1) <= ASPECT_TOLERANCE:
        return True
    rounded_h = abs(other_h - other_w * height / width) <= 1
    return rounded_h or abs(other_w - other_h * width / height) <= 1


def _masked_error(current: torch.Tensor, warped: torch.Tensor, reliable: torch.Tensor) -> float:
    """sum(reliable * mean_c((current - warped)^2)) / sum(reliable), in float64."""
    squared = (current.double() - warped.double()).square().mean(dim=1, keepdim=True)
    return float((reliable.double() * squared).sum() / reliable.double().sum())


class WarpingError:
    """The warping error, accumulated one frame at a time: ``add(output, input)`` for each frame
    in order, then ``report()``. Keeps only the previous frames."""

    def __init__(self) -> None:
        self.frames = 0
        self._previous: tuple[torch.Tensor, torch.Tensor] | None = None
        self._sizes: tuple[torch.Size, torch.Size] | None = None
        self._outputs: list[float | None] = []
        self._inputs: list[float | None] = []
        self._reliable: list[float] = []

    def add(self, output: torch.Tensor, source: torch.Tensor) -> None:
        """The next frame of the output clip and the frame of the input clip it was made from."""
        from ..flow import motion_between

        index = self.frames
        output = _frame(output, f"output frame {index}")
        source = _frame(source, f"input frame {index}")
        sizes = (output.shape[-2:], source.shape[-2:])
        if self._sizes is None:
            if not same_aspect(tuple(sizes[1]), tuple(sizes[0])):
                raise InputError(
                    f"output frames ({size_text(output)}) and input frames ({size_text(source)}) "
                    "have different aspect ratios; score a clip against the clip it was made from"
                )
            self._sizes = sizes
        for what, size, first in zip(("output", "input"), sizes, self._sizes, strict=True):
            if size != first:
                raise InputError(
                    f"{what} frame {index} is {size[1]}x{size[0]}, but frame 0 was "
                    f"{first[1]}x{first[0]}; a clip's frames must all have one size"
                )
        if source.shape[-2:] != output.shape[-2:]:
            # The flow on the input at the output's size: the error at the output's resolution.
            size = tuple(output.shape[-2:])
            source = F.interpolate(source, size, mode="bilinear", antialias=True).clamp(0, 1)
        if self._previous is not None:
            previous_output, previous_input = self._previous
            motion = motion_between(previous_input, source, preset="medium", scale=1.0)
            reliable = motion.reliable
            self._reliable.append(float(reliable.mean()))
            if float(reliable.sum()) == 0:
                self._outputs.append(None)
                self._inputs.append(None)
            else:
                self._outputs.append(_masked_error(output, motion.warp(previous_output), reliable))
                self._inputs.append(_masked_error(source, motion.warp(previous_input), reliable))
        self._previous = (output, source)
        self.frames += 1

    def report(self) -> TemporalReport:
        """The means so far. InputError with fewer than 2 frames; MetricUndefined when no pair
        had a reliable pixel."""
        if self.frames < 2:
            raise InputError(
                f"the warping error needs at least 2 frames, got {self.frames}; "
                "it measures change between consecutive frames"
            )
        pairs = zip(self._outputs, self._inputs, strict=True)
        measured = [(out, source) for out, source in pairs if out is not None]
        if not measured:
            raise MetricUndefined(
                f"no pixel of any of the {len(self._outputs)} frame pairs has a reliable flow "
                "(every pair looks like a scene cut); the warping error is undefined"
            )
        output = sum(out for out, _ in measured) / len(measured)
        source = sum(source for _, source in measured) / len(measured)
        return TemporalReport(
            output=output,
            input=source,
            ratio=output / source if source > STILL else None,
            pairs=len(measured),
            reliable_fraction=sum(self._reliable) / len(self._reliable),
            per_pair_output=list(self._outputs),
            per_pair_input=list(self._inputs),
        )


def warping_error(
    outputs: Iterable[torch.Tensor], inputs: Iterable[torch.Tensor]
) -> TemporalReport:
    """The warping error of the ``outputs`` frames, made from the ``inputs`` frames (see the
    module docstring), streaming: frames are read one at a time and only the previous pair is
    kept. Each frame (3, H, W) or (1, 3, H, W) float in [0, 1]; the outputs may have another
    size than the inputs (same aspect ratio). InputError when there are fewer than 2 frames or
    the two sequences differ in length."""
    accumulator = WarpingError()
    output_frames, input_frames = iter(outputs), iter(inputs)
    end = object()
    while True:
        output = next(output_frames, end)
        source = next(input_frames, end)
        if output is end or source is end:
            if output is not source:  # one ended first
                longer, shorter = ("outputs", "inputs") if source is end else ("inputs", "outputs")
                raise InputError(
                    f"the {shorter} have {accumulator.frames} frames and the {longer} more; "
                    "score a clip against the clip it was made from, frame for frame"
                )
            break
        accumulator.add(output, source)
    return accumulator.report()
