"""``impasto compare``: several settings (or every method) on one pair or more, side by side on
a labelled contact sheet (a row per pair when there are several), with scores
(impasto.compare)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from .args import positive_int
from .terminal import ProgressView, Terminal


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    parser = commands.add_parser(
        "compare",
        help="stylise with several settings (or every method) and lay the results out on a sheet",
        description="Stylise CONTENT with STYLE once per setting (same seed), score each "
        "result and write a contact sheet (titled with the settings the results share) and "
        "each result on its own. Several CONTENT STYLE pairs run every setting on each pair "
        "and the sheet has one row per pair. A setting is KEY=VALUE[,KEY=VALUE...] of a method's "
        "options with underscores, e.g. style_weight=3e4,preserve_color=luminance or "
        "method=fast,model=vangogh-bedroom. Without --settings: every available method at its "
        "defaults (one whose models are not on this machine is left out, said in one line).",
    )
    # Values are checked by the library (impasto.compare), which would import torch here.
    parser.add_argument(
        "images",
        nargs="+",
        metavar="CONTENT STYLE",
        help="a content image (the photo) and its style image; more pairs for a row each",
    )
    parser.add_argument(
        "--settings",
        nargs="+",
        metavar="S",
        help="one setting per result, e.g. style_weight=1e3 "
        "style_weight=1e5,tv_weight=0 (default: every method)",
    )
    parser.add_argument(
        "--grid-out", dest="grid_out", required=True, metavar="SHEET", help="contact sheet image"
    )
    parser.add_argument(
        "--out-dir",
        dest="out_dir",
        metavar="DIR",
        help="folder for the individual results, one file per setting (and pair) in the "
        "sheet's format (default: next to the sheet, named after it: sheet.png -> sheet/)",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the scores and each result's settings as JSON"
    )
    parser.add_argument(
        "--csv", metavar="FILE", help="also write the scores and each result's settings as CSV"
    )
    parser.add_argument("--size", type=positive_int, metavar="N", help="long side of each result")
    parser.add_argument("--steps", type=positive_int, metavar="N", help="optimiser steps")
    parser.add_argument("--backbone", metavar="NAME", help="feature network for stylising")
    parser.add_argument("--seed", type=int, metavar="N", help="random seed shared by every run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def _check_report_path(text: str, option: str, inputs: Sequence[str]) -> Path:
    path = Path(text).expanduser()
    if path.is_dir():
        raise InputError(f"{option} '{text}': it is a directory")
    if not path.parent.is_dir():
        raise InputError(f"{option} '{text}': folder '{path.parent}' does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{option} '{text}': not writable")  # found before the work, not after
    if any(Path(item).expanduser().resolve() == path.resolve() for item in inputs):
        raise InputError(f"{option} '{text}' would overwrite an input image")
    return path


def _pairs(images: Sequence[str]) -> list[tuple[str, str]]:
    """The positional images as (content, style) pairs; InputError for an odd number."""
    if len(images) % 2:
        count = f"{len(images)} image{'s' if len(images) > 1 else ''}"
        raise InputError(
            f"images come in pairs, CONTENT STYLE [CONTENT STYLE ...]: got {count}, and "
            f"'{images[-1]}' has no style image"
        )
    return list(zip(images[::2], images[1::2], strict=True))


def _pair_of(row) -> str:
    """ "photo.jpg + painting.jpg": the files a result was made from, by name."""
    return f"{Path(row.content_name).name} + {Path(row.style_name).name}"


def _check_results_folder(
    text: str | None, grid: Path, names: Sequence[str]
) -> tuple[Path, list[Path]]:
    """The folder of the individual results and the paths they will have (``names``: their
    file names; nothing is made yet); InputError when the folder cannot hold them."""
    folder = Path(text).expanduser() if text is not None else grid.with_suffix("")
    what = f"--out-dir '{text}'" if text is not None else f"results folder '{folder}'"
    if folder.exists() and not folder.is_dir():
        hint = "" if text is not None else " (choose another with --out-dir)"
        raise InputError(f"{what}: it is a file{hint}")
    if not folder.parent.is_dir():
        raise InputError(f"{what}: folder '{folder.parent}' does not exist")
    if not os.access(folder if folder.exists() else folder.parent, os.W_OK):
        raise InputError(f"{what}: not writable")
    return folder, [folder / name for name in names]


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    from .. import compare, images

    inputs = list(args.images)
    pairs = _pairs(inputs)
    # 1. Settings and paths (cheap): nothing is stylised before these are right.
    base = {
        name: getattr(args, name)
        for name in ("size", "steps", "backbone", "seed")
        if getattr(args, name) is not None
    }
    settings = compare.default_settings(terminal.line) if args.settings is None else args.settings
    parsed = compare.parse_settings(settings)
    grid = images.check_output_path(args.grid_out, inputs=inputs)
    report_paths = [grid]
    for option, text in (("--json", args.json), ("--csv", args.csv)):
        if text is not None:
            path = _check_report_path(text, option, inputs)
            if path.resolve() in {p.resolve() for p in report_paths}:
                raise InputError(f"{option} '{text}' is also another output")
            report_paths.append(path)
    names = compare.pair_result_names(pairs, [label for label, _ in parsed], grid.suffix)
    folder, results = _check_results_folder(args.out_dir, grid, names)
    taken = {path.resolve() for path in report_paths}
    taken |= {Path(item).expanduser().resolve() for item in inputs}
    for path in [folder, *results]:
        if path.resolve() in taken:
            raise InputError(f"'{path}' would overwrite an input or another output")
    loaded = [(images.load_image(content), images.load_image(style)) for content, style in pairs]

    def finished(index: int, total: int, row) -> None:
        height, width = row.image.shape[-2:]
        pair = f"{_pair_of(row)}, " if len(pairs) > 1 else ""
        terminal.line(
            f"[{index + 1}/{total}] {pair}{row.label}: {width}x{height} in {row.seconds:.1f} s  "
            f"{compare.format_metrics(row.metrics)}"
        )

    # 2. The work: each setting's method is prepared (backbone fetched with a bar) and run.
    with ProgressView(terminal, quiet=args.quiet) as view:
        compared = compare.compare_pairs(
            loaded, parsed, base, progress=finished, notify=terminal.line, events=view
        )
    sheet = compare.pairs_sheet(compared)
    rows = [row for result in compared for row in result.rows]
    # The results, the reports, then the sheet: a failure leaves none of this run's outputs.
    made = not folder.exists()
    try:
        compare.write_results(rows, folder, names=names)
        compare.write_report(rows, json_path=args.json, csv_path=args.csv)
        images.save_image(sheet, grid)
    except BaseException:
        written = [Path(row.file) for row in rows if row.file]  # by this run only
        for path in [*report_paths[1:], *written]:
            path.unlink(missing_ok=True)
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise
    terminal.line(f"wrote {grid} ({sheet.shape[-1]}x{sheet.shape[-2]})")
    terminal.line(f"wrote {len(results)} results into {folder}")
    return 0
