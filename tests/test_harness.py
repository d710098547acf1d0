"""benchmarks/harness.py: tiny runs end to end (JSON entries, Markdown table), the methods read
from impasto's method table (every row, a row added later, a row that cannot run here), bad
method names."""

import dataclasses
import json
import sys
import types
from pathlib import Path

import pytest
import torch
from helpers import benchmark_script

from impasto.config import option
from impasto.methods import registry
from impasto.methods.base import Method, Prepared, StyleResult


@pytest.fixture(scope="module")
def harness():
    with benchmark_script("harness") as module:
        yield module


def tiny_argv(tmp_path: Path, *methods: str) -> list[str]:
    """48 px, 2 steps, the tiny backbone for the methods and the metrics, the bundled pair."""
    return [
        *(["--methods", *methods] if methods else []),
        "--sizes", "48", "--devices", "cpu", "--steps", "2",
        "--backbone", "tiny", "--metric-backbone", "tiny", "--pairs", "1",
        "--images", str(tmp_path / "no-such-folder"),  # falls back to the bundled pair
    ]  # fmt: skip


def table_rows(markdown: Path) -> list[list[str]]:
    lines = [line for line in markdown.read_text().splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_one_tiny_run_gives_one_entry_and_one_table_row(harness, tmp_path, capsys, one_thread):
    from harness_report import MARKDOWN_COLUMNS  # the sibling module, on sys.path via harness

    markdown = tmp_path / "results.md"
    out = tmp_path / "results.json"
    argv = [*tiny_argv(tmp_path, "gatys"), "--out", str(out), "--markdown", str(markdown)]
    assert harness.main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == document

    assert document["schema_version"] == 2
    assert document["machine"]["torch"]
    assert "fp32" in document["reference_definition"]
    assert len(document["references"]) == 1
    reference = document["references"][0]
    assert reference["seconds"] > 0
    assert reference["options"]["precision"] == "fp32" and reference["options"]["compile"] is False
    results = document["results"]
    assert [(e["method"], e["size"], e["device"]) for e in results] == [("gatys", 48, "cpu")]
    entry = results[0]
    assert "washington_monument.jpg" in entry["pair"]
    assert "error" not in entry
    assert entry["seconds"] > 0
    assert entry["backbone"] == "tiny"
    assert entry["ran_on"] == "cpu"
    assert entry["options"] == {
        "size": 48, "device": "cpu", "backbone": "tiny", "seed": 0, "precision": "auto",
        "compile": False, "steps": 2,
    }  # fmt: skip
    assert entry["ignored_options"] == []
    expected_ratio = entry["reference_seconds"] / entry["seconds"]
    assert entry["ratio_vs_reference"] == pytest.approx(expected_ratio, rel=0.01)
    assert entry["same_config_as_reference"] is True  # gatys on the CPU is the reference config
    assert set(entry["metrics"]) == {"ssim", "style_ratio", "color_distance"}
    assert all(isinstance(value, float) for value in entry["metrics"].values())
    assert max(entry["output_size"]) == 48
    assert entry["memory"]["peak_mib"] >= 0

    rows = table_rows(markdown)
    assert len(rows) == 3  # header, separator, one data row
    assert rows[0] == list(MARKDOWN_COLUMNS)
    row = rows[2]
    assert row[0] == "gatys" and row[2] == "48" and row[3] == "cpu"
    assert "-" not in (row[4], row[5], row[7], row[8], row[9])


def test_without_methods_every_method_of_the_table_runs(harness, tmp_path, capsys, one_thread):
    markdown = tmp_path / "results.md"
    assert harness.main([*tiny_argv(tmp_path), "--markdown", str(markdown)]) == 0
    document = json.loads(capsys.readouterr().out)
    expected = list(registry.available_methods())
    assert {"gatys", "fast", "color"} <= set(expected)
    assert document["settings"]["methods"] == expected
    results = {entry["method"]: entry for entry in document["results"]}
    assert list(results) == expected
    for method, entry in results.items():
        assert "error" not in entry, (method, entry.get("error"))
        assert max(entry["output_size"]) == 48, method
        assert entry["ratio_vs_reference"] > 0
        assert set(entry["metrics"]) == {"ssim", "style_ratio", "color_distance"}, method
    # The reference stays a plain fp32 Gatys run, whatever the methods are.
    assert document["references"][0]["backbone"] == "tiny"
    assert document["references"][0]["options"]["precision"] == "fp32"

    # fast: its row's compare_options give it the shipped model; no steps, backbone or style.
    fast = results["fast"]
    assert fast["options"]["model"] == registry.load_method("fast").compare_options["model"]
    assert {"steps", "backbone", "seed"} <= set(fast["ignored_options"])
    assert "steps" not in fast["options"] and "backbone" not in fast["options"]
    assert fast["same_config_as_reference"] is False
    assert "takes no style image" in fast["note"]
    # color: no backbone and no device option: runs on the CPU, scored with pixels + tiny.
    color = results["color"]
    assert color["options"] == {"size": 48}
    assert "device" in color["ignored_options"] and color["ran_on"] == "cpu"
    assert color["backbone"] == ""

    rows = table_rows(markdown)
    assert [row[0] for row in rows[2:]] == expected


class _Invert(Prepared):
    method = "invert"

    def __init__(self, config) -> None:
        self.config = config

    def run(self, content, progress=None) -> StyleResult:
        height, width = content.shape[-2:]
        scale = self.config.size / max(height, width)
        size = (round(height * scale), round(width * scale))
        image = torch.nn.functional.interpolate(content, size=size, mode="bilinear")
        return StyleResult(1 - image * self.config.amount, method="invert", device="cpu")


@dataclasses.dataclass
class _InvertConfig:
    size: int = option(64, "long side", min=16)
    amount: float = option(1.0, "how much", min=0.0, max=1.0)


class _InvertMethod(Method):
    name = "invert"
    config_class = _InvertConfig
    compare_options = {"amount": 0.5}

    def prepare(self, config, styles, *, backbone=None, notify=None) -> Prepared:
        return _Invert(config)


def test_a_method_added_to_the_table_is_benchmarked_without_editing_the_harness(
    harness, tmp_path, capsys, monkeypatch, one_thread
):
    module = types.ModuleType("impasto.methods.harness_test_invert")
    module.METHOD = _InvertMethod()
    monkeypatch.setitem(sys.modules, module.__name__, module)
    row = registry.MethodEntry("invert", "harness_test_invert", "inverts", takes_styles=True)
    monkeypatch.setitem(registry.METHODS, "invert", row)

    assert harness.main(tiny_argv(tmp_path, "invert")) == 0
    (entry,) = json.loads(capsys.readouterr().out)["results"]
    assert entry["method"] == "invert" and "error" not in entry
    assert entry["options"] == {"size": 48, "amount": 0.5}  # harness size + compare_options
    assert "device" in entry["ignored_options"] and "steps" in entry["ignored_options"]
    assert max(entry["output_size"]) == 48
    assert "invert" in harness.check_methods(None)


def test_a_method_that_cannot_run_here_is_refused_with_what_it_needs(harness, monkeypatch):
    row = registry.MethodEntry(
        "needy", "needy", "needs a package", takes_styles=True, extra="needy",
        requires=("impasto_no_such_module_for_tests",),
    )  # fmt: skip
    monkeypatch.setitem(registry.METHODS, "needy", row)
    assert "needy" not in harness.check_methods(None)
    with pytest.raises(ValueError, match=r"needy needs .*pip install 'impasto\[needy\]'"):
        harness.check_methods(["gatys", "needy"])


def test_unknown_method_is_refused_naming_the_choices(harness, capsys):
    with pytest.raises(SystemExit) as exit_info:
        harness.main(["--methods", "gatys", "nope"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "unknown method(s) 'nope'" in error
    choices = error.split("choose from:")[1]
    assert all(name in choices for name in registry.METHODS)
    with pytest.raises(ValueError, match="choose from: gatys"):
        harness.check_methods(["nope"])
