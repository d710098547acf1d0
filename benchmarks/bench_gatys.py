#!/usr/bin/env python
"""Speed benchmark of impasto's Gatys method: time per step and end-to-end seconds.

Prints one JSON document on stdout (progress notes go to stderr). Every speed figure comes with
a ratio against a reference measured in the same run on the same machine, because absolute
timings on a shared machine are noisy:

- ``step``: one loss evaluation (forward through the backbone up to its deepest requested layer,
  content + Gram style + TV losses, backward to the image), computed by the method's own
  ``impasto.methods.gatys.Objective``. The reference is plain fp32 eager (NCHW, no autocast,
  TF32 off, no compile); the variants are what impasto runs (CUDA_VARIANTS, CPU_VARIANTS).
  ``ratio_vs_reference = reference_ms / variant_ms`` (> 1 means faster than the reference).
- ``end_to_end``: ``impasto.methods.gatys.stylize`` with the default config. Its reference is an
  estimate: evaluations at each scale x the reference step time at that scale's size.

Runs on the CPU and on CUDA unchanged. Weights do not matter for speed: when pretrained weights
are not on the machine the backbone keeps its random initialisation and the JSON says
``"weights": "random (speed only)"``. See benchmarks/README.md.

This file is the command line (flags, the JSON document, the order of measurements); the work is
in its sibling modules: gatys_steps.py (variants, per-step timing), gatys_end_to_end.py
(``stylize`` runs, targets, published figures), gatys_inputs.py (images, backbones) and
gatys_machine.py (the machine's facts, load average, git commit, progress notes).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import signal
import sys
import tempfile
import time
from pathlib import Path

import torch

import impasto
from impasto.backbones import BACKBONES
from impasto.errors import ImpastoError
from impasto.methods.gatys import GatysConfig, scale_sizes

# The sibling modules of benchmarks/ (gatys_*.py, report.py), also when this file is loaded by
# path (tests do).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_busy import measure_busy  # noqa: E402
from gatys_end_to_end import (  # noqa: E402
    CUDA_GRAPH,
    OLD_DEFAULT,
    PUBLISHED_REFERENCE,
    measure_end_to_end,
    unfolded_twin,
)
from gatys_inputs import SHARED_IMAGES, build_backbone, default_layers, load_inputs  # noqa: E402
from gatys_machine import git_commit, load_average, machine_info, note  # noqa: E402
from gatys_steps import (  # noqa: E402
    CPU_VARIANTS,
    CUDA_VARIANTS,
    OPTIONAL_CPU_VARIANTS,
    REFERENCE,
    VARIANT_NAMES,
    Variant,
    error_text,
    free_memory,
    measure_steps,
)
from report import to_json, write_atomic  # noqa: E402

SCHEMA_VERSION = 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark impasto's Gatys method (per-step and end-to-end); prints JSON.",
        epilog="Ratios are speed-ups against a reference measured in the same run (> 1: faster).",
    )
    add = parser.add_argument
    add(
        "--devices",
        nargs="+",
        choices=("cpu", "cuda"),
        help="default: cpu, plus cuda when available",
    )
    add("--backbones", nargs="+", choices=list(BACKBONES), default=["vgg19", "efficientnet-lite0"])
    add(
        "--sizes",
        nargs="+",
        type=int,
        help="long sides for the per-step timings (default: 256 512 1024)",
    )
    add(
        "--e2e-sizes",
        nargs="*",
        type=int,
        help="long sides for end-to-end runs (default: see README; none: skip end to end)",
    )
    add(
        "--steps",
        type=int,
        help="optimiser steps per scale for end-to-end runs (default: the config's; the "
        "targets are judged only with the default)",
    )
    add(
        "--variants",
        nargs="+",
        choices=VARIANT_NAMES,
        help="per-step variants to time besides the reference (default: all for the device, "
        "except one_thread (CPU), timed only when named)",
    )
    add("--no-compile", action="store_true", help="skip the torch.compile variant")
    add("--warmup", type=int, help="warm-up steps (default 3; --quick 1)")
    add(
        "--timed-steps",
        type=int,
        help="timed steps (default: 10 on CUDA; CPU: 3 at >= 1024 px, else 5)",
    )
    add(
        "--cpu-vgg",
        action="store_true",
        help="also run VGG-19 end to end on the CPU (many minutes on 2 cores)",
    )
    add("--full", action="store_true", help="also run 1024 px end to end on the CPU")
    add(
        "--old-default",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time each end-to-end run's old default too (before issue 18: --steps at every "
        "scale, BatchNorm unfolded) and give the ratio",
    )
    add(
        "--cuda-graph",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="on CUDA, time each end-to-end run with --cuda-graph too (judged against the "
        "targets like the default: it changes the speed, not the result)",
    )
    add(
        "--random-weights",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random backbone weights (speed only); default: only for backbones whose "
        "pretrained weights are not on this machine",
    )
    add(
        "--images",
        type=Path,
        default=SHARED_IMAGES if SHARED_IMAGES.is_dir() else None,
        help="folder with content/ and style/ images (default: the shared test images when "
        "present, else synthetic images)",
    )
    add(
        "--quick",
        action="store_true",
        help="smoke test: sizes 64 128, 2 timed steps, end to end at 64 px with 5 steps",
    )
    add(
        "--busy",
        action="store_true",
        help="also time the whole command quiet and with one core taken by another process, "
        "under OpenMP's old wait behaviour and impasto's (gatys_busy.py)",
    )
    add("--busy-size", type=int, default=512, help="long side of the --busy runs (default 512)")
    add("--busy-steps", type=int, default=50, help="steps per scale of the --busy runs (50)")
    add("--out", type=Path, help="also write the JSON here (rewritten after each measurement)")
    args = parser.parse_args(argv)
    if args.devices is None:
        args.devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    if "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices cuda: no CUDA GPU is available to torch")
    for name in ("sizes", "e2e_sizes"):
        if any(s < 16 for s in getattr(args, name) or []):
            parser.error(f"--{name.replace('_', '-')}: sizes must be at least 16 px")
    for name in ("steps", "warmup", "timed_steps"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "warmup" else 1):
            parser.error(f"--{name.replace('_', '-')}: {value} is too small")
    return args


def e2e_sizes_for(args: argparse.Namespace, device: str, backbone: str) -> tuple[list[int], str]:
    """End-to-end sizes for one device and backbone, and why any were left out."""
    if args.quick and args.e2e_sizes is None:
        return [64], ""
    if device == "cpu" and backbone == "vgg19" and not args.cpu_vgg and not args.quick:
        return [], "VGG-19 end to end on the CPU is skipped without --cpu-vgg (many minutes)"
    if args.e2e_sizes is not None:
        return list(args.e2e_sizes), ""
    if device == "cuda":
        return [256, 512, 1024], ""
    if args.full:
        return [256, 512, 1024], ""
    return [256, 512], "1024 px end to end on the CPU only with --full"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = args.sizes or ([64, 128] if args.quick else [256, 512, 1024])
    e2e_steps = args.steps if args.steps is not None else (5 if args.quick else None)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    devices = [torch.device(name) for name in args.devices]
    largest = max([*sizes, *(args.e2e_sizes or []), 1024])
    content, style, image_source = load_inputs(args.images, largest)
    # torch.optim imports torch._dynamo on first use (seconds): a once-per-process cost that
    # would land in the first end-to-end entry only. Pay it here and report it.
    started = time.perf_counter()
    importlib.import_module("torch._dynamo")
    dynamo_import_seconds = round(time.perf_counter() - started, 3)

    document: dict = {
        "benchmark": "impasto gatys: time per loss evaluation (step) and end to end",
        "schema_version": SCHEMA_VERSION,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "impasto_version": impasto.__version__,
        "git_commit": git_commit(),
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "machine": machine_info(),
        "settings": {
            "quick": args.quick,
            "devices": args.devices,
            "backbones": args.backbones,
            "step_sizes": sizes,
            "warmup_steps": warmup,
            "timing": "median of the timed steps; variants timed in interleaved rounds; "
            "torch.cuda.synchronize() before and after each timed step on CUDA",
            "e2e_steps_per_scale": e2e_steps or GatysConfig().steps,
            "images": image_source,
            "aspect": "4:3 landscape (size = long side)",
            "one_time_torch_dynamo_import_seconds": dynamo_import_seconds,
        },
        "backbones": {},
        "step": [],
        "end_to_end": [],
        "skipped": [],
        "published_reference": PUBLISHED_REFERENCE,
        "targets": [],
        "interrupted": False,
    }

    def save() -> None:
        if args.out is not None:
            write_atomic(args.out, to_json(document) + "\n")

    terminated = []

    def on_terminate(signum, frame) -> None:
        # `timeout` sends SIGTERM: finish the document (targets, "interrupted") like Ctrl-C does.
        terminated.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_terminate)
    try:
        run(args, document, devices, sizes, warmup, e2e_steps, content, style, save)
        if args.busy:
            document["busy_machine"] = busy_machine(args, content, style)
            save()
    except KeyboardInterrupt:
        document["interrupted"] = True
        note("interrupted: printing what was measured so far")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    document["machine"]["load_average_1min_at_end"] = load_average()
    runs = [*document["end_to_end"], *(e["cuda_graph"] for e in document["end_to_end"]
                                         if "cuda_graph" in e)]  # fmt: skip
    document["targets"] = [
        {k: e[k] for k in ("device", "backbone", "size", "seconds", "speed_options")} | e["target"]
        for e in runs
        if e.get("target")
    ]
    save()
    print(to_json(document))
    if document["interrupted"]:
        return 143 if terminated else 130
    return 0


def busy_machine(args: argparse.Namespace, content: torch.Tensor, style: torch.Tensor) -> dict:
    """gatys_busy.measure_busy on this run's images, saved as files for the command."""
    from impasto.images import save_image

    with tempfile.TemporaryDirectory() as folder:
        content_path, style_path = Path(folder) / "content.png", Path(folder) / "style.png"
        save_image(content, content_path)
        save_image(style, style_path)
        return measure_busy(content_path, style_path, args.busy_size, args.busy_steps,
                            Path(folder), note)  # fmt: skip


def timed_steps_for(args: argparse.Namespace, device: torch.device, size: int) -> int:
    if args.timed_steps is not None:
        return args.timed_steps
    if args.quick:
        return 2
    if device.type == "cuda":
        return 10
    return 3 if size >= 1024 else 5


def run(args, document, devices, sizes, warmup, e2e_steps, content, style, save) -> None:
    """Measure every backbone on every device: per-step sizes first, then end to end."""
    for backbone_name in args.backbones:
        try:
            backbone, weights = build_backbone(backbone_name, args.random_weights)
        except (ImpastoError, ImportError) as error:  # e.g. --no-random-weights, no weights
            document["backbones"][backbone_name] = {"error": error_text(error)}
            note(f"{backbone_name}: skipped: {error}")
            continue
        content_layers, style_layers, deepest = default_layers(backbone)
        document["backbones"][backbone_name] = {
            "weights": weights,
            "content_layers": content_layers,
            "style_layers": style_layers,
            "deepest_layer": deepest,
        }
        note(f"{backbone_name}: weights {weights}; step = forward to {deepest} + backward")
        for device in devices:
            variants = [REFERENCE, *(CUDA_VARIANTS if device.type == "cuda" else CPU_VARIANTS)]
            if device.type == "cpu" and args.variants:
                variants += [v for v in OPTIONAL_CPU_VARIANTS if v.name in args.variants]
            if args.no_compile:
                variants = [v for v in variants if not v.compiled]
            if args.variants:
                variants = [v for v in variants if v is REFERENCE or v.name in args.variants]
            reference_ms: dict[int, float | None] = {}

            def steps_at(
                size: int,
                chosen: list[Variant],
                backbone=backbone,
                device=device,
                reference_ms=reference_ms,
            ) -> None:
                timed = timed_steps_for(args, device, size)
                names = ", ".join(v.name for v in chosen)
                note(
                    f"{backbone.name} on {device.type} at {size} px: {names} "
                    f"({warmup} warm-up + {timed} timed)"
                )
                entry = measure_steps(backbone, device, size, content, style, chosen, warmup, timed)
                for name, info in entry["variants"].items():
                    if "median_ms" in info:
                        ratio = info["ratio_vs_reference"]
                        note(f"  {name}: {info['median_ms']:.1f} ms (x{ratio} vs reference)")
                reference_ms[size] = entry["reference_ms"]
                document["step"].append(entry)
                save()

            for size in sizes:
                if args.quick and size != sizes[0]:  # a smoke test compiles once per backbone
                    steps_at(size, [v for v in variants if not v.compiled])
                else:
                    steps_at(size, variants)

            e2e, why = e2e_sizes_for(args, device.type, backbone_name)
            if why:
                document["skipped"].append(f"{backbone_name} on {device.type}: {why}")
            for size in e2e:
                # The reference estimate needs the reference step time at every scale's size.
                config_scales = scale_sizes(size, GatysConfig().scales)
                for scale in config_scales:
                    if scale not in reference_ms:
                        steps_at(scale, [REFERENCE])
                note(f"{backbone_name} end to end on {device.type} at {size} px ({config_scales})")
                try:
                    entry = measure_end_to_end(
                        backbone,
                        device,
                        size,
                        content,
                        style,
                        e2e_steps,
                        reference_ms,
                        document["machine"],
                    )
                except Exception as error:  # noqa: BLE001 - report and go on
                    entry = {"device": device.type, "backbone": backbone_name, "size": size}
                    entry["error"] = error_text(error)
                    note(f"  FAILED: {entry['error'][:300]}")
                else:
                    note(
                        f"  {entry['seconds']:.1f} s, {entry['evaluations']} evaluations, "
                        f"x{entry['ratio_vs_reference']} vs reference estimate"
                    )
                    if args.old_default:
                        old = measure_end_to_end(unfolded_twin(backbone), device, size, content,
                                                 style, e2e_steps, reference_ms,
                                                 document["machine"], OLD_DEFAULT)  # fmt: skip
                        entry["old_default"] = old
                        entry["ratio_vs_old_default"] = round(old["seconds"] / entry["seconds"], 3)
                        note(f"  old default: {old['seconds']:.1f} s, {old['evaluations']} "
                             f"evaluations: x{entry['ratio_vs_old_default']}")  # fmt: skip
                    if args.cuda_graph and device.type == "cuda":
                        cuda_graph_run(entry, backbone, device, size, content, style, e2e_steps,
                                       reference_ms, document["machine"])  # fmt: skip
                document["end_to_end"].append(entry)
                free_memory(device)
                save()


def cuda_graph_run(entry, backbone, device, size, content, style, steps, reference_ms,
                   machine) -> None:  # fmt: skip
    """The end-to-end run with --cuda-graph beside ``entry`` (a failure is recorded, not
    raised: the default's entry stays)."""
    try:
        graphed = measure_end_to_end(backbone, device, size, content, style, steps, reference_ms,
                                     machine, CUDA_GRAPH)  # fmt: skip
    except Exception as error:  # noqa: BLE001 - report and go on
        entry["cuda_graph"] = {"error": error_text(error)}
        note(f"  --cuda-graph FAILED: {entry['cuda_graph']['error'][:300]}")
        return
    entry["cuda_graph"] = graphed
    entry["ratio_cuda_graph_vs_default"] = round(entry["seconds"] / graphed["seconds"], 3)
    note(f"  --cuda-graph: {graphed['seconds']:.2f} s: x{entry['ratio_cuda_graph_vs_default']} "
         f"{' '.join(graphed['notes'])}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
