"""The page's forms, built from the method table and the methods' config dataclasses (so the
studio's defaults and help cannot drift from the CLI's), and a job request checked and typed.

A request is checked in the web process with the library's own checks (``pipeline.make_config``
and the trainer's config), so a bad value is a 422 with the same message the CLI gives, before
anything is queued.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import validate_config, without_none
from ..errors import InputError
from ..methods.registry import (
    DEFAULT_METHOD,
    METHODS,
    TRAINING_KINDS,
    load_method,
    load_trainer,
    missing_requirement,
)

HIDDEN: frozenset[str] = frozenset(
    {"save_every", "mask", "model", "content_mask", "style_mask", "keep", "max_memory"}
)
"""Fields the studio sets itself (previews; the model has its own menu) or does not offer yet
(region masks, photo's label masks: they would need uploads of their own)."""
MAIN: frozenset[str] = frozenset(
    {"size", "steps", "style_weight", "content_weight", "preserve_color", "alpha", "strength",
     "mode", "style_blend"}
)  # fmt: skip
"""Fields shown at once; the others sit under "advanced"."""
PREVIEWING: frozenset[str] = frozenset({"gatys"})
"""Methods whose image forms step by step (the studio asks them for previews)."""
PREVIEWS_PER_SCALE = 8
"""How many previews an optimising method sends at each of its scales."""
TEMPORAL_DEFAULT = 0.6


def describe_field(field: dataclasses.Field, kind: Any) -> dict[str, Any]:
    meta = field.metadata
    base = without_none(kind)
    if meta.get("choices"):
        type_name = "choice"
    elif base is bool:
        type_name = "bool"
    elif base is int:
        type_name = "int"
    elif base is float:
        type_name = "float"
    else:
        type_name = "text"
    default = None if field.default is dataclasses.MISSING else field.default
    if field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    if type_name == "text" and default is not None and not isinstance(default, str):
        default = _as_text(default)
    return {
        "name": field.name,
        "label": field.name.replace("_", " "),
        "type": type_name,
        "default": default,
        "default_text": meta.get("default_text"),
        "help": meta.get("help", ""),
        "choices": list(meta["choices"]) if meta.get("choices") else None,
        "min": meta.get("min"),
        "max": meta.get("max"),
        "advanced": field.name not in MAIN,
    }


def describe_config(config_class: type) -> list[dict[str, Any]]:
    hints = typing.get_type_hints(config_class)
    return [
        describe_field(field, hints[field.name])
        for field in dataclasses.fields(config_class)
        if field.name not in HIDDEN and field.metadata.get("cli", True)
    ]


def describe_methods(trained: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Every method of the table, with whether it can run here and why not; ``trained``: the
    models the studio trained, by method (offered after the shipped ones)."""
    from ..model_folder import shipped_models

    methods = []
    for name, row in METHODS.items():
        why = missing_requirement(name)
        fields = [] if why else describe_config(load_method(name).config_class)
        methods.append({
            "name": name, "summary": row.summary, "available": why is None, "why": why,
            "takes_styles": row.takes_styles, "takes_model": row.takes_model,
            "models": [*shipped_models(name), *(trained or {}).get(name, [])]
            if row.takes_model else [],
            "previews": name in PREVIEWING, "fields": fields,
            "default": name == DEFAULT_METHOD,
        })  # fmt: skip
    return methods


def describe_trainings() -> list[dict[str, Any]]:
    kinds = []
    for name, row in TRAINING_KINDS.items():
        try:
            trainer = load_trainer(name)
        except InputError:
            continue
        required = getattr(trainer, "required_inputs", trainer.training_inputs)
        kinds.append({
            "kind": name, "summary": row.summary, "inputs": list(trainer.training_inputs),
            "required": list(required), "fields": describe_config(trainer.train_config_class),
        })  # fmt: skip
    return kinds


def typed_options(config_class: type, raw: Any, what: str) -> dict[str, Any]:
    """The page's values (JSON numbers, booleans, strings; "" or null: the default) as the
    config's types; InputError naming the field for a value of the wrong kind."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"options: expected an object of {what}'s settings")
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    hints = typing.get_type_hints(config_class)
    unknown = sorted(set(raw) - (set(fields) - HIDDEN))
    if unknown:
        raise InputError(f"unknown setting(s) for {what}: {', '.join(unknown)}")
    options = {}
    for name, value in raw.items():
        if value is None or value == "":
            continue
        options[name] = _typed(name, value, without_none(hints[name]))
    return options


def checked_config(config_class: type, options: dict[str, Any]) -> Any:
    config = config_class(**options)
    validate_config(config)
    return config


def stylize_request(body: dict[str, Any], input_kind: Callable[[str], str],
                    model_folder: Callable[[str], str]) -> dict[str, Any]:  # fmt: skip
    """A stylise request checked (InputError otherwise) and normalised: the method, its inputs
    (``input_kind(ref)`` says "image" or "video" for an upload or sample reference, or raises),
    its options typed, the model (``model_folder(ref)``: what the library takes for a model the
    page offers, or InputError) and the temporal strength for a clip."""
    from .. import pipeline

    method = body.get("method") or DEFAULT_METHOD
    if not isinstance(method, str) or method not in METHODS:
        raise InputError(f"unknown method '{method}'; choose from: {', '.join(METHODS)}")
    why = missing_requirement(method)
    if why:
        raise InputError(f"method '{method}' {why}")
    row = METHODS[method]
    content = body.get("content")
    if not isinstance(content, str) or not content:
        raise InputError("choose a photo (or a video) to stylise")
    content_kind = input_kind(content)
    styles = body.get("styles") or []
    if not isinstance(styles, list) or not all(isinstance(s, str) for s in styles):
        raise InputError("styles: expected a list of uploads")
    for style in styles:
        if input_kind(style) != "image":
            raise InputError("a painting must be an image, not a video")
    config_class = load_method(method).config_class
    options = typed_options(config_class, body.get("options"), f"method '{method}'")
    model = body.get("model")
    if row.takes_model:
        if not model:
            raise InputError(f"method '{method}' needs a model: choose one")
        options["model"] = model_folder(str(model))
    elif model:
        raise InputError(f"method '{method}' takes no model")
    try:
        config = pipeline.make_config(method, options, style_count=len(styles))
    except InputError as error:
        raise InputError(_in_words(str(error))) from None
    missing = load_method(method).missing_weights(config)
    if missing is not None:  # said now, not by a job that fails in the queue
        raise InputError(missing)
    request = {"kind": "stylize", "method": method, "content": content, "styles": styles,
               "options": body.get("options") or {}}  # fmt: skip
    if row.takes_model:
        request["model"] = str(model)
    if content_kind == "video":
        request["temporal"] = _temporal(body.get("temporal", TEMPORAL_DEFAULT))
    return request


def train_request(body: dict[str, Any], input_kind: Callable[[str], str]) -> dict[str, Any]:
    """A training request checked and normalised (``data``/``styles``: folders on the server
    that must exist; ``style``: an uploaded image)."""
    kind = body.get("training")
    if kind not in TRAINING_KINDS:
        raise InputError(f"unknown training '{kind}'; choose from: {', '.join(TRAINING_KINDS)}")
    trainer = load_trainer(kind)
    options = typed_options(trainer.train_config_class, body.get("options"), f"train {kind}")
    try:
        checked_config(trainer.train_config_class, options)
    except InputError as error:
        raise InputError(_in_words(str(error))) from None
    required = getattr(trainer, "required_inputs", trainer.training_inputs)
    request: dict[str, Any] = {"kind": "train", "training": kind,
                               "options": body.get("options") or {}}  # fmt: skip
    for name in trainer.training_inputs:
        value = body.get(name)
        if not value:
            if name in required:
                raise InputError(f"train {kind} needs its {name}")
            continue
        if not isinstance(value, str):
            raise InputError(f"{name}: expected text")
        if name == "style":
            if input_kind(value) != "image":
                raise InputError("the style must be an image")
        elif not Path(value).expanduser().is_dir():
            raise InputError(f"{name}: '{value}' is not a folder on the studio's machine")
        request[name] = value
    return request


def _in_words(message: str) -> str:
    """The library's messages name a setting as its flag (``--style-weight: ...``); the page
    names it in words (``style weight: ...``)."""
    if message.startswith("--"):
        flag, colon, rest = message.partition(":")
        if colon:
            return f"{flag[2:].replace('-', ' ')}:{rest}"
    return message


def _temporal(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError("temporal: expected a number from 0 to 1")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"temporal: '{value}' is not a number") from None
    if not 0.0 <= number <= 1.0:
        raise InputError(f"temporal: {number:g} is not between 0 and 1")
    return number


def _typed(name: str, value: Any, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "on", "off"):
                return value.lower() in ("true", "on")
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if kind is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if origin is list:
            (item,) = typing.get_args(kind)
            items = value if isinstance(value, list) else str(value).replace(",", " ").split()
            return [_typed(name, each, item) for each in items]
        if origin is dict:
            pairs = value.items() if isinstance(value, dict) else _name_weights(str(value))
            return {str(key): _typed(name, weight, float) for key, weight in pairs}
    except (TypeError, ValueError):
        pass
    raise InputError(f"{name.replace('_', ' ')}: '{value}' is not {_kind_words(kind)}")


def _name_weights(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.replace(",", " ").split():
        name, _colon, weight = part.partition(":")
        pairs.append((name, weight or "1"))
    return pairs


def _kind_words(kind: Any) -> str:
    words = {bool: "on or off", int: "a whole number", float: "a number", str: "text"}
    if kind in words:
        return words[kind]
    if typing.get_origin(kind) is list:
        return "a list of values separated by commas"
    return "a list of NAME:WEIGHT"


def _as_text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{key}:{weight:g}" for key, weight in value.items())
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)
