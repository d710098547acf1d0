"""benchmarks/harness.py: one tiny run end to end (JSON entries, Markdown table, bad method)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "harness.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("impasto_bench_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_one_tiny_run_gives_one_entry_and_one_table_row(harness, tmp_path, capsys, one_thread):
    markdown = tmp_path / "results.md"
    out = tmp_path / "results.json"
    argv = [
        "--methods", "gatys", "--sizes", "48", "--devices", "cpu", "--steps", "2",
        "--backbone", "tiny", "--metric-backbone", "tiny", "--pairs", "1",
        "--images", str(tmp_path / "no-such-folder"),  # falls back to the bundled pair
        "--out", str(out), "--markdown", str(markdown),
    ]  # fmt: skip
    assert harness.main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == document

    assert document["machine"]["torch"]
    assert "fp32" in document["reference_definition"]
    assert len(document["references"]) == 1
    assert document["references"][0]["seconds"] > 0
    results = document["results"]
    assert [(e["method"], e["size"], e["device"]) for e in results] == [("gatys", 48, "cpu")]
    entry = results[0]
    assert "washington_monument.jpg" in entry["pair"]
    assert "error" not in entry
    assert entry["seconds"] > 0
    assert entry["backbone"] == "tiny"
    expected_ratio = entry["reference_seconds"] / entry["seconds"]
    assert entry["ratio_vs_reference"] == pytest.approx(expected_ratio, rel=0.01)
    assert entry["same_config_as_reference"] is True  # gatys on the CPU is the reference config
    assert set(entry["metrics"]) == {"ssim", "style_ratio", "color_distance"}
    assert all(isinstance(value, float) for value in entry["metrics"].values())
    assert max(entry["output_size"]) == 48
    assert entry["memory"]["peak_mib"] >= 0

    lines = [line for line in markdown.read_text().splitlines() if line.startswith("|")]
    assert len(lines) == 3  # header, separator, one data row
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == list(harness.MARKDOWN_COLUMNS)
    row = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert row[0] == "gatys" and row[2] == "48" and row[3] == "cpu"
    assert "-" not in (row[4], row[5], row[7], row[8], row[9])


def test_unknown_method_is_refused_naming_the_choices(harness, capsys):
    with pytest.raises(SystemExit) as exit_info:
        harness.main(["--methods", "gatys", "nope"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "unknown method(s) 'nope'" in error
    assert "gatys" in error.split("choose from:")[1]
    with pytest.raises(ValueError, match="choose from: gatys"):
        harness.check_methods(["nope"])
