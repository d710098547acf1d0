"""What a comparison produced, and how it is written: the rows (``ComparisonRow``: a result
with its setting, whole config, time and scores), the settings they share, the labelled contact
sheet, the individual results as files, and the JSON/CSV reports. ``impasto.compare`` runs the
comparison and re-exports these names.
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
from .images.sheet import grid_columns

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the setting, its whole config, time, scores and size; backbone:
        the network that made the image (``config`` has the one asked for, e.g. auto)."""
        height, width = self.image.shape[-2:]
        entry = {
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
    """The rows in the order of the settings, and the content and style images used."""

    rows: list[ComparisonRow]
    content: torch.Tensor
    style: torch.Tensor

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
    cells = [(content, ["content"]), (style, ["style"])]
    for row in rows:
        height, width = row.image.shape[-2:]
        time_and_size = f"{row.seconds:.1f} s, {width}x{height}"
        cells.append((row.image, [row.label, time_and_size, format_metrics(row.metrics)]))
    if title is None:
        shared = settings_text(shared_settings(rows))
        title = [f"settings: {shared}"] if shared else []
    columns = grid_columns(len(cells)) if columns is None else columns
    return draw_sheet(cells, cell=cell, columns=columns, title=title)


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
        safe = _UNSAFE.sub("_", label)[:60].strip("_") or "result"
        names.append(f"{index:0{width}d}-{safe}{suffix}")
    return names


def write_results(
    rows: Sequence[ComparisonRow], folder: str | os.PathLike, suffix: str = ".png"
) -> list[Path]:
    """Write each row's image into ``folder`` (made when missing; its parent must exist) as
    ``result_names`` names them, with the content's alpha where the format keeps it; record
    each path in ``row.file``. On an error, what this call wrote is removed again."""
    from . import images

    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"cannot write the results into '{folder}': it is a file")
    if not folder.parent.is_dir():
        raise InputError(f"cannot write '{folder}': folder '{folder.parent}' does not exist")
    made = not folder.exists()
    written: list[Path] = []
    try:
        folder.mkdir(exist_ok=True)
        for row, name in zip(rows, result_names([row.label for row in rows], suffix), strict=True):
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
    config) and/or a CSV table: one line per setting with its time, key metrics, networks,
    size, the settings of ``SHARED_SETTINGS`` it ran with (empty where its method has none;
    a size of None is the input's) and its file."""
    if json_path is not None:
        entries = [row.to_dict() for row in rows]
        _write_text(json_path, json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    if csv_path is not None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        settings = [key for key in SHARED_SETTINGS if key != "backbone"]
        writer.writerow(
            ["label", "seconds", *KEY_METRICS, "backbone", "metrics_backbone", "width", "height"]
            + [*settings, "file"]
        )
        for row in rows:
            values = [f"{row.metrics[m]:.6g}" if m in row.metrics else "" for m in KEY_METRICS]
            height, width = row.image.shape[-2:]
            chosen = [_csv_value(row.config.get(key, "")) for key in settings]
            writer.writerow(
                [row.label, f"{row.seconds:.3f}", *values, row.backbone, row.metrics_backbone]
                + [int(width), int(height), *chosen, row.file]
            )
        _write_text(csv_path, buffer.getvalue())


def _csv_value(value: Any) -> str:
    return "input" if value is None else str(value)
