"""How torch's CPU threads wait for work, chosen before torch starts its OpenMP pool.

torch's CPU build runs its parallel loops on GNU OpenMP, whose idle threads spin (busy-wait)
300,000 times before they sleep. On a quiet machine that saves a wake-up; on a busy one a
spinning thread holds a core another process needs while the thread with the work waits for
it. Measured on the 2-core CPU (Gatys, 512 px, 30 steps a scale; README "A busy machine"):

| wait | quiet | one core taken by another process |
|---|---|---|
| libgomp's default (spin 300,000) | 1.0x | 2.8x the quiet time |
| short spin (GOMP_SPINCOUNT=3000) | 1.03x | 1.8x |
| passive (OMP_WAIT_POLICY=PASSIVE) | 1.15x | 1.2x |

So impasto spins briefly by default (``choose_wait_policy`` at import), and the command line,
which can afford a tenth of a second, first looks at how busy the machine is (``busy_cores``)
and waits passively when another process already holds a core.

Both act only while torch is not imported yet (OpenMP reads its settings when it starts), as
when the ``impasto`` command runs or a program imports impasto first, and never override the
user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT: impasto records what it set in
IMPASTO_WAIT_POLICY, and any other value is the user's. Child processes inherit the settings
(a short spin, or passive waiting). OpenMP runtimes other than GNU's read OMP_WAIT_POLICY
only.
"""

from __future__ import annotations

import os
import time
from collections.abc import MutableMapping

USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
MARK = "IMPASTO_WAIT_POLICY"  # what impasto set ("NAME=VALUE;..."): anything else is the user's
SHORT_SPIN = {"GOMP_SPINCOUNT": "3000"}
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"}
BUSY_CORES = 0.5  # other processes using this much of the cores we may run on: wait passively
SAMPLE_SECONDS = 0.1


def _recorded(settings: dict[str, str]) -> str:
    return ";".join(f"{name}={value}" for name, value in sorted(settings.items()))


def users_choice(environ: MutableMapping[str, str]) -> bool:
    """True when OMP_WAIT_POLICY / GOMP_SPINCOUNT hold anything but what impasto set."""
    current = {name: environ[name] for name in USER_SETTINGS if name in environ}
    return bool(current) and environ.get(MARK) != _recorded(current)


def choose_wait_policy(environ: MutableMapping[str, str] = os.environ,
                       busy: float | None = None) -> str | None:  # fmt: skip
    """Set how idle OpenMP threads wait, in ``environ``: passively when ``busy`` (cores of
    ours that other processes use, ``busy_cores``) is at least BUSY_CORES, else a short spin.
    Returns what was chosen ('passive', 'short spin'), or None when the user's own settings
    stand."""
    if users_choice(environ):
        return None
    chosen, settings = ("passive", PASSIVE) if busy is not None and busy >= BUSY_CORES else (
        "short spin", SHORT_SPIN)  # fmt: skip
    for name in USER_SETTINGS:
        environ.pop(name, None)
    environ.update(settings)
    environ[MARK] = _recorded(settings)
    return chosen


def busy_cores(seconds: float = SAMPLE_SECONDS, stat: str = "/proc/stat") -> float | None:
    """How many of the cores this process may run on other processes kept busy over
    ``seconds`` (this process sleeps meanwhile), from the kernel's counters: the machine's
    busy cores beyond those this process may not use anyway. None where there are no counters
    to read (not Linux)."""

    def sample() -> tuple[int, int]:
        with open(stat) as file:
            fields = [int(value) for value in file.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    try:
        before = sample()
        time.sleep(seconds)
        after = sample()
    except (OSError, ValueError, IndexError):
        return None
    machine = os.cpu_count() or 1
    ours = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else machine
    used = cores_used(before, after, machine)
    return None if used is None else max(0.0, used - (machine - ours))


def cores_used(before: tuple[int, int], after: tuple[int, int], cores: int) -> float | None:
    """Cores' worth of work between two (total, idle) samples of the kernel's counters."""
    elapsed = after[0] - before[0]
    if elapsed <= 0:
        return None
    return cores * (elapsed - (after[1] - before[1])) / elapsed
