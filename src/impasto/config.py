"""Helpers for method configuration dataclasses: one field = one option, with its help text.

Each method declares a dataclass whose fields carry ``metadata={"help": ..., "choices": ...,
"min": ..., "max": ...}``. The CLI and (later) the web form are built from these, and
``validate_config`` checks every value at the public boundary with messages built from them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from .errors import InputError


def option(
    default: Any,
    help: str,
    *,
    choices: tuple | None = None,
    min: float | None = None,
    max: float | None = None,
    cli: bool = True,
    metavar: str | None = None,
    default_text: str | None = None,
) -> Any:
    """A dataclass field with the metadata the CLI and validation read.

    ``help``: what the option does, without its default (help texts add it); ``metavar``: the
    value's name in the CLI help; ``cli=False``: an API-only option; ``default_text``: the
    default in words where the value does not say it (e.g. "the input's size" for None).
    """
    metadata = {
        "help": help,
        "choices": choices,
        "min": min,
        "max": max,
        "cli": cli,
        "metavar": metavar,
        "default_text": default_text,
    }
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def keep_option() -> Any:
    """``--keep``, the same field in every method's config (impasto.regions.keep_blend)."""
    return option(None, "a mask of the photo to leave untouched: where it is white the photo "
                  "stays as it was, its edge blended smoothly", metavar="MASK")  # fmt: skip


def shown_default(field: dataclasses.Field) -> str | None:
    """An option's default as help texts show it: its ``default_text``, else its value (floats
    as ``%g``: 10000, not 10000.0); None when there is nothing to say (a switch that is off, or
    None without words)."""
    text = field.metadata.get("default_text")
    if text is not None:
        return text
    if field.default_factory is not dataclasses.MISSING:
        return str(field.default_factory())
    value = field.default
    if value is dataclasses.MISSING or value is None or value is False:
        return None
    if value is True:
        return "on"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def without_none(annotation: Any) -> Any:
    """``int`` for ``int | None`` (likewise any single type); the annotation otherwise: the
    type a field's values take, for the CLI's flags and the studio's forms."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def validate_config(config: Any) -> None:
    """Raise InputError naming the option, the bad value and the accepted range or choices."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        meta = field.metadata
        name = flag_name(field.name)
        if value is None:
            continue
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise InputError(f"{name}: '{value}' is not one of: {', '.join(map(str, choices))}")
        low, high = meta.get("min"), meta.get("max")
        if low is not None and value < low:
            raise InputError(f"{name}: {value} is below the minimum {low}")
        if high is not None and value > high:
            raise InputError(f"{name}: {value} is above the maximum {high}")


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build ``cls`` from a dict, refusing unknown keys (e.g. from a saved config.json)."""
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"unknown option(s) for {cls.__name__}: {', '.join(unknown)}")
    config = cls(**values)
    validate_config(config)
    return config
