"""benchmarks/bench_photo.py and benchmarks/photo_pairs.py: tiny runs end to end (the photo
method timed beside WCT in the same run; the shared photo pairs scored), and the contact sheet
of those photos refused inside the repository (their licence forbids shipping them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import benchmark_script

from impasto.images import load_image

ROOT = Path(__file__).resolve().parents[1]
PHOTOREAL = ROOT.parent / "shared" / "data" / "photoreal"


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("bench_photo") as module:
        yield module


@pytest.fixture(scope="module")
def pairs():
    with benchmark_script("photo_pairs") as module:
        yield module


def test_a_quick_speed_run_times_photo_beside_wct(bench, tmp_path, capsys, one_thread):
    out = tmp_path / "photo-speed.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    assert "photo_fast" in capsys.readouterr().out  # the table
    document = json.loads(out.read_text())
    assert document["benchmark"] == "bench_photo"
    machine = document["machine"]
    assert machine["cpu_model"] is not None and machine["threads"] == 1 and machine["torch"]
    assert set(document["prepare_s"]) == {"photo_fast", "photo_none", "photo_exact", "wct"}
    assert all(seconds > 0 for seconds in document["prepare_s"].values())
    (result,) = document["results"]
    assert result["long_side"] == 64 and result["reference"] == "wct"
    assert result["reference_s"] > 0 and result["megapixels"] > 0
    variants = result["variants"]
    assert set(variants) == {"photo_fast", "photo_none", "photo_exact", "wct"}
    assert variants["wct"]["ratio_vs_reference"] == 1.0
    for entry in variants.values():
        assert entry["median_s"] > 0 and entry["s_per_megapixel"] > 0
        assert entry["ratio_vs_reference"] > 0 and entry["times_reference"] > 0
        assert len(entry["samples_s"]) == 1
    assert "smoothing_s_per_megapixel" in variants["photo_exact"]
    assert "target_s" not in variants["photo_fast"]  # the target is about 512 px


@pytest.mark.skipif(
    not PHOTOREAL.is_dir(),
    reason=f"the 15 research photo pairs are not beside this checkout ({PHOTOREAL}); "
    "they are never shipped (non-commercial licence)",
)
def test_a_quick_quality_run_scores_two_pairs(pairs, tmp_path, capsys, one_thread):
    out, sheet = tmp_path / "photo-pairs.json", tmp_path / "sheet.png"
    code = pairs.main(["--quick", "--masks", "--gatys", "--out", str(out), "--sheet", str(sheet)])
    assert code == 0
    assert "both:" in capsys.readouterr().out
    document = json.loads(out.read_text())
    names = {"photo", "photo_masks", "gatys"}
    assert len(document["pairs"]) == 2 and document["settings"]["pairs"] == [2, 5]
    for pair in document["pairs"]:
        assert pair["content_color_distance"] > 0 and set(pair["results"]) == names
        for scores in pair["results"].values():
            assert -1 <= scores["ssim"] <= 1
            assert scores["color_distance"] >= 0 and scores["color_ratio"] >= 0
            assert scores["meets_both"] == (scores["meets_ssim"] and scores["meets_color"])
            assert scores["seconds"] > 0
    for name in names:
        summary = document["summary"][name]
        assert summary["pairs"] == 2 and summary["failed"] == 0
        assert -1 <= summary["ssim"]["median"] <= 1 and summary["color_ratio"]["mean"] >= 0
        assert summary["meets_both"] <= min(summary["meets_ssim"], summary["meets_color"]) <= 2
    picture = load_image(sheet).rgb
    assert picture.shape[-1] > 5 * 128  # five columns: content, look, three results


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_a_contact_sheet_inside_the_repository_is_refused(
    where, pairs, tmp_path, capsys, monkeypatch
):
    target = ROOT / "benchmarks" / "results" / "photo-pairs-sheet.png"
    if where == "relative":
        monkeypatch.chdir(ROOT / "benchmarks")
        target = Path("results") / "photo-pairs-sheet.png"
    out = tmp_path / "photo-pairs.json"
    assert pairs.main(["--quick", "--sheet", str(target), "--out", str(out)]) == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1
    assert "refusing --sheet" in message and "inside the repository" in message
    assert not target.exists() and not out.exists()  # refused before any work
