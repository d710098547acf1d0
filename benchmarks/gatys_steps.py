"""bench_gatys.py's measurement core: the variants (reference, impasto's CUDA and CPU
settings, compiled) and the per-step timing of each, in interleaved rounds.

A step is one loss evaluation of ``impasto.methods.gatys.Objective``: forward through the
backbone, content + Gram style + TV losses, backward to the image."""

from __future__ import annotations

import contextlib
import copy
import importlib
import os
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from impasto.backbones import Backbone
from impasto.devices import configure_for_speed
from impasto.images import resize_long_side
from impasto.methods.gatys import GatysConfig, Objective

# The sibling modules of benchmarks/, also when this file is loaded by path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_inputs import default_layers  # noqa: E402
from gatys_machine import TORCH_DEFAULT_THREADS, load_average, note  # noqa: E402

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
    Variant(
        "default",
        "impasto's CPU default: fp32, threads from configure_for_speed, "
        "channels_last where the backbone says it is faster (EfficientNet-Lite)",
        True,
    ),
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
    # impasto's CPU default takes channels_last where the backbone says so (as stylize does)
    channels_last = variant.channels_last or (
        variant.name == "default" and device.type == "cpu" and backbone.channels_last_on_cpu
    )
    if channels_last:
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
        channels_last=channels_last,
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
    content_here = resize_long_side(content, size)
    style_here = resize_long_side(style, size)  # style_scale 1.0, as in the default config
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
