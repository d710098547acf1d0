"""Exceptions raised by the library. The CLI maps each to one line on stderr and exit code 2."""


class ImpastoError(Exception):
    """Base class for every error a user can cause and fix (bad input, missing weights, ...)."""


class InputError(ImpastoError):
    """An input file or option value is unusable: missing, unreadable, too large, out of range."""


class WeightsError(ImpastoError):
    """Model weights are missing, corrupt, or cannot be fetched (offline, network, checksum)."""


class Cancelled(ImpastoError):
    """The caller asked a long-running job to stop (progress callback returned False / Ctrl-C)."""
