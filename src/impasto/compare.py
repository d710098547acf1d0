"""Compare settings side by side: stylise one content/style pair once per setting, score each
result, and lay them out on a labelled contact sheet (``impasto compare``).

A setting is a string of comma-separated ``key=value`` pairs naming ``GatysConfig`` fields,
e.g. ``"style_weight=3e4,preserve_color=luminance"``; values are parsed by the field's type.
``method=fast,model=NAME`` runs a trained fast model instead (its keys: ``FastConfig`` fields),
so methods can be compared side by side.

>>> from impasto.compare import compare, contact_sheet
>>> result = compare("photo.jpg", "painting.jpg", ["style_weight=1e3", "style_weight=1e5"],
...                  {"size": 256, "steps": 50})
>>> contact_sheet(result.content, result.style, result.rows).save("sheet.png")

The library raises InputError (never prints); the CLI turns that into one line on stderr.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import time
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import InputError, WeightsError

KEY_METRICS: tuple[str, ...] = ("ssim", "style_ratio", "color_distance")
"""Metrics computed for every row (style_ratio needs a feature network; skipped without one)."""

PIXEL_METRICS: tuple[str, ...] = ("ssim", "color_distance")

_SHORT_NAMES = {"ssim": "ssim", "style_ratio": "style", "color_distance": "color"}
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


# --------------------------------------------------------------------------- settings


def _config_class(method: str = "gatys"):
    if method == "fast":
        from .methods.fast import FastConfig

        return FastConfig
    from .methods.gatys import GatysConfig

    return GatysConfig


def _method_of(text: str) -> str:
    """The ``method=`` of a setting (default gatys), checked against the API's choices."""
    from .api import METHOD_CHOICES

    for part in text.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "method":
            if value.strip() not in METHOD_CHOICES:
                raise InputError(
                    f"setting {text!r}: unknown method '{value.strip()}'; choose from: "
                    f"{', '.join(METHOD_CHOICES)}"
                )
            return value.strip()
    return "gatys"


def _field_type(annotation: Any) -> tuple[type | None, bool]:
    """(scalar type or None when not a scalar, whether None is allowed)."""
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else None
    if annotation in (bool, int, float, str):
        return annotation, optional
    return None, optional


def _parse_value(name: str, kind: type, optional: bool, text: str) -> Any:
    lowered = text.strip().lower()
    if optional and lowered == "none":
        return None
    if kind is bool:
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise InputError(f"setting '{name}': {text!r} is not true or false")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise InputError(f"setting '{name}': {text!r} is not a whole number") from None
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"setting '{name}': {text!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"setting '{name}': {text!r} is not a finite number")
        return value
    return text.strip()


def parse_setting(text: str) -> dict[str, Any]:
    """``"style_weight=3e4,preserve_color=luminance"`` -> ``{"style_weight": 30000.0, ...}``.

    Raises InputError naming an unknown field, a field given twice, a value of the wrong type
    or out of range. An empty string means the base options unchanged.
    """
    from .config import validate_config

    method = _method_of(text)
    config_class = _config_class(method)
    hints = typing.get_type_hints(config_class)
    names = [f.name for f in dataclasses.fields(config_class)]
    options: dict[str, Any] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, equals, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise InputError(f"setting {text!r}: expected key=value, got {part!r}")
        if key == "method":
            continue
        if key == "model" and method == "fast":
            options["model"] = value.strip()
            continue
        if key not in names:
            raise InputError(
                f"setting {text!r}: unknown option '{key}'; choose from: {', '.join(names)}"
            )
        if key in options:
            raise InputError(f"setting {text!r}: option '{key}' is given twice")
        kind, optional = _field_type(hints[key])
        if kind is None:
            raise InputError(f"setting {text!r}: option '{key}' cannot be set in a comparison")
        options[key] = _parse_value(key, kind, optional, value)
    if method == "fast":
        if "model" not in options:
            raise InputError(f"setting {text!r}: method=fast needs model=MODEL")
        model = options.pop("model")
    try:
        validate_config(config_class(**options))
    except InputError as error:
        raise InputError(f"setting {text!r}: {error}") from None
    if method == "fast":
        options = {"method": "fast", "model": model, **options}
    return options


def parse_settings(
    settings: Sequence[str | tuple[str, dict[str, Any]]],
) -> list[tuple[str, dict[str, Any]]]:
    """(label, options) for each setting; the label is the setting as written (or 'defaults').

    Items that are already ``(label, options)`` pairs (from an earlier parse) pass through."""
    if isinstance(settings, str):
        settings = [settings]
    if not settings:
        raise InputError("no setting to compare; give at least one, e.g. 'style_weight=1e5'")
    parsed = []
    for text in settings:
        if isinstance(text, tuple):  # already parsed: (label, options)
            parsed.append((text[0], dict(text[1])))
            continue
        options = parse_setting(text)
        label = ",".join(p.strip() for p in text.split(",") if p.strip()) or "defaults"
        parsed.append((label, options))
    return parsed


# --------------------------------------------------------------------------- compare


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

    def to_dict(self) -> dict[str, Any]:
        height, width = self.image.shape[-2:]
        return {
            "label": self.label,
            "options": dict(self.options),
            "seconds": round(self.seconds, 3),
            "metrics": dict(self.metrics),
            "backbone": self.backbone,
            "metrics_backbone": self.metrics_backbone,
            "unavailable": dict(self.unavailable),
            "width": int(width),
            "height": int(height),
        }


@dataclass
class ComparisonResult:
    """The rows in the order of the settings, and the content and style images used."""

    rows: list[ComparisonRow]
    content: torch.Tensor
    style: torch.Tensor


def _loaded(image: Any):
    from .api import _as_loaded

    return _as_loaded(image, None)


def _score(image, content, style, made_with: str, metrics_backbone: Any, cache: dict):
    """The key metrics; style_ratio is skipped (noted in ``unavailable``) without weights."""
    from . import metrics

    try:
        network = metrics_backbone
        if isinstance(network, str):
            name = metrics.choose_backbone(made_with) if network == "auto" else network
            if name not in cache:
                cache[name] = metrics._load_backbone(name)
            network = cache[name]
        report = metrics.evaluate(image, content, style, backbone=network,
                                  made_with=made_with, metrics=KEY_METRICS)  # fmt: skip
    except WeightsError as error:
        report = metrics.evaluate(image, content, style, metrics=PIXEL_METRICS)
        report.unavailable["style_ratio"] = str(error)
    return report


def _gatys_only(options: dict[str, Any]) -> dict[str, Any]:
    """A fast setting's options do not apply to the Gatys config the base is checked with."""
    return {} if options.get("method") == "fast" else options


def compare(
    content: Any,
    style: Any,
    settings: Sequence[str | tuple[str, dict[str, Any]]],
    base_options: dict[str, Any] | None = None,
    progress: Callable[[int, int, ComparisonRow], Any] | None = None,
    *,
    metrics_backbone: Any = "auto",
    notify: Callable[[str], Any] | None = None,
) -> ComparisonResult:
    """Stylise ``content`` with ``style`` once per setting and score each result.

    ``base_options``: GatysConfig fields shared by every run (a setting overrides them); every
    run uses the same seed unless a setting names one. ``progress(index, total, row)`` is
    called after each finished setting. ``metrics_backbone``: network for style_ratio
    ("auto" avoids the one that made the image; without weights the metric is skipped).
    """
    from . import api
    from .config import validate_config

    parsed = parse_settings(settings)
    base = dict(base_options or {})
    unknown = sorted(set(base) - {f.name for f in dataclasses.fields(_config_class())})
    if unknown:
        raise InputError(f"unknown option(s): {', '.join(unknown)}")
    base.setdefault("seed", 0)
    for _, options in parsed:
        validate_config(_config_class()(**{**base, **_gatys_only(options)}))

    content_image = _loaded(content)
    style_image = _loaded(style)
    rows: list[ComparisonRow] = []
    networks: dict[str, Any] = {}  # loaded metric networks, by name
    for index, (label, options) in enumerate(parsed):
        started = time.perf_counter()
        if options.get("method") == "fast":
            # Base options that the fast method has (size, device, ...) apply to it too.
            fast_fields = {f.name for f in dataclasses.fields(_config_class("fast"))}
            shared = {k: v for k, v in base.items() if k in fast_fields}
            result = api.stylize(content_image, **{**shared, **options})
            made_with = result.backbone
        else:
            result = api.stylize(content_image, style_image, notify=notify, **base, **options)
            made_with = result.backbone
        seconds = getattr(result, "seconds", 0.0) or time.perf_counter() - started
        report = _score(result.image, content_image.rgb, style_image.rgb, made_with,
                        metrics_backbone, networks)  # fmt: skip
        row = ComparisonRow(
            label=label,
            options=options,
            seconds=float(seconds),
            metrics=dict(report.metrics),
            image=result.image,
            backbone=result.backbone,
            metrics_backbone=report.backbone,
            unavailable={k: v for k, v in report.unavailable.items() if k in KEY_METRICS},
        )
        rows.append(row)
        if progress is not None:
            progress(index, len(parsed), row)
    return ComparisonResult(rows, content_image.rgb, style_image.rgb)


# --------------------------------------------------------------------------- contact sheet

LINE_HEIGHT = 12
LABEL_LINES = 4
PADDING = 4


def _as_pil(image: Any) -> Image.Image:
    from .images import to_pil

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor):
        return to_pil(image.detach().float().clamp(0, 1).cpu())
    return to_pil(_loaded(image).rgb)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for char in text:
        if draw.textlength(current + char, font=font) > width and current:
            lines.append(current)
            current = char.lstrip()
        else:
            current += char
    if current:
        lines.append(current)
    return lines


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image as (1, 3, H, W) floats in [0, 1] (e.g. to save a sheet with save_image)."""
    import numpy as np

    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def format_metrics(metrics: dict[str, float]) -> str:
    return "  ".join(
        f"{_SHORT_NAMES.get(name, name)} {metrics[name]:.3g}" for name in KEY_METRICS
        if name in metrics
    )  # fmt: skip


def sheet_size(count: int, cell: int = 256, columns: int | None = None) -> tuple[int, int]:
    """(width, height) of a contact sheet with ``count`` cells."""
    columns = columns or min(count, 4)
    grid_rows = math.ceil(count / columns)
    return columns * (cell + PADDING) + PADDING, grid_rows * (
        cell + LINE_HEIGHT * LABEL_LINES + 2 * PADDING
    ) + PADDING


def contact_sheet(content: Any, style: Any, rows: Sequence[ComparisonRow], cell: int = 256,
                  columns: int | None = None) -> Image.Image:  # fmt: skip
    """A grid of the content, the style and each result, each labelled underneath with its
    setting, time and key metrics. ``cell``: the long side of each thumbnail in pixels."""
    if cell < 16:
        raise InputError(f"cell must be at least 16 pixels, got {cell}")
    cells = [(_as_pil(content), ["content"]), (_as_pil(style), ["style"])]
    for row in rows:
        cells.append(
            (_as_pil(row.image), [row.label, f"{row.seconds:.1f} s", format_metrics(row.metrics)])
        )
    columns = columns or min(len(cells), 4)
    width, height = sheet_size(len(cells), cell, columns)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    block = cell + LINE_HEIGHT * LABEL_LINES + 2 * PADDING
    for index, (picture, texts) in enumerate(cells):
        left = PADDING + (index % columns) * (cell + PADDING)
        top = PADDING + (index // columns) * block
        thumb = picture.copy()
        scale = cell / max(thumb.size)
        size = (max(1, round(thumb.width * scale)), max(1, round(thumb.height * scale)))
        thumb = thumb.resize(size, Image.Resampling.LANCZOS)
        # Bottom-aligned in its square, so the label sits right under every picture.
        sheet.paste(thumb, (left + (cell - size[0]) // 2, top + cell - size[1]))
        lines = [line for text in texts for line in _wrap(draw, text, font, cell)]
        if len(lines) > LABEL_LINES:  # keep the time and metrics; shorten the setting
            lines = lines[: LABEL_LINES - 2] + lines[-2:]
        for number, line in enumerate(lines):
            draw.text((left, top + cell + PADDING + number * LINE_HEIGHT), line, fill="black",
                      font=font)  # fmt: skip
    return sheet


# --------------------------------------------------------------------------- reports


def _write_text(path: str | os.PathLike, text: str) -> Path:
    from .images import _atomic_write

    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"cannot write '{path}': it is a directory")
    if not path.parent.is_dir():
        raise InputError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    data = text.encode("utf-8")
    _atomic_write(path, lambda handle: handle.write(data))
    return path


def write_report(rows: Sequence[ComparisonRow], json_path: str | os.PathLike | None = None,
                 csv_path: str | os.PathLike | None = None) -> None:  # fmt: skip
    """Write the rows (no images) as a JSON list and/or a CSV table (one line per setting)."""
    if json_path is not None:
        entries = [row.to_dict() for row in rows]
        _write_text(json_path, json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    if csv_path is not None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["label", "seconds", *KEY_METRICS, "backbone", "metrics_backbone"])
        for row in rows:
            values = [f"{row.metrics[m]:.6g}" if m in row.metrics else "" for m in KEY_METRICS]
            writer.writerow([row.label, f"{row.seconds:.3f}", *values, row.backbone,
                             row.metrics_backbone])  # fmt: skip
        _write_text(csv_path, buffer.getvalue())
