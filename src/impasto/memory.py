"""How much memory a run may take: ``--max-memory`` read ("8GB", "512MB", "1.5G"), and what the
device has free now, its default. Shared by the methods that size their work to memory (tiled
inference, impasto.tiling; the exact smoothing's check, impasto.smoothing).
"""

from __future__ import annotations

import re

import torch

from .errors import InputError

UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "M": 2**20, "MB": 2**20, "G": 2**30, "GB": 2**30,
         "T": 2**40, "TB": 2**40}  # fmt: skip
MEMORY_FORMAT = "a size such as 4GB, 512MB or 1.5G"
MIN_MEMORY = 64 * 2**20  # less than this cannot hold a network and one small tile


def parse_memory(text: str | int | float) -> int:
    """``text`` ("8GB", "512 MB", "1.5g", or a number of bytes) -> bytes, at least 64 MB.
    Binary units: 1 GB = 2**30 bytes. InputError naming the accepted forms otherwise."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
        unit = match.group(2).upper() if match else None
        if match is None or unit not in UNITS:
            raise InputError(f"--max-memory {text!r}: expected {MEMORY_FORMAT}")
        value = float(match.group(1)) * UNITS[unit]
    if not value >= MIN_MEMORY:
        raise InputError(f"--max-memory {text!r} is under the least a run needs (64MB)")
    return int(value)


def free_memory_bytes(device: torch.device | str = "cpu") -> int | None:
    """The memory ``device`` has free now: a GPU's free memory (CUDA), the machine's available
    memory elsewhere (Linux: MemAvailable; Apple's GPUs share it), or None where unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def memory_budget(max_memory: str | int | None, device: torch.device | str = "cpu") -> int | None:
    """The bytes a run may use: ``max_memory`` read by ``parse_memory``, else what ``device`` has
    free now (None where that is unknown: no limit)."""
    if max_memory is not None:
        return parse_memory(max_memory)
    return free_memory_bytes(device)


def format_bytes(count: float) -> str:
    """1536 * 2**20 -> '1.5 GB'; for messages."""
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"
