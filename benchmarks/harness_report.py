"""harness.py's report: the machine header of its JSON document and its Markdown table."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

METRIC_NAMES = ("ssim", "style_ratio", "color_distance")


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
