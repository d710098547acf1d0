"""What a comparison produced, and how it is written: the rows (``ComparisonRow``: a result
with its setting, whole config, time and scores), the settings they share, the labelled contact
sheet (one pair: a near-square grid; several pairs: a row per pair), the individual results as
files, and the JSON/CSV reports. ``impasto.compare`` runs the comparison and re-exports these
names.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import InputError
from .files import atomic_write
from .images import draw_sheet
from .images.sheet import draw_rows, grid_columns

KEY_METRICS: tuple[str, ...] = ("ssim", "style_ratio", "color_distance")
"""Metrics computed for every row (style_ratio needs a feature network; skipped without one)."""

SHARED_SETTINGS: tuple[str, ...] = ("size", "steps", "seed", "backbone")
"""The settings the sheet's title, the CSV's columns and ``shared_settings`` name."""

PER_RESULT = "per result"
"""What ``shared_settings`` says of a setting whose value differs between the results."""

_SHORT_NAMES = {"ssim": "ssim", "style_ratio": "style", "color_distance": "color"}


# --------------------------------------------------------------------------- rows


@dataclass
class ComparisonRow:
    """One stylised result: its setting, what it took, its scores and the image (1, 3, H, W)."""

    label: str
    options: dict[str, Any]
    seconds: float
    metrics: dict[str, float]
    image: torch.Tensor
    backbone: str = ""
    metrics_backbone: str = "none"
    unavailable: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # every option it ran with
    alpha: torch.Tensor | None = None  # the content's alpha at the result's size
    file: str = ""  # where ``write_results`` wrote the image
    record: dict[str, Any] | None = None  # its provenance (impasto.provenance), kept in its file
    content_name: str = ""  # the content file it was made from, as given ("": made in memory)
    style_name: str = ""  # the style file, as given ("": made in memory)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the content and style files (when it came from files), the
        setting, its whole config, time, scores and size; backbone: the network that made the
        image (``config`` has the one asked for, e.g. auto)."""
        height, width = self.image.shape[-2:]
        entry: dict[str, Any] = {}
        if self.content_name or self.style_name:
            entry.update(content=self.content_name, style=self.style_name)
        entry |= {
            "label": self.label,
            "options": dict(self.options),
            "config": dict(self.config),
            "seconds": round(self.seconds, 3),
            "metrics": dict(self.metrics),
            "backbone": self.backbone,
            "metrics_backbone": self.metrics_backbone,
            "unavailable": dict(self.unavailable),
            "width": int(width),
            "height": int(height),
        }
        if self.file:
            entry["file"] = self.file
        return entry


@dataclass
class ComparisonResult:
    """One pair's rows in the order of the settings, the content and style images used, and
    the files they came from, as given ("" for an image made in memory)."""

    rows: list[ComparisonRow]
    content: torch.Tensor
    style: torch.Tensor
    content_name: str = ""
    style_name: str = ""

    @property
    def settings(self) -> dict[str, Any]:
        """``shared_settings(self.rows)``."""
        return shared_settings(self.rows)


def shared_settings(rows: Sequence[ComparisonRow]) -> dict[str, Any]:
    """The settings of ``SHARED_SETTINGS`` over the rows, plus ``metrics_backbone``: each the
    value every row that has it ran with, or ``PER_RESULT`` when they differ; left out when no
    row has it. ``backbone`` is the network that made each image (its config may say auto);
    a ``size`` of None means the input's size."""
    settings: dict[str, Any] = {}
    for key in (*SHARED_SETTINGS, "metrics_backbone"):
        if key == "backbone":
            values = [row.backbone for row in rows if row.backbone]
        elif key == "metrics_backbone":
            values = [row.metrics_backbone for row in rows if row.metrics_backbone != "none"]
        else:
            values = [row.config[key] for row in rows if key in row.config]
        if values:
            same = all(value == values[0] for value in values)
            settings[key] = values[0] if same else PER_RESULT
    return settings


def settings_text(settings: dict[str, Any]) -> str:
    """``shared_settings`` as one line, e.g. "size 512, steps 200, seed 0, backbone vgg19;
    scored by efficientnet-lite2"."""
    parts = []
    for key in SHARED_SETTINGS:
        if key in settings:
            value = settings[key]
            parts.append(f"{key} {'as input' if value is None else value}")
    text = ", ".join(parts)
    if "metrics_backbone" in settings:
        text += f"{'; ' if text else ''}scored by {settings['metrics_backbone']}"
    return text


# --------------------------------------------------------------------------- contact sheet


def format_metrics(metrics: dict[str, float]) -> str:
    """The key metrics in short, e.g. "ssim 0.52  style 0.075  color 0.043"."""
    shown = [name for name in KEY_METRICS if name in metrics]
    return "  ".join(f"{_SHORT_NAMES.get(name, name)} {metrics[name]:.3g}" for name in shown)


def contact_sheet(
    content: torch.Tensor,
    style: torch.Tensor,
    rows: Sequence[ComparisonRow],
    cell: int = 256,
    columns: int | None = None,
    title: Sequence[str] | None = None,
) -> torch.Tensor:
    """The content, the style and each result on a grid (impasto.images.draw_sheet), each
    labelled underneath with its setting, time and size, and key metrics; (1, 3, H, W) in
    [0, 1]. ``cell``: the long side of each thumbnail in pixels; ``columns``: default
    ``grid_columns`` (the fewest empty cells, near 3:2: 5 pictures in one row, 6 in 3 x 2);
    ``title``: lines above the grid, default the settings the results share
    (``settings_text(shared_settings(rows))``)."""
    cells = [(content, ["content"]), (style, ["style"]), *(_result_cell(row) for row in rows)]
    title = _shared_title(rows) if title is None else title
    columns = grid_columns(len(cells)) if columns is None else columns
    return draw_sheet(cells, cell=cell, columns=columns, title=title)


def pairs_sheet(
    results: Sequence[ComparisonResult], cell: int = 256, title: Sequence[str] | None = None
) -> torch.Tensor:
    """The sheet of a comparison over one or more pairs; (1, 3, H, W) in [0, 1].

    One pair: ``contact_sheet``'s grid. Several: one row per pair (impasto.images.sheet
    .draw_rows), the content and the style (labelled with their file names), then a result per
    setting in the settings' order, each labelled as ``contact_sheet`` labels it, under column
    headers "content", "style" and each setting. Every pair must have run the same settings.
    ``title``: default the settings every result of every pair shares."""
    if not results:
        raise ValueError("a comparison sheet needs at least one pair")
    if len(results) == 1:
        (only,) = results
        return contact_sheet(only.content, only.style, only.rows, cell=cell, title=title)
    labels = [row.label for row in results[0].rows]
    if any([row.label for row in result.rows] != labels for result in results):
        raise ValueError("every pair of a comparison sheet must have run the same settings")
    grid = [_pair_cells(result) for result in results]
    if title is None:
        title = _shared_title([row for result in results for row in result.rows])
    return draw_rows(grid, cell=cell, headers=["content", "style", *labels], title=title)


def _pair_cells(result: ComparisonResult) -> list[tuple[torch.Tensor, list[str]]]:
    """One pair's row of a sheet: its content and style under their file names, then its
    results."""
    content = Path(result.content_name).name or "content"
    style = Path(result.style_name).name or "style"
    inputs = [(result.content, [content]), (result.style, [style])]
    return [*inputs, *(_result_cell(row) for row in result.rows)]


def _result_cell(row: ComparisonRow) -> tuple[torch.Tensor, list[str]]:
    """A result and its label lines: its setting, its time and size, its key metrics."""
    height, width = row.image.shape[-2:]
    time_and_size = f"{row.seconds:.1f} s, {width}x{height}"
    return row.image, [row.label, time_and_size, format_metrics(row.metrics)]


def _shared_title(rows: Sequence[ComparisonRow]) -> list[str]:
    """A sheet's default title: the settings every row shares, or none."""
    shared = settings_text(shared_settings(rows))
    return [f"settings: {shared}"] if shared else []


# --------------------------------------------------------------------------- reports


def _write_text(path: str | os.PathLike, text: str) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"cannot write '{path}': it is a directory")
    if not path.parent.is_dir():
        raise InputError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    data = text.encode("utf-8")
    atomic_write(path, lambda handle: handle.write(data))
    return path


_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")


def result_names(labels: Sequence[str], suffix: str = ".png") -> list[str]:
    """File names for the results of ``labels``, in order: "01-style_weight=1e3.png"; the
    number keeps them unique and in order, characters other than letters, digits and
    ``._=,+-`` become "_", and a label is cut at 60 characters."""
    width = max(2, len(str(len(labels))))
    names = []
    for index, label in enumerate(labels, start=1):
        names.append(f"{index:0{width}d}-{_safe_name(label, 60, 'result')}{suffix}")
    return names


def pair_result_names(
    pairs: Sequence[tuple[str, str]], labels: Sequence[str], suffix: str = ".png"
) -> list[str]:
    """File names for the results of every (pair, setting), pair by pair, each pair's in the
    order of ``labels``; ``pairs``: the (content, style) files as given ("" for an image made
    in memory). One pair: ``result_names(labels)``. Several: each pair's names start with its
    files' stems, "photo-painting-01-style_weight=1e3.png" (cut at 40 characters each; "content"
    and "style" for one made in memory); when a name is taken already by an earlier pair
    (compared without case, as some file systems do), the pair's stems get "-2", "-3", ..."""
    if len(pairs) == 1:
        return result_names(labels, suffix)
    numbered = result_names(labels, suffix)
    names: list[str] = []
    taken: set[str] = set()
    for content, style in pairs:
        stems = "-".join(
            _safe_name(Path(name).stem, 40, fallback)
            for name, fallback in ((content, "content"), (style, "style"))
        )
        prefix, number = stems, 1
        while any(f"{prefix}-{name}".casefold() in taken for name in numbered):
            number += 1
            prefix = f"{stems}-{number}"
        pair_names = [f"{prefix}-{name}" for name in numbered]
        taken |= {name.casefold() for name in pair_names}
        names += pair_names
    return names


def _safe_name(text: str, length: int, fallback: str) -> str:
    """``text`` as part of a file name: unsafe characters as "_", cut at ``length``."""
    return _UNSAFE.sub("_", text)[:length].strip("_") or fallback


def write_results(
    rows: Sequence[ComparisonRow],
    folder: str | os.PathLike,
    suffix: str = ".png",
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Write each row's image into ``folder`` (made when missing; its parent must exist) as
    ``names`` (one file name per row, e.g. from ``pair_result_names``; default
    ``result_names`` of the labels with ``suffix``) names them, with the content's alpha where
    the format keeps it; record each path in ``row.file``. On an error, what this call wrote is
    removed again."""
    from . import images

    if names is None:
        names = result_names([row.label for row in rows], suffix)
    if len(names) != len(rows):
        raise ValueError(f"{len(names)} file names for {len(rows)} results")

    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"cannot write the results into '{folder}': it is a file")
    if not folder.parent.is_dir():
        raise InputError(f"cannot write '{folder}': folder '{folder.parent}' does not exist")
    made = not folder.exists()
    written: list[Path] = []
    try:
        folder.mkdir(exist_ok=True)
        for row, name in zip(rows, names, strict=True):
            path = folder / name
            written.append(images.save_image(row.image, path, alpha=row.alpha, metadata=row.record))
            row.file = str(written[-1])
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        for row in rows:
            row.file = ""
        if made:
            folder.rmdir()
        raise
    return written


def write_report(
    rows: Sequence[ComparisonRow],
    json_path: str | os.PathLike | None = None,
    csv_path: str | os.PathLike | None = None,
) -> None:
    """Write the rows (no images) as a JSON list (``ComparisonRow.to_dict``, each with its whole
    config) and/or a CSV table: one line per row (per pair and setting) with its setting, time,
    key metrics, networks, size, the settings of ``SHARED_SETTINGS`` it ran with (empty where
    its method has none; a size of None is the input's), its file and, when the rows came from
    files, its content and style files (columns after the ones a CSV has always had)."""
    if json_path is not None:
        entries = [row.to_dict() for row in rows]
        _write_text(json_path, json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    if csv_path is not None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        settings = [key for key in SHARED_SETTINGS if key != "backbone"]
        named = any(row.content_name or row.style_name for row in rows)
        writer.writerow(
            ["label", "seconds", *KEY_METRICS, "backbone", "metrics_backbone", "width", "height"]
            + [*settings, "file", *(["content", "style"] if named else [])]
        )
        for row in rows:
            values = [f"{row.metrics[m]:.6g}" if m in row.metrics else "" for m in KEY_METRICS]
            height, width = row.image.shape[-2:]
            chosen = [_csv_value(row.config.get(key, "")) for key in settings]
            writer.writerow(
                [row.label, f"{row.seconds:.3f}", *values, row.backbone, row.metrics_backbone]
                + [int(width), int(height), *chosen, row.file]
                + ([row.content_name, row.style_name] if named else [])
            )
        _write_text(csv_path, buffer.getvalue())


def _csv_value(value: Any) -> str:
    return "input" if value is None else str(value)
