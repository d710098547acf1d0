"""Progress events sent by long-running methods, and cancellation.

A method calls ``progress(event)`` after each step; returning ``False`` from the callback asks the
method to stop, which then raises ``impasto.errors.Cancelled``. The library never prints: the CLI
turns events into a progress bar, the web app into messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .errors import Cancelled


@dataclass
class ProgressEvent:
    """One step of a long job.

    ``step`` counts from 1 to ``total`` over the whole job (all scales); ``stage`` names the
    current phase (e.g. "scale 2/3 (512 px)"); ``losses`` holds the latest loss terms;
    ``image`` is set (a (1, 3, H, W) tensor in [0, 1] on the CPU) only when a preview was asked for.
    """

    stage: str
    step: int
    total: int
    losses: dict[str, float] = field(default_factory=dict)
    image: torch.Tensor | None = None


ProgressCallback = Callable[[ProgressEvent], "bool | None"]


def report(callback: ProgressCallback | None, event: ProgressEvent) -> None:
    """Send ``event``; raise Cancelled when the callback returns False."""
    if callback is not None and callback(event) is False:
        raise Cancelled(f"cancelled at step {event.step} of {event.total}")
