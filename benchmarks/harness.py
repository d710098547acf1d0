#!/usr/bin/env python
"""Benchmark harness for every stylisation method: speed, peak memory and quality, one table.

The methods are those of impasto's method table (``impasto.methods.registry``): every one that
can run here, or those named by ``--methods``. For each (method, content/style pair, size,
device) it runs the method once through ``impasto.stylize`` with options derived from the
method's config fields (``method_options``) and records wall-clock seconds, peak memory and
quality metrics (``ssim``, ``style_ratio``, ``color_distance`` from ``impasto.metrics.evaluate``).
Speed is reported as a ratio against a reference measured in the same run (see
``REFERENCE_DEFINITION``), because absolute timings on a shared machine are noisy.

Prints one JSON document on stdout (progress notes go to stderr); ``--markdown FILE`` also writes
a Markdown table. Runs on the CPU and on CUDA unchanged. A method added to impasto's table is
benchmarked without editing this file. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import impasto
from impasto.errors import WeightsError
from impasto.images import load_image
from impasto.methods.base import StyleResult
from impasto.methods.registry import METHODS, available_methods, load_method, missing_requirement
from impasto.metrics import evaluate

# The sibling modules benchmarks/report.py and harness_report.py, also when this file is loaded
# by path (tests do).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness_report import METRIC_NAMES, machine_info, to_markdown  # noqa: E402
from report import to_json, write_atomic  # noqa: E402

SCHEMA_VERSION = 2  # 2: methods from impasto's table; per-method options, ignored_options, ran_on
REFERENCE_METHOD = "gatys"
DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared/data/images"
BUNDLED_ASSETS = Path(impasto.__file__).resolve().parent / "assets"
BUNDLED_PAIR = ("washington_monument.jpg", "vangogh_bedroom_in_arles.jpg")
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("kodim08.png", "vangogh-bedroom_in_arles.jpg"),
    ("washington_monument.jpg", "udnie.jpg"),
    ("kodim23.png", "dore_adventure_with_the_windmills.jpg"),
    ("kodim04.png", "monet-charing_cross_bridge.jpg"),
)
PIXEL_METRICS = ("ssim", "color_distance")  # need no feature network
REFERENCE_DEFINITION = (
    "For each (pair, size, device): one plain Gatys run through impasto.stylize with the same "
    "options as the measured Gatys runs except precision='fp32' and compile=False (fp32 eager, no "
    "autocast). impasto's global device settings still apply (on CUDA stylize turns TF32 and "
    "cudnn.benchmark on). ratio_vs_reference = reference_seconds / seconds (> 1: faster than "
    "the reference)."
)
SAME_AS_REFERENCE_NOTE = (
    "gatys with precision 'auto' on the CPU runs fp32 without compile, i.e. the reference "
    "configuration: its ratio only shows run-to-run noise (expected near 1)."
)
NO_STYLE_IMAGE_NOTE = (
    "takes no style image: its style is in its model; the metrics still compare the result "
    "with the pair's style image."
)
NO_DEVICE_NOTE = "has no device option: it runs where it runs (see ran_on)."


def note(message: str) -> None:
    """A progress line on stderr (stdout carries only the JSON document)."""
    print(f"[harness {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- methods


def method_options(method: str, size: int, device: str, options: dict) -> tuple[dict, list[str]]:
    """The keywords of ``impasto.stylize`` for ``method``, and the harness options it has no
    config field for.

    The harness's ``size``, ``device`` and ``options`` (``steps``, ``backbone``, ``seed``,
    ``precision``, ``compile``) are kept where the method's config dataclass has a field of that
    name; then the method's own ``compare_options`` (what it needs to run at all, e.g. fast's
    shipped model) are added, as ``impasto compare`` does.
    """
    method_object = load_method(method)
    fields = {field.name for field in dataclasses.fields(method_object.config_class)}
    offered = {"size": size, "device": device, **options}
    derived = {name: value for name, value in offered.items() if name in fields}
    derived |= dict(method_object.compare_options)
    return derived, sorted(set(offered) - fields)


def run_method(
    method: str, content: torch.Tensor, style: torch.Tensor, options: dict
) -> StyleResult:
    """``method`` through the public API; the style image only for methods that take one."""
    styles = style if METHODS[method].takes_styles else None
    return impasto.stylize(content, styles, method=method, **options)


def reference_options(options: dict) -> dict:
    """The reference run's options: the same, except plain fp32 eager."""
    return {**options, "precision": "fp32", "compile": False}


def same_as_reference(method: str, device: str, options: dict) -> bool:
    """Whether this measured run has exactly the reference's configuration."""
    precision = options.get("precision", "auto")
    fp32 = precision == "fp32" or (precision == "auto" and device == "cpu")
    return method == REFERENCE_METHOD and fp32 and not options.get("compile", False)


def check_methods(names: list[str] | None) -> list[str]:
    """Method names checked against impasto's method table (None: every method that can run
    here); ValueError names the choices, or what a method that cannot run here needs."""
    if names is None:
        return list(available_methods())
    unknown = [name for name in names if name not in METHODS]
    if unknown:
        raise ValueError(
            f"unknown method(s) {', '.join(repr(n) for n in unknown)}; "
            f"choose from: {', '.join(METHODS)}"
        )
    missing = [f"{name} {missing_requirement(name)}" for name in names if missing_requirement(name)]
    if missing:
        raise ValueError(f"cannot run here: {'; '.join(missing)}")
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Pair:
    name: str  # "content.png + style.jpg"
    content: Path
    style: Path


def find_image(folder: Path, kind: str, name: str) -> Path | None:
    """``folder/kind/name`` (the shared layout) or ``folder/name`` (a flat folder)."""
    for candidate in (folder / kind / name, folder / name):
        if candidate.is_file():
            return candidate
    return None


def select_pairs(images: Path, count: int | None) -> tuple[list[Pair], list[str]]:
    """The first ``count`` default pairs found under ``images``, else the bundled pair; notes."""
    notes: list[str] = []
    pairs: list[Pair] = []
    if images.is_dir():
        for content_name, style_name in DEFAULT_PAIRS:
            content = find_image(images, "content", content_name)
            style = find_image(images, "style", style_name)
            if content is None or style is None:
                notes.append(f"pair {content_name} + {style_name} not found in {images}; skipped")
                continue
            pairs.append(Pair(f"{content_name} + {style_name}", content, style))
    else:
        notes.append(f"images folder {images} not found")
    if not pairs:
        content_name, style_name = BUNDLED_PAIR
        notes.append(f"using the bundled sample pair from {BUNDLED_ASSETS}")
        pairs.append(
            Pair(
                f"{content_name} + {style_name}",
                BUNDLED_ASSETS / content_name,
                BUNDLED_ASSETS / style_name,
            )
        )
    return (pairs[:count] if count else pairs), notes


# --------------------------------------------------------------------------- measuring


def rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (ru_maxrss: KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def timed_run(
    method: str,
    content: torch.Tensor,
    style: torch.Tensor,
    device: str,
    options: dict,
) -> tuple[torch.Tensor, StyleResult, float, dict]:
    """Run once; (image on the CPU, the result, seconds, peak memory entry)."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = rss_mib()
    started = time.perf_counter()
    result = run_method(method, content, style, options)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    if device == "cuda":
        memory = {
            "peak_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            "peak_kind": "torch.cuda.max_memory_allocated (after reset_peak_memory_stats)",
        }
    else:
        memory = {
            "peak_mib": round(rss_mib() - rss_before, 1),
            "peak_kind": "process peak RSS growth (ru_maxrss after - before); 0 when an "
            "earlier run in this process already reached a higher peak",
        }
    return result.image.detach().float().cpu(), result, seconds, memory


def score(
    image: torch.Tensor,
    content: torch.Tensor,
    style: torch.Tensor,
    made_with: str | None,
    metric_backbone: str,
) -> dict:
    """ssim, style_ratio, color_distance; falls back to ``made_with`` when 'auto' finds no
    pretrained network (the report then notes that the metrics flatter the method), and to the
    pixel metrics alone when the method used no network either.
    ``made_with``: the backbone that made ``image`` (None for a method that uses none)."""
    try:
        report = evaluate(
            image, content, style, backbone=metric_backbone, made_with=made_with,
            metrics=METRIC_NAMES, references=False,
        )  # fmt: skip
    except WeightsError as error:
        if metric_backbone != "auto":
            raise
        if made_with is None:
            report = evaluate(image, content, style, metrics=PIXEL_METRICS, references=False)
            report.unavailable["style_ratio"] = str(error)
        else:
            report = evaluate(
                image, content, style, backbone=made_with, made_with=made_with,
                metrics=METRIC_NAMES, references=False,
            )  # fmt: skip
        report.notes.insert(0, f"metric backbone 'auto' unavailable ({error})")
    return {
        "metrics": report.metrics,
        "metrics_backbone": report.backbone,
        "metrics_unavailable": report.unavailable,
        "metrics_notes": report.notes,
    }


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark impasto's methods: seconds, ratio vs a same-run reference, "
        "peak memory and quality metrics; prints JSON.",
    )
    add = parser.add_argument
    add(
        "--methods",
        nargs="+",
        help=f"from impasto's method table: {', '.join(METHODS)} (default: every one that can "
        f"run here: {', '.join(available_methods())})",
    )
    add("--sizes", nargs="+", type=int, help="long sides in pixels (default 256; --quick 64)")
    add("--devices", nargs="+", choices=("cpu", "cuda"), default=["cpu"])
    add("--steps", type=int, help="optimiser steps per scale (default: the method's; --quick 5)")
    add(
        "--backbone",
        default="auto",
        help="feature network for the methods that have one (default: auto)",
    )
    add(
        "--metric-backbone",
        default="auto",
        help="network for the feature metrics (default: auto, one other than the method's; "
        "falls back to the method's own when no other has weights)",
    )
    add("--seed", type=int, default=0)
    add("--pairs", type=int, help="use the first N content/style pairs (default: all; --quick 1)")
    add("--images", type=Path, default=DEFAULT_IMAGES, help=f"default: {DEFAULT_IMAGES}")
    add("--out", type=Path, help="also write the JSON here (rewritten after each run)")
    add("--markdown", type=Path, help="write a Markdown table here")
    add("--quick", action="store_true", help="smoke test: size 64, 1 pair, 5 steps")
    args = parser.parse_args(argv)
    try:
        args.methods = check_methods(args.methods)
    except ValueError as error:
        parser.error(f"--methods: {error}")
    if "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices cuda: no CUDA GPU is available to torch")
    if args.sizes is None:
        args.sizes = [64] if args.quick else [256]
    if any(size < 16 for size in args.sizes):
        parser.error("--sizes: sizes must be at least 16 px")
    if args.steps is None and args.quick:
        args.steps = 5
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps: {args.steps} is too small")
    if args.pairs is None and args.quick:
        args.pairs = 1
    if args.pairs is not None and args.pairs < 1:
        parser.error(f"--pairs: {args.pairs} is too small")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pairs, pair_notes = select_pairs(args.images, args.pairs)
    for line in pair_notes:
        note(line)
    options: dict = {"backbone": args.backbone, "seed": args.seed}
    options |= {"precision": "auto", "compile": False}
    if args.steps is not None:
        options["steps"] = args.steps

    # torch.optim imports torch._dynamo on first use (seconds): pay it before any timing.
    started = time.perf_counter()
    importlib.import_module("torch._dynamo")
    dynamo_seconds = round(time.perf_counter() - started, 3)

    document: dict = {
        "benchmark": "impasto method harness: seconds, ratio vs same-run reference, memory, "
        "quality",
        "schema_version": SCHEMA_VERSION,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "impasto_version": impasto.__version__,
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "machine": machine_info(),
        "settings": {
            "methods": args.methods,
            "sizes": args.sizes,
            "devices": args.devices,
            "options": options,
            "metric_backbone": args.metric_backbone,
            "images": str(args.images),
            "pairs": [
                {"name": p.name, "content": str(p.content), "style": str(p.style)} for p in pairs
            ],  # fmt: skip
            "notes": pair_notes,
            "one_time_torch_dynamo_import_seconds": dynamo_seconds,
            "warmup": "one untimed 32 px, 1-step run of the reference and of each method per "
            "device before any timing",
        },
        "reference_definition": REFERENCE_DEFINITION,
        "references": [],
        "results": [],
    }

    def save() -> None:
        if args.out is not None:
            write_atomic(args.out, to_json(document) + "\n")

    loaded: dict[Path, torch.Tensor] = {}

    def image(path: Path) -> torch.Tensor:
        if path not in loaded:
            loaded[path] = load_image(path).rgb
        return loaded[path]

    for device in args.devices:
        # First-use costs (cuDNN/CUDA context, allocator, thread pool, a method's imports and
        # model file) belong to no entry.
        for label, method in [("reference", REFERENCE_METHOD), *((m, m) for m in args.methods)]:
            try:
                warmup_options, _ = method_options(method, 32, device, {**options, "steps": 1})
                if label == "reference":
                    warmup_options = reference_options(warmup_options)
                run_method(method, image(pairs[0].content), image(pairs[0].style), warmup_options)
            except Exception as error:  # noqa: BLE001 - the measured runs will report it
                note(f"warm-up of {label} on {device} failed: {error_text(error)}")
        for pair in pairs:
            content, style = image(pair.content), image(pair.style)
            for size in args.sizes:
                where = f"{pair.name} at {size} px on {device}"
                reference: dict = {"pair": pair.name, "size": size, "device": device}
                try:
                    gatys_options, _ = method_options(REFERENCE_METHOD, size, device, options)
                    reference["options"] = reference_options(gatys_options)
                    _, result, seconds, memory = timed_run(
                        REFERENCE_METHOD, content, style, device, reference["options"]
                    )
                    backbone = result.backbone
                    reference |= {"seconds": round(seconds, 4), "backbone": backbone}
                    reference["memory"] = memory
                    note(f"reference {where}: {seconds:.2f} s")
                except Exception as error:  # noqa: BLE001 - report and go on
                    reference["error"] = error_text(error)
                    note(f"reference {where} FAILED: {reference['error'][:300]}")
                document["references"].append(reference)
                for method in args.methods:
                    entry: dict = {"method": method, "pair": pair.name, "size": size}
                    entry["device"] = device
                    try:
                        run_options, ignored = method_options(method, size, device, options)
                        entry |= {"options": run_options, "ignored_options": ignored}
                        same = same_as_reference(method, device, run_options)
                        entry["same_config_as_reference"] = same
                        notes = [SAME_AS_REFERENCE_NOTE] if same else []
                        if not METHODS[method].takes_styles:
                            notes.append(NO_STYLE_IMAGE_NOTE)
                        if "device" in ignored:
                            notes.append(NO_DEVICE_NOTE)
                        if notes:
                            entry["note"] = " ".join(notes)
                        output, result, seconds, memory = timed_run(
                            method, content, style, device, run_options
                        )
                        backbone = result.backbone
                        entry |= {"seconds": round(seconds, 4), "backbone": backbone}
                        entry["ran_on"] = result.device
                        reference_seconds = reference.get("seconds")
                        entry["reference_seconds"] = reference_seconds
                        entry["ratio_vs_reference"] = (
                            round(reference_seconds / seconds, 3) if reference_seconds else None
                        )
                        entry["memory"] = memory
                        entry["output_size"] = list(output.shape[-2:])
                        made_with = backbone or None  # "" from a method that uses no network
                        entry |= score(output, content, style, made_with, args.metric_backbone)
                        note(
                            f"{method} {where}: {seconds:.2f} s "
                            f"(x{entry['ratio_vs_reference']} vs reference)"
                        )
                    except Exception as error:  # noqa: BLE001 - report and go on
                        entry["error"] = error_text(error)
                        note(f"{method} {where} FAILED: {entry['error'][:300]}")
                    document["results"].append(entry)
                    save()
                if device == "cuda":
                    torch.cuda.empty_cache()

    save()
    if args.markdown is not None:
        write_atomic(args.markdown, to_markdown(document))
    print(to_json(document))
    return 1 if any("error" in e for e in document["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
