"""Argument machinery of the CLI: a parser that raises instead of exiting, value types, and the
flags of a config dataclass (impasto.config.option fields), so flags cannot drift from the
library's options."""

from __future__ import annotations

import argparse
import dataclasses
import math
import textwrap
import typing
from collections.abc import Callable, Mapping
from typing import Any

from ..config import flag_name, shown_default, without_none


class UsageError(Exception):
    """A command-line mistake found by argparse; shown as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """ArgumentParser that raises UsageError instead of printing the usage and exiting.

    Abbreviated long options are refused so that adding a flag never changes what an
    existing command line means.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
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


def _help(text: str) -> str:
    return text.replace("%", "%%")  # argparse %-formats help strings


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, with lines broken at spaces only: never inside a name such as
    ``vangogh-bedroom-rt`` or ``efficientnet-lite0``, which a reader may copy."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(
            " ".join(text.split()),
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )


def add_config_flags(group, config_class: type) -> None:
    """One flag per field of ``config_class`` (unless its metadata says ``cli=False``).

    A flag the user does not give is absent from the namespace, so the config's own default
    applies (shown in the help: impasto.config.shown_default). Types: bool (a switch), int,
    float, str (with choices when the field has them), list[float] / list[str] (one or more
    values) and dict[str, float] (NAME[:WEIGHT] values). Values are checked by the library
    (validate_config), with the same messages as from the Python API.
    """
    _add_flags({"": config_class}, lambda owners: group)


def add_methods_flags(parser: argparse.ArgumentParser, configs: Mapping[str, type]) -> None:
    """The flags of several methods' configs (name -> config class) on one parser, each once.

    For a help that covers every method: a flag is listed in a group naming the methods that
    take it ("options of every method", "options of gatys and fast", ...), widest first, and
    where those methods differ its help says so per method: what it does, the values each
    accepts, and each one's default, e.g. ``(default: gatys: 512; fast and color: the input's
    size)``. Parsing accepts the union of the values; the chosen method's config checks them.
    """
    names = list(configs)
    fields = {name: _cli_fields(config_class) for name, config_class in configs.items()}
    owner_sets = {
        tuple(owner for owner in names if field in fields[owner])
        for name in names
        for field in fields[name]
    }
    order = sorted(owner_sets, key=lambda owners: (-len(owners), [names.index(n) for n in owners]))
    groups = {}
    for owners in order:
        title = "every method" if len(owners) == len(names) else _listed(owners)
        groups[owners] = parser.add_argument_group(f"options of {title}")
    _add_flags(configs, groups.__getitem__)


def _cli_fields(config_class: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(config_class) if f.metadata.get("cli", True)}


def _add_flags(configs: Mapping[str, type], group_for: Callable[[tuple[str, ...]], Any]) -> None:
    """Add one flag per option name found in ``configs``, in the order first seen, to
    ``group_for(names of the configs that have it)``; the help of a flag several configs
    share is merged (_merged_help)."""
    variants: dict[str, list[tuple[str, dataclasses.Field, Any]]] = {}
    for name, config_class in configs.items():
        hints = typing.get_type_hints(config_class)
        for field in _cli_fields(config_class).values():
            kind = without_none(hints[field.name])
            variants.setdefault(field.name, []).append((name, field, kind))
    for field_name, found in variants.items():
        kinds = {kind for _, _, kind in found}
        if len(kinds) > 1:
            raise TypeError(f"{field_name}: the methods give it different types: {kinds}")
        (kind,) = kinds
        fields = [field for _, field, _ in found]
        choices = _union([field.metadata.get("choices") for field in fields])
        metavar = next((f.metadata["metavar"] for f in fields if f.metadata.get("metavar")), None)
        switch_on = any(field.default is True for field in fields)
        group = group_for(tuple(name for name, _, _ in found))
        common = {"dest": field_name, "default": argparse.SUPPRESS, "help": _merged_help(found)}
        _add_flag(group, flag_name(field_name), kind, choices, metavar, switch_on, common)


def _listed(names: typing.Sequence[str]) -> str:
    """``gatys``, ``gatys and fast``, ``gatys, fast and color``."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _union(choices: list[tuple | None]) -> tuple | None:
    """Every value any variant accepts, in order; None when one accepts anything."""
    if any(values is None for values in choices):
        return None
    return tuple(dict.fromkeys(value for values in choices for value in values))


def _merged_help(found: list[tuple[str, dataclasses.Field, Any]]) -> str:
    """The help of one flag over the methods that have it: one text where they agree, else
    ``method: text.`` per method (with the values it accepts where those differ); then the
    default, or each method's default where they differ."""
    meanings: dict[tuple[str, tuple | None], list[str]] = {}
    defaults: dict[str | None, list[str]] = {}
    for name, field, _ in found:
        key = (field.metadata.get("help", ""), field.metadata.get("choices"))
        meanings.setdefault(key, []).append(name)
        defaults.setdefault(shown_default(field), []).append(name)
    same_values = len({choices for _, choices in meanings}) == 1
    if len(meanings) == 1:
        ((text, _),) = meanings
    else:  # sentences, as a method's own help may hold a ';'
        parts = []
        for (help_text, choices), names in meanings.items():
            values = "" if same_values or choices is None else f" {{{','.join(choices)}}}"
            parts.append(f"{_listed(names)}{values}: {help_text}.")
        text = " ".join(parts)
    if len(defaults) == 1:
        (default,) = defaults
        if default is not None:
            text += f" (default: {default})"
    else:
        said = "; ".join(f"{_listed(names)}: {d or 'none'}" for d, names in defaults.items())
        text += f" (default: {said})"
    return _help(text)


def _add_flag(group, flag: str, kind: Any, choices, metavar, switch_on: bool, common) -> None:
    if kind is bool:
        action = argparse.BooleanOptionalAction if switch_on else "store_true"
        group.add_argument(flag, action=action, **common)
    elif kind in _SCALARS:
        convert, default_metavar = _SCALARS[kind]
        group.add_argument(
            flag,
            type=convert,
            choices=choices,
            metavar=None if choices else metavar or default_metavar,
            **common,
        )
    elif typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        convert, default_metavar = _SCALARS[item]
        group.add_argument(
            flag, type=convert, nargs="+", metavar=metavar or default_metavar, **common
        )
    elif typing.get_origin(kind) is dict:
        group.add_argument(
            flag,
            type=name_and_weight,
            nargs="+",
            action=WeightedNames,
            metavar=metavar or "NAME[:WEIGHT]",
            **common,
        )
    else:
        raise TypeError(f"no command-line type for {flag}: {kind!r}")


def given_options(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The config fields the user gave on the command line."""
    return {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(config_class)
        if hasattr(args, field.name)
    }


def asks_for_help(argv: typing.Sequence[str]) -> bool:
    """True when ``argv`` holds -h or --help (before a ``--``)."""
    for arg in argv:
        if arg == "--":
            return False
        if arg in ("-h", "--help"):
            return True
    return False


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
