"""Device choice and per-device speed settings shared by every method."""

from __future__ import annotations

import contextlib
import os

import torch

from .errors import InputError

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an unavailable explicit choice raises."""
    if name not in DEVICE_CHOICES:
        raise InputError(f"unknown device '{name}'; choose from: {', '.join(DEVICE_CHOICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise InputError("--device cuda: no CUDA GPU is available (try --device auto or cpu)")
    if name == "mps" and not mps:
        raise InputError("--device mps: Apple MPS is not available (try --device auto or cpu)")
    return torch.device(name)


def configure_for_speed(device: torch.device) -> None:
    """TF32 matmuls/convs on CUDA; on the CPU use every core this process may run on."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    elif device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(max(1, cores or 1))


PRECISION_CHOICES: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
"""Every precision a method may offer; ``auto`` is the method's best choice for the device."""

AUTOCAST_PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
"""The precisions of methods that optimise (Gatys, training): fp32, or bf16 autocast."""


def uses_bf16(device: torch.device, precision: str) -> bool:
    """bf16 autocast for ``precision`` on ``device``: asked for, or ``auto`` on CUDA."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast(device: torch.device, precision: str, cache: bool = True):
    """A context manager: bf16 autocast when ``uses_bf16``, else nothing (float32). ``cache``:
    autocast's cache of cast weights, which must be off inside a CUDA graph capture."""
    if uses_bf16(device, precision):
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()
