"""How an image was made: the provenance record impasto writes into every image it makes.

A record is one JSON object::

    {"format": "impasto-provenance", "format_version": 1,
     "impasto_version": "0.1.0", "torch_version": "2.13.0",
     "method": "gatys",
     "settings": {...},      # every field of the method's config (GatysConfig, FastConfig, ...)
     "seed": 0,              # the settings' seed; null for methods without one
     "backbone": "efficientnet-lite0",   # feature network (fast: the loss network it was
                                         # trained with); "" when there is none
     "model": {"name": ..., "path": ..., "shipped": false, "sha256": ...},  # or null
     "device": "cpu",
     "inputs": {"content": {"path": "/abs/photo.jpg", "sha256": ...}, "styles": [...]},
     "output": {"width": 512, "height": 384}}

- ``settings`` hold what ran, not what was typed: the backbone ``auto`` chose, a model's
  absolute path (a shipped model: its name), a local weights file's absolute path.
- ``model.sha256`` is the sha256 of the model folder's ``model.safetensors``.
- An input that was not a file (a tensor, a PIL image or an array passed from Python) has
  ``path`` and ``sha256`` null.
- ``step`` (only in a preview or a stopped run's image): the step it was taken at.
- No time stamp: the same run gives the same file, byte for byte.

impasto.images.save_image embeds the record (PNG iTXt ``impasto``, JPEG/WebP EXIF UserComment,
TIFF ImageDescription); on request a sidecar holds it too: ``OUT.png.json`` (SIDECAR_SUFFIX after
the whole name, so ``out.png`` and ``out.jpg`` never share one). ``read_record`` reads either.
``recorded_settings``, ``recorded_file``, ``recorded_styles`` and ``recorded_model`` give what a
record names, checked to be still there and unchanged (sha256), for ``impasto stylize --from``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .errors import InputError
from .files import atomic_write, resolved, sha256_of
from .images.encode import read_metadata
from .model_folder import MODELS_DIR, WEIGHTS_FILE, find_model

FORMAT = "impasto-provenance"
FORMAT_VERSION = 1
SIDECAR_SUFFIX = ".json"
MAX_SIDECAR_BYTES = 1_000_000  # a record is a few kB; anything larger is not one


def describe_file(path: str | os.PathLike | None) -> dict[str, str | None]:
    """``{"path": absolute path, "sha256": hex digest}`` of an input file; both None when
    ``path`` is None or not a file (an image that came from memory)."""
    if path is None or not Path(path).expanduser().is_file():
        return {"path": None, "sha256": None}
    absolute = resolved(Path(path).expanduser())
    return {"path": str(absolute), "sha256": sha256_of(absolute)}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, os.PathLike):
        return str(value)
    return str(value)


MODEL_FIELDS: tuple[str, ...] = ("model", "decoder")
"""Config fields that name a trained model folder (fast's model, adain's and wct's decoders)."""


def _model_folder(config: Any) -> Path | None:
    for name in MODEL_FIELDS:
        value = getattr(config, name, None)
        if value is not None:  # a loaded model (FastModel, DecoderModel) has .path
            return find_model(getattr(value, "path", value))
    return None


def settings_of(config: Any) -> dict[str, Any]:
    """Every field of ``config`` (a method's config dataclass) as JSON values: a model as its
    shipped name or absolute folder, PATH options (local weights) as absolute paths."""
    if config is None or not dataclasses.is_dataclass(config):
        return {}
    settings: dict[str, Any] = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if item.name in MODEL_FIELDS and value is not None:
            folder = _model_folder(config)
            shipped = folder.resolve().parent == MODELS_DIR.resolve()
            value = folder.name if shipped else str(resolved(folder))
        elif item.metadata.get("metavar") == "PATH" and value:
            value = str(resolved(Path(value).expanduser()))
        settings[item.name] = _json_value(value)
    return settings


def model_of(config: Any) -> dict[str, Any] | None:
    """The model folder ``config`` uses (name, absolute path, shipped or not, sha256 of its
    weights), or None for methods without one."""
    folder = _model_folder(config)
    if folder is None:
        return None
    weights = folder / WEIGHTS_FILE
    return {
        "name": folder.name,
        "path": str(resolved(folder)),
        "shipped": folder.resolve().parent == MODELS_DIR.resolve(),
        "sha256": sha256_of(weights) if weights.is_file() else None,
    }


@dataclass
class Recipe:
    """What a prepared method records for every image it makes: everything but the content
    and the output size. ``styles``: ``describe_file`` of each style image. The model's
    sha256 is read once, when the recipe is made."""

    method: str
    config: Any
    backbone: str = ""
    device: str = ""
    styles: list[dict[str, Any]] = field(default_factory=list)
    model: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = model_of(self.config)

    def record(
        self,
        content: Mapping[str, Any] | None,
        width: int,
        height: int,
        *,
        step: int | None = None,
    ) -> dict[str, Any]:
        """The whole record of one image made from ``content`` (``describe_file``), of
        ``width`` x ``height`` pixels. ``step``: for an image taken before the end (a preview,
        a stopped run), the step it was taken at, recorded as ``"step"``."""
        settings = settings_of(self.config)
        record = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "impasto_version": __version__,
            "torch_version": str(torch.__version__),
            "method": self.method,
            "settings": settings,
            "seed": settings.get("seed"),
            "backbone": self.backbone or "",
            "model": self.model,
            "device": self.device,
            "inputs": {
                "content": dict(content or describe_file(None)),
                "styles": [dict(style) for style in self.styles],
            },
            "output": {"width": int(width), "height": int(height)},
        }
        if step is not None:
            record["step"] = int(step)
        return record


# --------------------------------------------------------------------------- files


def sidecar_path(output: str | os.PathLike) -> Path:
    """Where the sidecar of ``output`` goes: ``out.png`` -> ``out.png.json``."""
    output = Path(output)
    return output.with_name(output.name + SIDECAR_SUFFIX)


def write_sidecar(output: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``record`` as indented JSON next to ``output`` (atomically); return its path."""
    path = sidecar_path(output)
    text = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    atomic_write(path, lambda handle: handle.write(text))
    return path


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """The record of an image impasto wrote: embedded in the file, else in its sidecar; or
    ``path`` may be the sidecar itself (``.json``). InputError when there is none."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if not path.is_file():
        raise InputError(f"{path} is not a file")
    if path.suffix.lower() == SIDECAR_SUFFIX:
        return parse_record(_read_sidecar(path), path)
    text = read_metadata(path)
    if text is None:
        sidecar = sidecar_path(path)
        if not sidecar.is_file():
            raise InputError(
                f"{path} holds no impasto record (it was not written by impasto, or its "
                f"metadata was removed), and there is no sidecar {sidecar.name} beside it"
            )
        return parse_record(_read_sidecar(sidecar), sidecar)
    return parse_record(text, path)


def _read_sidecar(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            raise InputError(f"{path} is too large to be an impasto record")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}") from None


def parse_record(text: str, where: str | os.PathLike = "the record") -> dict[str, Any]:
    """A record from its JSON text, checked for what ``--from`` and ``info`` rely on."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: the impasto record is not valid JSON ({error})") from None
    except RecursionError:
        raise InputError(f"{where}: the record is nested too deeply") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError(f"{where} holds no impasto record (metadata of another program)")
    version = record.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(
            f"{where}: record format version {version!r}; this impasto reads up to "
            f"{FORMAT_VERSION} (upgrade impasto)"
        )
    if not isinstance(record.get("method"), str) or not isinstance(record.get("settings"), dict):
        raise InputError(f"{where}: the record has no method or settings")
    inputs = record.get("inputs")
    if not isinstance(inputs, dict) or not isinstance(inputs.get("styles", []), list):
        raise InputError(f"{where}: the record's inputs are malformed")
    return record


# --------------------------------------------------------------------------- re-running


def recorded_file(entry: Any, what: str, origin: str | os.PathLike) -> Path:
    """The file a record names for ``what`` ("the content image", "style image 2"), if it
    still exists with the recorded sha256; else InputError saying why and what to do."""
    path = entry.get("path") if isinstance(entry, dict) else None
    hint = f"give the images after --from {origin}"
    if not isinstance(path, str) or not path:
        raise InputError(f"{what} of {origin} was not a file (it came from Python); {hint}")
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{what} of {origin}, {file}, no longer exists; {hint}")
    expected = entry.get("sha256")
    if isinstance(expected, str) and sha256_of(file) != expected:
        raise InputError(
            f"{what} of {origin}, {file}, has changed since (its sha256 differs); {hint}"
        )
    return file


def recorded_styles(record: Mapping[str, Any], origin: str | os.PathLike) -> list[Path]:
    """The recorded style image files, each checked by ``recorded_file``."""
    styles = record["inputs"].get("styles", [])
    if not styles:
        raise InputError(f"{origin} records no style image; give the images after --from")
    files = []
    for index, style in enumerate(styles):
        name = "the style image" if len(styles) == 1 else f"style image {index + 1}"
        files.append(recorded_file(style, name, origin))
    return files


def recorded_model(
    record: Mapping[str, Any], origin: str | os.PathLike, field: str = "model"
) -> str | None:
    """The recorded ``model`` (or ``decoder``: ``field``) setting, if that model is still there
    with the recorded sha256 of its weights; else InputError (``--model`` or ``--decoder``
    then chooses one)."""
    setting = record["settings"].get(field)
    facts = record.get("model")
    if setting is None or not isinstance(facts, dict):
        return setting
    try:
        folder = find_model(setting)
    except InputError:
        raise InputError(
            f"the {field} of {origin}, {setting}, is not found; give --{field} to choose one"
        ) from None
    expected = facts.get("sha256")
    weights = folder / WEIGHTS_FILE
    if isinstance(expected, str) and (not weights.is_file() or sha256_of(weights) != expected):
        raise InputError(
            f"the {field} of {origin}, {setting}, has changed since (the sha256 of its "
            f"{WEIGHTS_FILE} differs); give --{field} to use it anyway"
        )
    return str(setting)


def recorded_settings(
    record: Mapping[str, Any], config_class: type, origin: str | os.PathLike
) -> dict[str, Any]:
    """The record's settings as options of ``config_class``; InputError naming any setting
    this impasto's method does not have (a record from another version)."""
    names = {item.name for item in dataclasses.fields(config_class)}
    settings = dict(record["settings"])
    # Options added after records were first written: a record without one was made with the
    # value that reproduces it (e.g. gatys's step_decay 1.0), not with today's default.
    for name, value in getattr(config_class, "BEFORE_IT_EXISTED", {}).items():
        settings.setdefault(name, value)
    unknown = sorted(set(settings) - names)
    if unknown:
        made_with = record.get("impasto_version", "another version")
        raise InputError(
            f"{origin} records option(s) that method '{record['method']}' of this impasto does "
            f"not have: {', '.join(unknown)} (made with impasto {made_with})"
        )
    return settings
