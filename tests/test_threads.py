"""impasto.threads: OpenMP's idle threads spin only briefly (GOMP_SPINCOUNT), or sleep at once
(OMP_WAIT_POLICY=PASSIVE) when the machine is already busy, unless the user chose; set when
impasto is imported or the command starts, before torch starts its pool."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from impasto import threads
from impasto.cli import main as cli_main


def test_a_quiet_machine_gets_a_short_spin_and_a_busy_one_passive_waits():
    environ: dict[str, str] = {}
    assert threads.choose_wait_policy(environ, busy=0.1) == "short spin"
    assert environ["GOMP_SPINCOUNT"] == "3000" and "OMP_WAIT_POLICY" not in environ
    assert threads.choose_wait_policy(environ, busy=1.0) == "passive"  # impasto's own: redone
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE" and environ["GOMP_SPINCOUNT"] == "0"
    assert threads.choose_wait_policy(environ, busy=0.0) == "short spin"
    assert "OMP_WAIT_POLICY" not in environ


@pytest.mark.parametrize("choice", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "1000"}])
def test_a_users_choice_stands(choice):
    environ = dict(choice)
    assert threads.choose_wait_policy(environ, busy=1.5) is None
    assert environ == choice


def test_a_users_choice_stands_beside_what_impasto_set_before():
    environ: dict[str, str] = {}
    threads.choose_wait_policy(environ)  # e.g. a parent impasto process
    environ["OMP_WAIT_POLICY"] = "ACTIVE"  # then the user, for a child
    before = dict(environ)
    assert threads.choose_wait_policy(environ, busy=1.5) is None
    assert environ == before


def test_a_working_command_waits_passively_when_another_process_holds_a_core(monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.0)
    environ: dict[str, str] = {}
    assert cli_main.choose_threads(["stylize", "a.png", "b.png"], environ, False) == "passive"
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE"
    quiet: dict[str, str] = {}
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.1)
    assert cli_main.choose_threads(["stylize", "a.png", "b.png"], quiet, False) == "short spin"
    assert cli_main.choose_threads(["stylize", "a.png"], {}, torch_loaded=True) is None
    assert cli_main.choose_threads(["download", "vgg19"], {}, False) is None  # no sampling


def test_cores_used_is_the_share_of_time_not_idle_times_the_cores():
    assert threads.cores_used((1000, 800), (1200, 900), 2) == pytest.approx(1.0)
    assert threads.cores_used((1000, 800), (1200, 1000), 2) == pytest.approx(0.0)
    assert threads.cores_used((1000, 800), (1000, 800), 2) is None


def test_busy_cores_reads_the_kernels_counters(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    assert threads.busy_cores(0.0, str(stat)) is None  # no time passed: nothing to say
    assert threads.busy_cores(0.0, str(tmp_path / "missing")) is None
    if os.path.exists("/proc/stat"):
        busy = threads.busy_cores(0.05)
        assert busy is not None and 0 <= busy <= (os.cpu_count() or 1) + 0.01


def test_importing_impasto_sets_it_before_torch_is_imported():
    environ = {k: v for k, v in os.environ.items()
               if k not in (*threads.USER_SETTINGS, threads.MARK)}  # fmt: skip
    code = ("import sys, os, impasto; "
            "print(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)")  # fmt: skip
    output = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                            text=True, check=True).stdout.split()  # fmt: skip
    assert output == ["3000", "False"]
    code = "import torch, os, impasto; print(os.environ.get('GOMP_SPINCOUNT'))"
    output = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                            text=True, check=True).stdout.split()  # fmt: skip
    assert output == ["None"]  # torch first: too late, so nothing is set
