"""Argument machinery of the CLI: a parser that raises instead of exiting, value types, and the
flags of a config dataclass (impasto.config.option fields), so flags cannot drift from the
library's options."""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from ..config import flag_name


class UsageError(Exception):
    """A command-line mistake found by argparse; shown as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """ArgumentParser that raises UsageError instead of printing the usage and exiting.

    Abbreviated long options are refused so that adding a flag never changes what an
    existing command line means.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        # A better message for some mistakes (e.g. a flag of another method), or None.
        self.explain: Callable[[str], str | None] | None = None

    def error(self, message: str) -> typing.NoReturn:
        better = self.explain(message) if self.explain is not None else None
        raise UsageError(better or message)


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def name_and_weight(text: str) -> tuple[str, float]:
    """``NAME`` or ``NAME:WEIGHT`` (weight >= 0, default 1.0), e.g. for --style-layers."""
    name, colon, weight_text = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"expected NAME or NAME:WEIGHT, got {text!r}")
    if not colon:
        return name, 1.0
    weight = finite_float(weight_text)
    if weight < 0:
        raise argparse.ArgumentTypeError(f"weight must be >= 0, got {text!r}")
    return name, weight


class WeightedNames(argparse.Action):
    """Collects NAME[:WEIGHT] values into a dict, refusing a name given twice."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        weights: dict[str, float] = {}
        for name, weight in values:
            if name in weights:
                parser.error(f"{option_string}: '{name}' is given twice")
            weights[name] = weight
        setattr(namespace, self.dest, weights)


_SCALARS: dict[type, tuple[Callable[[str], Any], str]] = {
    int: (int, "N"),
    float: (finite_float, "X"),
    str: (str, "TEXT"),
}


def _without_none(annotation: Any) -> Any:
    """``int`` for ``int | None`` (likewise any single type); the annotation otherwise."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _help(text: str) -> str:
    return text.replace("%", "%%")  # argparse %-formats help strings


def add_config_flags(group, config_class: type) -> None:
    """One flag per field of ``config_class`` (unless its metadata says ``cli=False``).

    A flag the user does not give is absent from the namespace, so the config's own default
    applies (shown in the help). Types: bool (a switch), int, float, str (with choices when the
    field has them), list[float] / list[str] (one or more values) and dict[str, float]
    (NAME[:WEIGHT] values). Values are checked by the library (validate_config), with the same
    messages as from the Python API.
    """
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        meta = field.metadata
        if not meta.get("cli", True):
            continue
        kind = _without_none(hints[field.name])
        help_text = _help(meta.get("help", ""))
        default = field.default
        if default is not dataclasses.MISSING and default is not None and kind is not bool:
            help_text += f" (default: {_help(str(default))})"
        common = {"dest": field.name, "default": argparse.SUPPRESS, "help": help_text}
        flag = flag_name(field.name)
        if kind is bool:
            action = argparse.BooleanOptionalAction if default else "store_true"
            group.add_argument(flag, action=action, **common)
        elif kind in _SCALARS:
            convert, metavar = _SCALARS[kind]
            choices = meta.get("choices")
            group.add_argument(
                flag,
                type=convert,
                choices=choices,
                metavar=None if choices else meta.get("metavar") or metavar,
                **common,
            )
        elif typing.get_origin(kind) is list:
            (item,) = typing.get_args(kind)
            convert, metavar = _SCALARS[item]
            group.add_argument(
                flag, type=convert, nargs="+", metavar=meta.get("metavar") or metavar, **common
            )
        elif typing.get_origin(kind) is dict:
            group.add_argument(
                flag,
                type=name_and_weight,
                nargs="+",
                action=WeightedNames,
                metavar=meta.get("metavar") or "NAME[:WEIGHT]",
                **common,
            )
        else:
            raise TypeError(f"no command-line type for {field.name}: {kind!r}")


def given_options(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The config fields the user gave on the command line."""
    return {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(config_class)
        if hasattr(args, field.name)
    }


def command_in(argv: typing.Sequence[str]) -> str | None:
    """The command word: the first argument that is not an option (global options take no value)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def option_value(argv: typing.Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` in ``argv`` (``--flag V`` or ``--flag=V``; the last one wins)."""
    value = None
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith(flag + "="):
            value = arg.partition("=")[2]
    return value
