"""``impasto export MODEL --format onnx -o FILE``: write a trained model for other runtimes
(for the methods of the table whose models export)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from ..export import DEFAULT_OPSET, EXPORT_FORMATS
from ..files import check_writable
from .terminal import Terminal


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    export = commands.add_parser(
        "export",
        help="export a trained model (ONNX)",
        description="Write MODEL (a model folder or a shipped model's name) as an ONNX graph: "
        "input 'image' float32 (N, 3, H, W) in [0, 1], output 'stylized'; N, H, W dynamic.",
    )
    export.add_argument("model", metavar="MODEL", help="model folder or shipped model name")
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="onnx",
        help="export format (default: %(default)s)",
    )
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    export.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default: %(default)s)"
    )
    export.set_defaults(handler=run)


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    output = Path(args.output).expanduser()
    if output.suffix.lower() != f".{args.format}":
        kind = args.format.upper()
        raise InputError(f"{kind} output must end in .{args.format}, got '{output.name}'")
    # A folder, a read-only or full disk: found before torch is imported, the model read and
    # the (slow) export run.
    check_writable(output)
    from ..methods.registry import exporting_methods, load_method
    from ..model_folder import find_model, read_method

    folder = find_model(args.model)
    method = read_method(folder)
    if method not in exporting_methods():
        raise InputError(
            f"{folder} is a '{method}' model; models of these methods export: "
            f"{', '.join(exporting_methods())}"
        )
    exporter = load_method(method)
    if args.format not in exporter.export_formats:
        raise InputError(
            f"'{method}' models export as {', '.join(exporter.export_formats)}, not {args.format}"
        )
    started = time.perf_counter()
    path = exporter.export(folder, output, args.format, args.opset)
    size = path.stat().st_size / 1e6
    terminal.line(f"wrote {path} ({size:.1f} MB) in {time.perf_counter() - started:.1f} s")
    return 0
