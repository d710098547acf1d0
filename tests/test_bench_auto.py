"""benchmarks/auto_pairs.py: --auto against the defaults, one pair, a short ladder."""

from __future__ import annotations

import json

from helpers import benchmark_script

from impasto import tune


def test_a_quick_auto_comparison_scores_both_and_says_which_is_better(tmp_path, monkeypatch):
    monkeypatch.setitem(tune.SEARCHES, "adain", ("alpha", (0.4, 1.0)))
    out, sheet = tmp_path / "auto.json", tmp_path / "sheet.png"
    with benchmark_script("auto_pairs") as bench:
        assert bench.main(["--methods", "adain", "--pairs", "1", "--size", "96", "--json",
                           str(out), "--sheet", str(sheet)]) == 0  # fmt: skip
    document = json.loads(out.read_text())
    assert document["evaluator"] == "efficientnet-lite2"
    assert document["tuning_network"] == "efficientnet-lite1" and document["machine"]
    (row,) = document["rows"]
    assert row["default_value"] == 1.0 and row["auto_value"] in (0.4, 1.0)
    for side in ("default", "auto"):
        scores = row[side]
        assert abs(scores["together"] - (scores["structure"] + scores["style"]) / 2) < 1e-3
    expected = row["auto"]["together"] >= row["default"]["together"]
    assert row["auto_at_least_as_good"] == expected
    assert sheet.stat().st_size > 0
