"""Trained models as folders: ``config.json`` + ``model.safetensors`` + ``metadata.json``.

- ``config.json``: what is needed to rebuild the network: ``{"format": "impasto-model",
  "format_version": 1, "method": ..., "network": {...}}``.
- ``model.safetensors``: the weights (never a pickle: a folder holding only ``.pt``, ``.pth``,
  ``.bin``, ``.ckpt`` or ``.pkl`` weights is refused, as safetensors cannot run code).
- ``metadata.json``: provenance (style image sha256 and size, backbone, training settings,
  data description, impasto version, licence).

Each file is written to a temporary name and renamed into place, ``config.json`` last, so a
crash never leaves a half-written model that looks complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import InputError
from .files import MIN_FREE_BYTES, atomic_write, check_writable, make_folders

FORMAT = "impasto-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
PICKLE_SUFFIXES: tuple[str, ...] = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
MODELS_DIR = Path(__file__).resolve().parent / "models"
"""Models shipped inside the package: ``--model NAME`` finds ``MODELS_DIR / NAME``."""


@dataclass
class ModelFolder:
    """A loaded model folder: its config, weights (float32, CPU) and metadata."""

    path: Path
    method: str
    network: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any]


def shipped_models(method: str | None = None) -> list[str]:
    """Names of the models shipped inside the package (of ``method``, when given)."""
    if not MODELS_DIR.is_dir():
        return []
    names = []
    for folder in sorted(MODELS_DIR.iterdir()):
        config = folder / CONFIG_FILE
        if not config.is_file():
            continue
        if method is not None:
            try:
                if json.loads(config.read_text(encoding="utf-8")).get("method") != method:
                    continue
            except (OSError, ValueError):
                continue
        names.append(folder.name)
    return names


def find_model(model: str | os.PathLike) -> Path:
    """The folder of ``model``: a path, or the name of a shipped model; InputError if neither."""
    path = Path(model).expanduser()
    if not path.exists() and str(model) in shipped_models():
        path = MODELS_DIR / str(model)
    if not path.exists():
        shipped = ", ".join(shipped_models()) or "none in this installation"
        raise InputError(
            f"model not found: {model} (a model folder, or a shipped model: {shipped})"
        )
    return path


def check_destination(folder: str | os.PathLike, *, min_free: int = MIN_FREE_BYTES) -> Path:
    """Raise InputError unless ``folder`` can become a model folder: it is missing (it and its
    parents are created when written), empty, or already a model folder (``config.json`` or
    ``training/`` in it); and it (or, while missing, its nearest existing parent) takes a new
    file now, on a disk with ``min_free`` bytes free (impasto.files.check_writable). Cheap:
    call it before the slow work, so a read-only or full disk is found then, not after."""
    target = Path(folder)
    blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise InputError(f"cannot create {target}: {blocker} is a file")
    if target.exists():
        if not target.is_dir():
            raise InputError(f"{target} exists and is not a folder")
        ours = (target / CONFIG_FILE).is_file() or (target / "training").is_dir()
        if not ours and any(target.iterdir()):
            raise InputError(f"{target} exists and is not an impasto model folder; choose another")
    what = f"the model folder '{target}'"
    check_writable(target / CONFIG_FILE, parents=True, min_free=min_free, what=what)
    return target


def save_model_folder(
    folder: str | os.PathLike,
    method: str,
    network: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write (or replace) the three files of a model folder, each atomically: the weights and
    metadata first, ``config.json`` last, so a folder with a config is always complete.

    ``dtype``: the stored precision of floating-point weights (float16 halves the size).
    Other files in the folder (e.g. ``training/``) are left alone.
    """
    from safetensors.torch import save

    # Free space is not asked for here: the run is done, and a write that fits must not fail.
    target = make_folders(check_destination(folder, min_free=0))
    tensors = {
        name: (value.to(dtype) if value.is_floating_point() else value).detach().cpu().contiguous()
        for name, value in state_dict.items()
    }
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "method": method,
              "network": network}  # fmt: skip
    # Serialised in memory, then written by Python: safetensors' own writer reports a full disk
    # as a SafetensorError, which would not say "No space left on device" in one line.
    weights = save(tensors)
    atomic_write(target / WEIGHTS_FILE, lambda handle: handle.write(weights))
    for name, value in ((METADATA_FILE, metadata), (CONFIG_FILE, config)):  # config last
        text = (json.dumps(value, indent=2) + "\n").encode("utf-8")
        atomic_write(target / name, lambda handle, text=text: handle.write(text))
    return target


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is unreadable or not JSON ({error})") from error
    except RecursionError:
        raise InputError(f"{path} is nested too deeply to be an impasto file") from None
    if not isinstance(value, dict):
        raise InputError(f"{path} must hold a JSON object")
    return value


def read_method(folder: str | os.PathLike) -> str:
    """The method a model folder belongs to (its config.json's ``method``), without loading
    the weights; InputError when it is not a model folder."""
    path = Path(folder)
    if not (path / CONFIG_FILE).is_file():
        load_model_folder(path)  # says what is wrong (no folder, a pickle, ...)
        raise InputError(f"{path} is not a model folder: {CONFIG_FILE} is missing")
    config = _read_json(path / CONFIG_FILE)
    if config.get("format") != FORMAT:
        raise InputError(f"{path / CONFIG_FILE} is not an impasto model config")
    return str(config.get("method"))


def load_model_folder(folder: str | os.PathLike, method: str | None = None) -> ModelFolder:
    """Validate and load a model folder; ``method`` (if given) must match its config.

    Raises InputError naming the problem: missing folder or files, a pickle instead of
    safetensors, an unknown format version, corrupt weights.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"model folder not found: {path}")
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise InputError(
                f"{path} holds {pickles[0]}, a pickle; impasto loads only {WEIGHTS_FILE} "
                "(pickles can run code). Convert it with safetensors first"
            )
        raise InputError(f"{path} is not a model folder: {WEIGHTS_FILE} is missing")
    if not (path / CONFIG_FILE).is_file():
        raise InputError(f"{path} is not a model folder: {CONFIG_FILE} is missing")
    config = _read_json(path / CONFIG_FILE)
    if config.get("format") != FORMAT:
        raise InputError(f"{path / CONFIG_FILE} is not an impasto model config")
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise InputError(f"{path / CONFIG_FILE}: 'format_version' must be a whole number")
    if version != FORMAT_VERSION:
        raise InputError(
            f"{path} has model format version {config.get('format_version')!r}; this impasto "
            f"reads version {FORMAT_VERSION} (upgrade impasto)"
        )
    if method is not None and config.get("method") != method:
        raise InputError(f"{path} is a '{config.get('method')}' model, not a '{method}' model")
    if not isinstance(config.get("network"), dict):
        raise InputError(f"{path / CONFIG_FILE}: 'network' must be an object")
    metadata = _read_json(path / METADATA_FILE) if (path / METADATA_FILE).is_file() else {}
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"{weights} is corrupt ({error})") from error
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    finite = (v.isfinite().all() for v in state.values() if v.is_floating_point())
    broken = not all(finite)
    if broken:
        raise InputError(f"{weights} holds weights that are not finite (NaN or infinity)")
    return ModelFolder(path, str(config["method"]), config["network"], state, metadata)
