"""Progress events sent by long-running work, and cancellation.

Everything long (a download, a method's optimisation steps, a folder of images, a training run)
calls ``progress(event)``; returning ``False`` from the callback asks the work to stop, which
then raises ``impasto.errors.Cancelled``. The library never prints: the CLI turns events into
progress bars and lines; any other front end decides how to show them.

Kinds of event (``event.kind``):

- ``download``: weights are being fetched; ``step``/``total`` are bytes, ``stage`` names them.
- ``stage``: a phase begins (``stage`` names it: "loading model", "scale 2/3 (512 px)", ...).
- ``step``: one step of a method or of training; ``step`` counts from 1 to ``total`` over the
  whole job, ``losses`` holds the latest loss terms, ``image`` a preview when one was asked for.
- ``item``: one input of a batch is finished (written or skipped); ``step``/``total`` count
  items, ``item`` names it, ``skipped`` holds the reason when it was skipped.
- ``done``: the job is finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import Cancelled

if TYPE_CHECKING:  # events carry tensors, but reading this module must not import torch
    import torch

EVENT_KINDS: tuple[str, ...] = ("download", "stage", "step", "item", "done")


@dataclass
class ProgressEvent:
    """One event of a long job (see the module docstring for what each field means per kind).

    ``image`` is set (a (1, 3, H, W) tensor in [0, 1] on the CPU) only when a preview was asked
    for.
    """

    stage: str
    step: int
    total: int
    losses: dict[str, float] = field(default_factory=dict)
    image: torch.Tensor | None = None
    kind: str = "step"
    item: str = ""
    skipped: str = ""

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}; one of {EVENT_KINDS}")


ProgressCallback = Callable[[ProgressEvent], "bool | None"]


def report(callback: ProgressCallback | None, event: ProgressEvent) -> None:
    """Send ``event``; raise Cancelled when the callback returns False."""
    if callback is not None and callback(event) is False:
        what = f"{event.kind} {event.step} of {event.total}" if event.total else event.kind
        raise Cancelled(f"cancelled at {what}")
