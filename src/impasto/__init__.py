"""impasto: neural style transfer toolkit.

Importing this package imports no method, no optional dependency, and touches no disk or network:
the public names below are loaded on first use. It does set GOMP_SPINCOUNT, unless the user
chose how OpenMP threads wait, so that torch's idle CPU threads soon sleep (impasto.threads).
"""

__version__ = "0.1.0"

import sys as _sys

from .threads import choose_wait_policy as _choose_wait_policy

if "torch" not in _sys.modules:  # before torch starts its thread pool: impasto.threads
    _choose_wait_policy()

_LAZY = {
    "stylize": "impasto.api",
    "METHOD_CHOICES": "impasto.methods.registry",
    "StyleResult": "impasto.methods.base",
    "load_image": "impasto.images",
    "save_image": "impasto.images",
    "load_backbone": "impasto.backbones",
    "ImpastoError": "impasto.errors",
    "InputError": "impasto.errors",
    "WeightsError": "impasto.errors",
    "Cancelled": "impasto.errors",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'impasto' has no attribute {name!r}")
