"""Compare settings side by side: stylise a content/style pair (or several) once per setting,
score each result, and lay them out on a labelled contact sheet (``impasto compare``).

A setting is a string of comma-separated ``key=value`` pairs naming fields of a method's config
(``method=NAME`` picks the method, default gatys), e.g. ``"style_weight=3e4,preserve_color=
luminance"`` or ``"method=fast,model=vangogh-bedroom"``; values are parsed by the field's type.
Without settings, every available method of the table runs at its defaults (with the options
its row asks for in a comparison, e.g. the shipped fast model), so methods sit side by side.

>>> from impasto.compare import compare, contact_sheet, write_results
>>> result = compare("photo.jpg", "painting.jpg", ["style_weight=1e3", "style_weight=1e5"],
...                  {"size": 256, "steps": 50})
>>> save_image(contact_sheet(result.content, result.style, result.rows), "sheet.png")
>>> write_results(result.rows, "sheet")  # sheet/01-style_weight=1e3.png, ...

Several pairs run every setting on each (``compare_pairs``), one ``ComparisonResult`` per pair;
the sheet has a row per pair:

>>> results = compare_pairs([("photo.jpg", "painting.jpg"), ("city.jpg", "ink.png")],
...                         ["method=gatys", "method=adain"], {"size": 256})
>>> save_image(pairs_sheet(results), "sheet.png")
>>> rows = [row for result in results for row in result.rows]
>>> names = pair_result_names([(r.content_name, r.style_name) for r in results],
...                           [row.label for row in results[0].rows])
>>> write_results(rows, "sheet", names=names)  # sheet/photo-painting-01-method=gatys.png, ...

This module parses the settings and runs them; ``impasto.comparison`` holds what a run produces
and how it is written (rows, shared settings, sheet, result files, reports), and its names are
re-exported here. Every row keeps the whole config it ran with (``ComparisonRow.config``);
``shared_settings`` sums up the settings that matter most (size, steps, seed, backbone) for the
sheet's title.

The library raises InputError (never prints); the CLI turns that into one line on stderr.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from .comparison import (
    KEY_METRICS,
    PER_RESULT,
    SHARED_SETTINGS,
    ComparisonResult,
    ComparisonRow,
    contact_sheet,
    format_metrics,
    pair_result_names,
    pairs_sheet,
    result_names,
    settings_text,
    shared_settings,
    write_report,
    write_results,
)
from .config import config_to_dict
from .errors import InputError, WeightsError
from .methods.registry import (
    DEFAULT_METHOD,
    METHOD_CHOICES,
    available_methods,
    entry,
    load_method,
)
from .progress import ProgressCallback

__all__ = [
    "KEY_METRICS",
    "PER_RESULT",
    "PIXEL_METRICS",
    "SHARED_SETTINGS",
    "ComparisonResult",
    "ComparisonRow",
    "compare",
    "compare_pairs",
    "contact_sheet",
    "default_settings",
    "format_metrics",
    "pair_result_names",
    "pairs_sheet",
    "parse_setting",
    "parse_settings",
    "result_names",
    "settings_text",
    "shared_settings",
    "write_report",
    "write_results",
]

PIXEL_METRICS: tuple[str, ...] = ("ssim", "color_distance")
"""The metrics of a row when no feature network has weights here."""

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


# --------------------------------------------------------------------------- settings


def _method_of(text: str) -> str:
    """The ``method=`` of a setting (default gatys), checked against the method table."""
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "method":
            if value.strip() not in METHOD_CHOICES:
                raise InputError(
                    f"setting {text!r}: unknown method '{value.strip()}'; choose from: "
                    f"{', '.join(METHOD_CHOICES)}"
                )
            return value.strip()
    return DEFAULT_METHOD


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
    """``"style_weight=3e4,preserve_color=luminance"`` -> ``{"style_weight": 30000.0, ...}``
    (with ``"method"`` when the setting names one).

    Raises InputError naming an unknown field, a field given twice, a value of the wrong type
    or out of range. An empty string means the base options unchanged.
    """
    from .pipeline import make_config

    method = _method_of(text)
    config_class = load_method(method).config_class
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
    try:
        make_config(method, options, _style_count(method))
    except InputError as error:
        raise InputError(f"setting {text!r}: {error}") from None
    return {"method": method, **options} if method != DEFAULT_METHOD else options


def _style_count(method: str) -> int:
    """Style images a method gets in a comparison: the one STYLE, or none for model methods."""
    return 1 if entry(method).takes_styles else 0


def default_settings(notify: Callable[[str], Any] | None = None) -> list[str]:
    """One setting per available method at its defaults (plus what its row needs to run in a
    comparison, e.g. a shipped model): what ``impasto compare`` runs without --settings. A
    method whose weights are not on this machine (the diffusion models before `impasto
    download`) is left out, and ``notify`` says so with the command that fetches them."""
    from .pipeline import make_config

    settings = []
    for name in available_methods():
        method = load_method(name)
        extra = method.compare_options
        missing = method.missing_weights(make_config(name, dict(extra), _style_count(name)))
        if missing is not None:
            if notify is not None:
                notify(f"left out: method {name}: {missing}")
            continue
        settings.append(",".join([f"method={name}", *(f"{k}={v}" for k, v in extra.items())]))
    return settings


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


def _score(image, content, style, made_with: str, metrics_backbone: Any, cache: dict):
    """The key metrics; style_ratio is skipped (noted in ``unavailable``) without weights.
    ``made_with``: the backbone that made ``image`` ("" for a method that uses none)."""
    from . import metrics

    made_with = made_with or None
    try:
        network = metrics_backbone
        if isinstance(network, str):
            name = metrics.choose_backbone(made_with) if network == "auto" else network
            if name not in cache:
                cache[name] = metrics.load_scoring_backbone(name)
            network = cache[name]
        report = metrics.evaluate(
            image,
            content,
            style,
            backbone=network,
            made_with=made_with,
            metrics=KEY_METRICS,
            references=False,
        )
    except WeightsError as error:
        report = metrics.evaluate(image, content, style, metrics=PIXEL_METRICS, references=False)
        report.unavailable["style_ratio"] = str(error)
    return report


def _fields(method: str) -> set[str]:
    return {f.name for f in dataclasses.fields(load_method(method).config_class)}


def compare(
    content: Any,
    style: Any,
    settings: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
    base_options: dict[str, Any] | None = None,
    progress: Callable[[int, int, ComparisonRow], Any] | None = None,
    *,
    metrics_backbone: Any = "auto",
    notify: Callable[[str], Any] | None = None,
    events: ProgressCallback | None = None,
) -> ComparisonResult:
    """Stylise ``content`` with ``style`` once per setting and score each result.

    ``settings``: None runs ``default_settings()`` (every method that can run here: one whose
    weights are missing is left out, said through ``notify``). ``base_options``:
    options shared by every run, applied to each method that has them (a setting overrides
    them); every run uses the same seed unless a setting names one. ``progress(index, total,
    row)`` is called after each finished setting; ``events`` receives the progress events of
    the work (downloads, steps). ``metrics_backbone``: network for style_ratio ("auto" avoids
    the one that made the image; without weights the metric is skipped). ``compare_pairs``
    with one pair.
    """
    (result,) = compare_pairs(
        [(content, style)],
        settings,
        base_options,
        progress,
        metrics_backbone=metrics_backbone,
        notify=notify,
        events=events,
    )
    return result


def compare_pairs(
    pairs: Sequence[tuple[Any, Any]],
    settings: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
    base_options: dict[str, Any] | None = None,
    progress: Callable[[int, int, ComparisonRow], Any] | None = None,
    *,
    metrics_backbone: Any = "auto",
    notify: Callable[[str], Any] | None = None,
    events: ProgressCallback | None = None,
) -> list[ComparisonResult]:
    """Stylise each ``(content, style)`` pair once per setting and score each result; one
    ``ComparisonResult`` per pair, in order, its rows in the order of the settings and named
    after the pair's files (``content_name``, ``style_name``; "" for an image made in memory).

    Every setting and every image is checked before any work. ``progress(index, total, row)``
    is called after each result, counting over every pair (total: pairs x settings); a notice
    (e.g. a backbone fallback) reaches ``notify`` once. The rest as ``compare``.
    """
    plans = _plans(default_settings(notify) if settings is None else settings, base_options)
    loaded = _load_pairs(_checked_pairs(pairs))
    said: set[str] = set()  # a notice (e.g. a backbone fallback) is said once, not per setting

    def notify_once(line: str) -> None:
        if notify is not None and line not in said:
            said.add(line)
            notify(line)

    networks: dict[str, Any] = {}  # loaded metric networks, by name, shared by every pair
    total = len(loaded) * len(plans)
    results = []
    for pair_index, (content, style) in enumerate(loaded):
        names = (_file_name(content), _file_name(style))
        rows: list[ComparisonRow] = []
        for setting_index, plan in enumerate(plans):
            row = _run(plan, content, style, metrics_backbone, networks, notify_once, events)
            row.content_name, row.style_name = names
            rows.append(row)
            if progress is not None:
                progress(pair_index * len(plans) + setting_index, total, row)
        results.append(ComparisonResult(rows, content.rgb, style.rgb, *names))
    return results


def _plans(
    settings: Sequence[str | tuple[str, dict[str, Any]]], base_options: dict[str, Any] | None
) -> list[tuple[str, str, dict[str, Any], Any]]:
    """(label, method, the setting's options, config) per setting, each config made and checked
    over the shared ``base_options`` (seed 0 unless given)."""
    from .pipeline import make_config

    parsed = parse_settings(settings)
    base = dict(base_options or {})
    known = set().union(*(_fields(name) for name in METHOD_CHOICES))
    unknown = sorted(set(base) - known)
    if unknown:
        raise InputError(f"unknown option(s): {', '.join(unknown)}")
    base.setdefault("seed", 0)
    plans = []
    for label, options in parsed:
        options = dict(options)
        method = options.pop("method", DEFAULT_METHOD)
        shared = {k: v for k, v in base.items() if k in _fields(method)}
        try:
            config = make_config(method, {**shared, **options}, _style_count(method))
            missing = load_method(method).missing_weights(config)
        except InputError as error:
            raise InputError(f"setting {label!r}: {error}") from None
        if missing is not None:  # said now, not after the settings before it have run
            raise WeightsError(f"setting {label!r}: {missing}")
        plans.append((label, method, options, config))
    return plans


def _checked_pairs(pairs: Sequence[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """``pairs`` as a list of (content, style); InputError when empty or an item is no pair."""
    if isinstance(pairs, str | os.PathLike) or not isinstance(pairs, Sequence):
        raise InputError(f"expected a list of (content, style) pairs, got {type(pairs).__name__}")
    if not pairs:
        raise InputError("no pair to compare; give at least one (content, style)")
    for number, pair in enumerate(pairs, start=1):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise InputError(f"pair {number}: expected (content, style), got {pair!r:.80}")
    return [(content, style) for content, style in pairs]


def _load_pairs(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Each pair's images read (impasto.pipeline.as_image), all before any work."""
    from .pipeline import as_image

    several = len(pairs) > 1
    loaded = []
    for number, (content, style) in enumerate(pairs, start=1):
        where = f"pair {number}'s " if several else ""
        loaded.append(
            (
                as_image(content, what=f"{where}content image"),
                as_image(style, what=f"{where}style image"),
            )
        )
    return loaded


def _file_name(image: Any) -> str:
    """The file a loaded image came from, as given; "" for one made in memory."""
    from .pipeline import source_of

    source = source_of(image)
    return "" if source is None else str(source)


def _run(plan, content_image, style_image, metrics_backbone, networks, notify, events):
    """One setting on one pair: stylise, score; the ComparisonRow."""
    from .pipeline import prepare, stylize_one

    label, method, options, config = plan
    styles = [style_image] if _style_count(method) else []
    prepared = prepare(method, config, styles, progress=events, notify=notify)
    result = stylize_one(prepared, content_image, events)
    report = _score(
        result.image,
        content_image.rgb,
        style_image.rgb,
        result.backbone,
        metrics_backbone,
        networks,
    )
    return ComparisonRow(
        label=label,
        options={"method": method, **options} if method != DEFAULT_METHOD else options,
        seconds=float(result.seconds),
        metrics=dict(report.metrics),
        image=result.image,
        backbone=result.backbone,
        metrics_backbone=report.backbone,
        unavailable={k: v for k, v in report.unavailable.items() if k in KEY_METRICS},
        config=config_to_dict(config),
        alpha=result.alpha,
        record=result.provenance(),
    )
