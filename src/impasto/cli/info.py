"""``impasto info OUTPUT``: how an image impasto wrote was made, read from its provenance record
(embedded in the file, or its ``.json`` sidecar; see impasto.provenance)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from .terminal import Terminal


def add_parser(commands, argv, selected: bool) -> None:
    parser = commands.add_parser(
        "info",
        help="show how an image impasto wrote was made",
        description="Print the record impasto keeps in every image it writes: the method, "
        "every setting, the seed, the backbone or model (with its sha256), the impasto "
        "version, each input's file and sha256, the output size; and the command that "
        "re-runs it.",
    )
    parser.add_argument("output", metavar="OUTPUT", help="an image impasto wrote, or its .json")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    parser.set_defaults(handler=run)


def _value(value: Any) -> str:
    if value is None:
        return "(default)"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return " ".join(f"{key}:{_value(item)}" for key, item in value.items())
    if isinstance(value, list):
        return " ".join(_value(item) for item in value)
    return str(value)


def _file(entry: Any) -> str:
    if not isinstance(entry, Mapping) or not entry.get("path"):
        return "(not a file: an image passed from Python)"
    return f"{entry['path']}  sha256 {entry.get('sha256') or '?'}"


def describe(record: Mapping[str, Any], origin: str) -> list[str]:
    """The record as aligned lines for a reader."""
    rows = [("method", str(record["method"]))]
    model = record.get("model")
    if isinstance(model, Mapping):
        rows.append(("model", f"{model.get('name')} ({model.get('path')})"))
        rows.append(("model sha256", str(model.get("sha256") or "?")))
    if record.get("backbone"):
        rows.append(("backbone", str(record["backbone"])))
    if record.get("seed") is not None:
        rows.append(("seed", str(record["seed"])))
    inputs = record.get("inputs", {})
    rows.append(("content", _file(inputs.get("content"))))
    styles = inputs.get("styles", [])
    for index, style in enumerate(styles):
        rows.append(("style" if len(styles) == 1 else f"style {index + 1}", _file(style)))
    output = record.get("output", {})
    rows.append(("output", f"{output.get('width')}x{output.get('height')} pixels"))
    if record.get("step") is not None:
        rows.append(("taken at", f"step {record['step']} (before the end)"))
    versions = f"impasto {record.get('impasto_version', '?')}"
    if record.get("torch_version"):
        versions += f", torch {record['torch_version']}"
    rows.append(("made with", f"{versions}, on {record.get('device') or '?'}"))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name.ljust(width)}  {text}" for name, text in rows]
    settings = record["settings"]
    lines.append("settings:")
    if settings:
        setting_width = max(len(name) for name in settings)
        lines += [f"  {name.ljust(setting_width)}  {_value(v)}" for name, v in settings.items()]
    lines.append(f"re-run: impasto stylize --from {origin} -o NEW")
    return lines


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    from ..provenance import read_record

    record = read_record(args.output)
    if args.json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
    else:
        print("\n".join(describe(record, args.output)))
    return 0
