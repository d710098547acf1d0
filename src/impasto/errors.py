"""Exceptions raised by the library. The CLI maps each to one line on stderr and exit code 2."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class ImpastoError(Exception):
    """Base class for every error a user can cause and fix (bad input, missing weights, ...)."""


class InputError(ImpastoError):
    """An input file or option value is unusable: missing, unreadable, too large, out of range."""


class WeightsError(ImpastoError):
    """Model weights are missing, corrupt, or cannot be fetched (offline, network, checksum)."""


class Cancelled(ImpastoError):
    """The caller asked a long-running job to stop (progress callback returned False / Ctrl-C).

    ``partial``: what the job had made so far (a StyleResult holding the best image yet), or
    None; see :func:`partial_kept_on_stop`.
    """

    partial: Any = None


@contextlib.contextmanager
def partial_kept_on_stop(so_far: Callable[[], Any]) -> Iterator[None]:
    """Give a stop the work done so far: when the block ends by Cancelled, Ctrl-C
    (KeyboardInterrupt) or another signal-like BaseException (not an ordinary error), the
    exception gets ``partial = so_far()`` and is re-raised unchanged."""
    try:
        yield
    except BaseException as stop:
        if isinstance(stop, Exception) and not isinstance(stop, Cancelled):
            raise
        try:
            stop.partial = so_far()
        except Exception:  # keeping the partial work must never hide the stop itself
            stop.partial = None
        raise


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name when the message is empty): for
    a third-party error retold in one line."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
