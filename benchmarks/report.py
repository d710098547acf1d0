"""Writing benchmark results: strict JSON (NaN/infinity -> null), written atomically so a run
cut short never leaves a half-written file. Shared by the scripts in benchmarks/."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path


def finite(value):
    """The document with every NaN or infinity replaced by None, so the output is valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def to_json(document: dict) -> str:
    return json.dumps(finite(document), indent=2, allow_nan=False)


def write_atomic(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
