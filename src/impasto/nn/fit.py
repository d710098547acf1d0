"""Do weights fit a network? Checked before the network is built.

A model folder from the internet says in its config how large a network to build; building
it first and loading the weights after would let that config allocate any amount of memory.
Here the network is built on PyTorch's meta device (shapes only, no storage) and its tensor
names and shapes are compared with the weights', whose size the file on disk already bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

__all__ = ["weights_misfit"]


def weights_misfit(build: Callable[[], nn.Module], state: Mapping[str, torch.Tensor]) -> str:
    """How ``state`` fails to fit the module ``build()`` makes, in a few words ("" when it fits
    exactly: the same names, each with the same shape). ``build`` runs on the meta device."""
    with torch.device("meta"):
        module = build()
    wanted = {name: tuple(value.shape) for name, value in module.state_dict().items()}
    given = {name: tuple(value.shape) for name, value in state.items()}
    missing = sorted(set(wanted) - set(given))
    extra = sorted(set(given) - set(wanted))
    wrong = sorted(name for name in set(wanted) & set(given) if wanted[name] != given[name])
    if missing:
        first = f"'{missing[0]}' is missing"
    elif extra:
        first = f"'{extra[0]}' is not part of the network"
    elif wrong:
        name = wrong[0]
        first = (
            f"'{name}' has shape {list(given[name])} where the network needs {list(wanted[name])}"
        )
    else:
        return ""
    more = len(missing) + len(extra) + len(wrong) - 1
    return first + (f" (and {more} more)" if more else "")
