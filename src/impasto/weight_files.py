"""Reading a weights file safely: safetensors, or a torch checkpoint of tensors only.

Never unpickles arbitrary objects (``torch.load(weights_only=True)``), refuses TorchScript
archives (programs, not state dicts), and says what is wrong in impasto's own words (not
torch's advice to load the file with ``weights_only=False``). ``impasto.weights`` re-exports
both functions: where weights come from is there, how a file is read is here.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import WeightsError, first_line

if TYPE_CHECKING:
    import torch

__all__ = ["is_torchscript_archive", "load_state_dict"]


def is_torchscript_archive(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a zip holding TorchScript code (``*/code/`` or ``constants.pkl``)."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return any(
                "/code/" in name or name.endswith("/constants.pkl") for name in archive.namelist()
            )
    except (OSError, zipfile.BadZipFile):
        return False


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict of tensors on the CPU, safely (never unpickles arbitrary objects).

    ``.safetensors`` files go through :func:`safetensors.torch.load_file`; anything else through
    ``torch.load(..., weights_only=True)``. Raises WeightsError naming the file on any failure.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if is_torchscript_archive(path):
        # torch.load(weights_only=True) would hand such a file to torch.jit.load.
        raise WeightsError(
            f"{path} is not a weights file: it is a TorchScript archive (a program, not a state "
            "dict); impasto does not load those from unknown sources"
        )
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # Not torch's message: it advises loading the file with weights_only=False.
        raise WeightsError(
            f"{path} holds pickled Python objects besides tensors; impasto loads only state "
            "dicts of tensors and will not run a pickle's code: save the weights as safetensors"
        ) from error
    except Exception as error:
        reason = first_line(error)
        raise WeightsError(
            f"{path} is not a weights file or corrupt ({type(error).__name__}: {reason})"
        ) from error
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise WeightsError(
            f"{path} is not a weights file or corrupt: expected a state dict of named tensors, "
            f"got {type(state).__name__}"
        )
    return dict(state)
