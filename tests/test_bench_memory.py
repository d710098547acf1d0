"""benchmarks/bench_memory.py: a tiny run end to end (each command in its own process, tiled
and whole, peak memory read from the kernel)."""

from __future__ import annotations

import json

from helpers import benchmark_script


def test_a_quick_memory_run_measures_every_command_tiled_and_whole(tmp_path, capsys):
    out = tmp_path / "memory.json"
    with benchmark_script("bench_memory") as bench:
        assert bench.main(["--quick", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["settings"]["quick"] and document["machine"]
    runs = document["runs"]
    assert {(run["method"], run["megapixels"]) for run in runs} == {
        ("fast", 0.05), ("adain", 0.05), ("fast", 0.2), ("adain", 0.2)}  # fmt: skip
    for run in runs:
        for mode in ("tiled", "whole"):
            assert run[mode]["exit_code"] == 0, run[mode]
            assert 0.05 < run[mode]["peak_gb"] < 8 and run[mode]["seconds"] > 0
        assert run["memory_ratio"] == round(run["whole"]["peak_gb"] / run["tiled"]["peak_gb"], 2)
    assert "mem x" in capsys.readouterr().out
