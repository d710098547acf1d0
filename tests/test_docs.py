"""The README's CLI reference against the parser: every flag it names exists in that command's
parser, every default it states is the one the help shows (per method for ``stylize``), and
every flag of every command is in the README.

The parsers are the real ones (impasto.cli.main.build_parser); a flag's default is the
parser's value when it has one, else what its help says ("(default: ...)"), which is what the
user reads.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from impasto.cli.main import build_parser
from impasto.config import flag_name
from impasto.methods.registry import DEFAULT_METHOD, available_methods, load_method

README = Path(__file__).resolve().parents[1] / "README.md"
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
CODE = re.compile(r"`([^`]+)`")
DEFAULT_IN_HELP = re.compile(r"\(default: (.*)\)\s*$", re.DOTALL)
METHOD_NAMED = re.compile(r"`--method (\w+)`")


@dataclass
class Table:
    method: str | None  # stylize: the method the paragraph before the table names ("any": a
    # table of options for every method, e.g. the clips')
    rows: list[tuple[list[str], str]]  # (flags of the first cell, default cell)


@dataclass
class Section:
    """A ``### `impasto COMMAND ...``` part of the CLI reference."""

    words: list[str]  # ["train", "fast"], ["stylize"], ...
    text: str
    tables: list[Table] = field(default_factory=list)

    def flags(self) -> set[str]:
        """Every flag named in code (fenced blocks or backticks) anywhere in the section."""
        fenced = re.compile(r"```.*?```", re.DOTALL)
        code = " ".join([*fenced.findall(self.text), *CODE.findall(fenced.sub("", self.text))])
        return set(FLAG.findall(code))


def cli_reference() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## CLI reference")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def sections() -> list[Section]:
    found = []
    for part in re.split(r"\n(?=### )", cli_reference())[1:]:
        heading = part.splitlines()[0]
        match = re.match(r"### `impasto ([^`]*)`", heading)
        if match is None:
            continue  # "Input and output", "Errors": not a command
        words = [w for w in match.group(1).split() if re.fullmatch(r"[a-z][a-z0-9-]*", w)]
        found.append(Section(words[:2] if words[0] == "train" else words[:1], part))
    for section in found:
        section.tables = tables(section.text)
    return found


def tables(text: str) -> list[Table]:
    """The ``| option | default | meaning |`` tables, each with the method named by the
    paragraph right before it (stylize: ``With `--method fast` ...``)."""
    result = []
    blocks = re.split(r"\n\s*\n", text)
    for index, block in enumerate(blocks):
        lines = block.strip().splitlines()
        if not lines or not lines[0].startswith("| option | default |"):
            continue
        before = blocks[index - 1] if index else ""
        named = METHOD_NAMED.findall(before) or (["any"] if "with any method" in before else [])
        rows = []
        for line in lines[2:]:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows.append((FLAG.findall(" ".join(CODE.findall(cells[0]))), cells[1]))
        result.append(Table(named[0] if named else None, rows))
    return result


def command_parser(words: list[str], *extra: str) -> argparse.ArgumentParser:
    """The parser of ``impasto WORDS`` (with ``extra``, e.g. --method M, on its command line)."""
    argv = [*words, *extra]
    parser = build_parser(argv)
    for word in words:
        parser = subcommands(parser)[word]
    return parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    # argparse has no public way to list a parser's arguments: _actions is what it keeps them in
    for action in parser._actions:
        if isinstance(action.choices, dict):
            return action.choices
    return {}


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {
        flag: action
        for action in parser._actions
        for flag in action.option_strings
        if flag not in ("-h", "--help")
    }


def shown_default(action: argparse.Action) -> str | None:
    """The default as the help tells it: the parser's value, else "(default: ...)" in the help,
    "off" for a switch, "(required)" for a required option."""
    if action.required:
        return "(required)"
    help_text = (action.help or "").replace("%%", "%")
    if action.default not in (None, False, argparse.SUPPRESS):
        return str(action.default)
    match = DEFAULT_IN_HELP.search(" ".join(help_text.split()))
    if match:
        return match.group(1).replace("%(default)s", str(action.default))
    if action.nargs == 0:
        return "off"
    if "(required)" in help_text:
        return "(required)"
    return None


def same_default(readme: str, shown: str | None) -> bool:
    said = " ".join(readme.replace("`", "").split()).lower()
    if shown is None:
        return False
    shown = " ".join(shown.replace("`", "").split()).lower()
    try:
        return float(said) == float(shown)
    except ValueError:
        return said == shown


def method_flags(method: str) -> set[str]:
    """The flags built from ``method``'s config (not those every method has)."""
    config_class = load_method(method).config_class
    return {flag_name(name) for name in config_class.__dataclass_fields__}


SECTIONS = sections()


def test_the_reference_has_a_section_and_a_table_per_method():
    named = {" ".join(section.words) for section in SECTIONS}
    assert {"stylize", "train fast", "export", "download", "backbones", "evaluate"} <= named
    tables_ = SECTIONS_BY["stylize"].tables
    methods = [table.method or DEFAULT_METHOD for table in tables_ if table.method != "any"]
    assert sorted(methods) == sorted(available_methods())


SECTIONS_BY = {" ".join(section.words): section for section in SECTIONS}


def test_every_command_has_a_section():
    commands = subcommands(build_parser(["--help"]))
    expected = {"train " + kind for kind in subcommands(command_parser(["train"]))}
    expected |= {name for name in commands if name != "train"}
    assert sorted(expected - set(SECTIONS_BY)) == []


def test_global_flags_exist_and_are_documented():
    parser = build_parser(["--help"])
    line = next(line for line in cli_reference().splitlines() if line.startswith("`impasto ["))
    assert set(FLAG.findall(CODE.findall(line)[0])) == set(options(parser))


@pytest.mark.parametrize("name", sorted(SECTIONS_BY))
def test_every_flag_the_readme_names_exists(name):
    section = SECTIONS_BY[name]
    if section.words == ["stylize"]:
        known = set()
        for method in available_methods():
            known |= set(options(command_parser(["stylize"], "--method", method)))
    else:
        known = set(options(command_parser(section.words)))
    assert sorted(section.flags() - known - {"-h", "--help"}) == []


@pytest.mark.parametrize("name", sorted(SECTIONS_BY))
def test_every_flag_of_the_command_is_in_the_readme(name):
    section = SECTIONS_BY[name]
    methods = available_methods() if section.words == ["stylize"] else [None]
    for method in methods:
        extra = ("--method", method) if method else ()
        known = options(command_parser(section.words, *extra))
        flags = set(known)
        named = section.flags()  # an option is named by any of its spellings (-o, --output)
        missing = {f for f in flags if not set(known[f].option_strings) & named}
        assert sorted(missing) == [], method
        if method is not None:  # a method's own flags are in its own table
            table = next(t for t in section.tables if (t.method or DEFAULT_METHOD) == method)
            listed = {flag for flags, _ in table.rows for flag in flags}
            assert sorted((method_flags(method) & flags) - listed) == [], method


@pytest.mark.parametrize("name", sorted(SECTIONS_BY))
def test_every_default_in_a_table_is_the_one_the_help_shows(name):
    section = SECTIONS_BY[name]
    for table in section.tables:
        method = DEFAULT_METHOD if table.method in (None, "any") else table.method
        extra = ("--method", method) if name == "stylize" else ()
        known = options(command_parser(section.words, *extra))
        for flags, default in table.rows:
            assert flags, f"a row names no flag: {default!r}"
            if not default:
                continue  # nothing stated
            for flag in flags:
                shown = shown_default(known[flag])
                assert same_default(default, shown), (table.method, flag, default, shown)


def test_the_checks_can_fail():
    """The helpers see a wrong default, an unknown flag and a missing one."""
    gatys = options(command_parser(["stylize"], "--method", "gatys"))
    fast = options(command_parser(["stylize"], "--method", "fast"))
    assert same_default("512", shown_default(gatys["--size"]))
    assert not same_default("512", shown_default(fast["--size"]))
    assert same_default("the input's size", shown_default(fast["--size"]))
    assert same_default("`auto`", shown_default(fast["--device"]))
    assert not same_default("0.5", shown_default(gatys["--style-scale"]))
    assert same_default("(required)", shown_default(gatys["--output"]))
    assert same_default("off", shown_default(gatys["--compile"]))
    readme = "With `--method fast`:\n\n| option | default | meaning |\n|---|---|---|\n"
    table = tables(readme + "| `--steps N`, `--quiet` | 3 | x |\n")
    assert table[0].method == "fast" and table[0].rows == [(["--steps", "--quiet"], "3")]
    assert "--steps" not in fast and "--model" in method_flags("fast")
