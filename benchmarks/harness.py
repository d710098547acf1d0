#!/usr/bin/env python
"""Benchmark harness for every stylisation method: speed, peak memory and quality, one table.

For each (method, content/style pair, size, device) it runs the method once through its entry in
``METHOD_RUNNERS`` and records wall-clock seconds, peak memory and quality metrics (``ssim``,
``style_ratio``, ``color_distance`` from ``impasto.metrics.evaluate``). Speed is reported as a
ratio against a reference measured in the same run (see ``REFERENCE_DEFINITION``), because
absolute timings on a shared machine are noisy.

Prints one JSON document on stdout (progress notes go to stderr); ``--markdown FILE`` also writes
a Markdown table. Runs on the CPU and on CUDA unchanged. Adding a method = one row in
``METHOD_RUNNERS``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import impasto
from impasto.errors import WeightsError
from impasto.images import load_image
from impasto.metrics import evaluate

# The sibling benchmarks/report.py, also when this file is loaded by path (tests do).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import to_json, write_atomic  # noqa: E402

SCHEMA_VERSION = 1
DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared/data/images"
BUNDLED_ASSETS = Path(impasto.__file__).resolve().parent / "assets"
BUNDLED_PAIR = ("washington_monument.jpg", "vangogh_bedroom_in_arles.jpg")
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("kodim08.png", "vangogh-bedroom_in_arles.jpg"),
    ("washington_monument.jpg", "udnie.jpg"),
    ("kodim23.png", "dore_adventure_with_the_windmills.jpg"),
    ("kodim04.png", "monet-charing_cross_bridge.jpg"),
)
METRIC_NAMES = ("ssim", "style_ratio", "color_distance")
REFERENCE_DEFINITION = (
    "For each (pair, size, device): one plain Gatys run through impasto.stylize with the same "
    "options as the measured runs except precision='fp32' and compile=False (fp32 eager, no "
    "autocast). impasto's global device settings still apply (on CUDA stylize turns TF32 and "
    "cudnn.benchmark on). ratio_vs_reference = reference_seconds / seconds (> 1: faster than "
    "the reference)."
)
SAME_AS_REFERENCE_NOTE = (
    "gatys with precision 'auto' on the CPU runs fp32 without compile, i.e. the reference "
    "configuration: its ratio only shows run-to-run noise (expected near 1)."
)

Runner = Callable[[torch.Tensor, torch.Tensor, int, str, dict], tuple[torch.Tensor, str]]


def note(message: str) -> None:
    """A progress line on stderr (stdout carries only the JSON document)."""
    print(f"[harness {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- methods


def run_gatys(
    content: torch.Tensor, style: torch.Tensor, size: int, device: str, options: dict
) -> tuple[torch.Tensor, str]:
    """Gatys et al. (2016) through the public API; returns (image (1, 3, H, W), backbone name)."""
    result = impasto.stylize(content, style, method="gatys", size=size, device=device, **options)
    return result.image, result.backbone


METHOD_RUNNERS: dict[str, Runner] = {
    "gatys": run_gatys,
}
"""Method name -> callable(content, style, size, device, options) -> (image, backbone name).

``options`` holds ``steps``, ``backbone``, ``seed``, ``precision`` and ``compile``; a runner
maps them onto its method's config (ignoring those it has no use for)."""


def reference_options(options: dict) -> dict:
    """The reference run's options: the same, except plain fp32 eager."""
    return {**options, "precision": "fp32", "compile": False}


def same_as_reference(method: str, device: str, options: dict) -> bool:
    """Whether this measured run has exactly the reference's configuration."""
    precision = options.get("precision", "auto")
    fp32 = precision == "fp32" or (precision == "auto" and device == "cpu")
    return method == "gatys" and fp32 and not options.get("compile", False)


def check_methods(names: list[str]) -> list[str]:
    """Validate method names against ``METHOD_RUNNERS``; ValueError names the choices."""
    unknown = [name for name in names if name not in METHOD_RUNNERS]
    if unknown:
        raise ValueError(
            f"unknown method(s) {', '.join(repr(n) for n in unknown)}; "
            f"choose from: {', '.join(METHOD_RUNNERS)}"
        )
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
    runner: Runner,
    content: torch.Tensor,
    style: torch.Tensor,
    size: int,
    device: str,
    options: dict,
) -> tuple[torch.Tensor, str, float, dict]:
    """Run once; (image on the CPU, backbone name, seconds, peak memory entry)."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = rss_mib()
    started = time.perf_counter()
    image, backbone = runner(content, style, size, device, options)
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
    return image.detach().float().cpu(), backbone, seconds, memory


def score(
    image: torch.Tensor,
    content: torch.Tensor,
    style: torch.Tensor,
    made_with: str,
    metric_backbone: str,
) -> dict:
    """ssim, style_ratio, color_distance; falls back to ``made_with`` when 'auto' finds no
    pretrained network (the report then notes that the metrics flatter the method)."""
    try:
        report = evaluate(
            image, content, style, backbone=metric_backbone, made_with=made_with,
            metrics=METRIC_NAMES,
        )  # fmt: skip
    except WeightsError as error:
        if metric_backbone != "auto":
            raise
        report = evaluate(
            image, content, style, backbone=made_with, made_with=made_with, metrics=METRIC_NAMES
        )
        report.notes.insert(0, f"metric backbone 'auto' unavailable ({error})")
    return {
        "metrics": report.metrics,
        "metrics_backbone": report.backbone,
        "metrics_unavailable": report.unavailable,
        "metrics_notes": report.notes,
    }


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# --------------------------------------------------------------------------- header, output


def machine_info() -> dict:
    cpu_model = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1min_at_start"] = round(os.getloadavg()[0], 2)
    return info


def _cell(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


MARKDOWN_COLUMNS = (
    "method", "pair", "size", "device", "seconds", "ratio", "peak MiB",
    "ssim", "style_ratio", "color_distance",
)  # fmt: skip


def to_markdown(document: dict) -> str:
    """One row per result entry; '-' where a value is missing (e.g. a failed run)."""
    lines = [
        "| " + " | ".join(MARKDOWN_COLUMNS) + " |",
        "|" + "---|" * len(MARKDOWN_COLUMNS),
    ]
    for entry in document["results"]:
        metrics = entry.get("metrics", {})
        cells = [
            entry["method"],
            entry["pair"],
            entry["size"],
            entry["device"],
            _cell(entry.get("seconds"), 3),
            _cell(entry.get("ratio_vs_reference"), 2),
            _cell((entry.get("memory") or {}).get("peak_mib"), 1),
            *(_cell(metrics.get(name)) for name in METRIC_NAMES),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    memory_kind = "CUDA: max allocated; CPU: process peak RSS growth"
    lines.append("")
    lines.append(
        f"ratio = reference seconds / seconds (reference: plain fp32 eager Gatys, same run). "
        f"peak MiB: {memory_kind}."
    )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark impasto's methods: seconds, ratio vs a same-run reference, "
        "peak memory and quality metrics; prints JSON.",
    )
    add = parser.add_argument
    add("--methods", nargs="+", default=["gatys"], help=f"from: {', '.join(METHOD_RUNNERS)}")
    add("--sizes", nargs="+", type=int, help="long sides in pixels (default 256; --quick 64)")
    add("--devices", nargs="+", choices=("cpu", "cuda"), default=["cpu"])
    add("--steps", type=int, help="optimiser steps per scale (default: the method's; --quick 5)")
    add("--backbone", default="auto", help="feature network for the methods (default: auto)")
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
            "warmup": "one untimed 32 px, 1-step run per device before any timing",
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
        # First-use costs (cuDNN/CUDA context, allocator, thread pool) belong to no entry.
        warmup_options = {**reference_options(options), "steps": 1}
        try:
            run_gatys(image(pairs[0].content), image(pairs[0].style), 32, device, warmup_options)
        except Exception as error:  # noqa: BLE001 - the measured runs will report it
            note(f"warm-up on {device} failed: {error_text(error)}")
        for pair in pairs:
            content, style = image(pair.content), image(pair.style)
            for size in args.sizes:
                where = f"{pair.name} at {size} px on {device}"
                reference: dict = {"pair": pair.name, "size": size, "device": device}
                try:
                    _, backbone, seconds, memory = timed_run(
                        run_gatys, content, style, size, device, reference_options(options)
                    )
                    reference |= {"seconds": round(seconds, 4), "backbone": backbone}
                    reference["memory"] = memory
                    note(f"reference {where}: {seconds:.2f} s")
                except Exception as error:  # noqa: BLE001 - report and go on
                    reference["error"] = error_text(error)
                    note(f"reference {where} FAILED: {reference['error'][:300]}")
                document["references"].append(reference)
                for method in args.methods:
                    entry: dict = {"method": method, "pair": pair.name, "size": size}
                    entry |= {"device": device, "options": options}
                    entry["same_config_as_reference"] = same_as_reference(method, device, options)
                    if entry["same_config_as_reference"]:
                        entry["note"] = SAME_AS_REFERENCE_NOTE
                    try:
                        output, backbone, seconds, memory = timed_run(
                            METHOD_RUNNERS[method], content, style, size, device, options
                        )
                        entry |= {"seconds": round(seconds, 4), "backbone": backbone}
                        reference_seconds = reference.get("seconds")
                        entry["reference_seconds"] = reference_seconds
                        entry["ratio_vs_reference"] = (
                            round(reference_seconds / seconds, 3) if reference_seconds else None
                        )
                        entry["memory"] = memory
                        entry["output_size"] = list(output.shape[-2:])
                        entry |= score(output, content, style, backbone, args.metric_backbone)
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
