"""Tests for ``impasto.compare`` and ``impasto compare``: settings parsing, runs, sheet, CLI.

Runs use the random ``tiny`` backbone at 40 px with two steps.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.cli import main as cli
from impasto.compare import (
    ComparisonRow,
    compare,
    contact_sheet,
    parse_setting,
    parse_settings,
    write_report,
)
from impasto.errors import InputError
from impasto.images import sheet_size

FAST = {"backbone": "tiny", "size": 40, "steps": 2}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def pics(tmp_path):
    rng = np.random.default_rng(0)
    paths = {}
    for name, (width, height) in {"content": (50, 40), "style": (32, 32)}.items():
        path = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        paths[name] = path
    return paths


def test_parse_setting_types():
    options = parse_setting("style_weight=3e4, preserve_color=luminance,steps=5,scales=none")
    assert options == {
        "style_weight": 30000.0,
        "preserve_color": "luminance",
        "steps": 5,
        "scales": None,
    }
    assert isinstance(options["steps"], int)
    assert parse_setting("compile=yes") == {"compile": True}
    assert parse_settings(["", "tv_weight=0"]) == [
        ("defaults", {}),
        ("tv_weight=0", {"tv_weight": 0.0}),
    ]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("colour=1", "colour"),
        ("steps=many", "many"),
        ("style_weight=nan", "nan"),
        ("steps=0", "steps"),
        ("preserve_color=sepia", "sepia"),
        ("steps", "key=value"),
        ("steps=2,steps=3", "twice"),
    ],
)
def test_parse_setting_refuses(text, named):
    with pytest.raises(InputError, match=named):
        parse_setting(text)


def test_compare_two_settings(pics):
    seen = []
    result = compare(
        pics["content"],
        pics["style"],
        ["style_weight=1e3", "style_weight=1e5,tv_weight=0"],
        FAST,
        progress=lambda index, total, row: seen.append((index, total, row.label)),
        metrics_backbone="tiny",
    )
    labels = ["style_weight=1e3", "style_weight=1e5,tv_weight=0"]
    assert [row.label for row in result.rows] == labels
    assert seen == [(0, 2, labels[0]), (1, 2, labels[1])]
    assert result.rows[1].options == {"style_weight": 1e5, "tv_weight": 0.0}
    for row in result.rows:
        assert tuple(row.image.shape) == (1, 3, 32, 40)
        assert set(row.metrics) == {"ssim", "style_ratio", "color_distance"}
        assert row.seconds >= 0

    sheet = contact_sheet(result.content, result.style, result.rows, cell=48)
    assert sheet.shape[-1:-3:-1] == sheet_size(4, 48)
    assert sheet.shape[-1] >= 4 * 48 and sheet.shape[-2] >= 48


def test_contact_sheet_wraps_and_reports(tmp_path):
    rows = [
        ComparisonRow(
            f"style_weight={i}e4,preserve_color=luminance,tv_weight=0",
            {},
            0.5,
            {"ssim": 0.5, "color_distance": 0.1},
            torch.rand(1, 3, 20, 30),
        )  # fmt: skip
        for i in range(4)
    ]
    sheet = contact_sheet(torch.rand(1, 3, 20, 30), torch.rand(1, 3, 16, 16), rows, cell=32)
    columns, grid_rows = 4, 2  # 6 cells
    assert sheet.shape[-1] > columns * 32 and sheet.shape[-2] > grid_rows * 32
    assert sheet.shape[-1:-3:-1] == sheet_size(6, 32)
    write_report(rows, json_path=tmp_path / "r.json", csv_path=tmp_path / "r.csv")
    entries = json.loads((tmp_path / "r.json").read_text())
    assert len(entries) == 4 and "style_ratio" not in entries[0]["metrics"]
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0].startswith("label,seconds,ssim,style_ratio,color_distance")
    assert len(lines) == 5


def test_cli_compare_writes_sheet_and_json(pics, tmp_path, capsys):
    sheet, report = tmp_path / "sheet.png", tmp_path / "scores.json"
    code = cli.main(
        ["compare", str(pics["content"]), str(pics["style"]),
         "--settings", "style_weight=1e3", "preserve_color=luminance",
         "--grid-out", str(sheet), "--json", str(report),
         "--backbone", "tiny", "--size", "40", "--steps", "2"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    with Image.open(sheet) as image:
        assert image.size == sheet_size(4, 256)
    entries = json.loads(report.read_text())
    assert [entry["label"] for entry in entries] == ["style_weight=1e3", "preserve_color=luminance"]
    assert all({"ssim", "color_distance"} <= set(entry["metrics"]) for entry in entries)
    assert "[1/2] style_weight=1e3" in err and "[2/2] preserve_color=luminance" in err
    assert f"wrote {sheet}" in err


def test_cli_compare_without_settings_runs_every_method_of_the_table(pics, tmp_path, capsys):
    from impasto.methods.registry import METHODS

    sheet, report = tmp_path / "sheet.png", tmp_path / "scores.json"
    code = cli.main(
        ["compare", str(pics["content"]), str(pics["style"]), "--grid-out", str(sheet),
         "--json", str(report), "--backbone", "tiny", "--size", "40", "--steps", "2"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    entries = json.loads(report.read_text())
    methods = [entry["options"].get("method", "gatys") for entry in entries]
    assert methods == list(METHODS)  # one column per row of the table, in its order
    fast = entries[methods.index("fast")]
    assert fast["options"]["model"] == "vangogh-bedroom" and fast["label"].startswith("method=fast")
    assert all(entry["width"] == 40 for entry in entries)  # --size reached every method
    with Image.open(sheet) as image:
        assert image.size == sheet_size(2 + len(METHODS), 256, columns=2 + len(METHODS))


@pytest.mark.parametrize(
    "extra",
    [
        ["--settings", "colour=red"],
        ["--settings", "steps=2", "--backbone", "nope"],
    ],
)
def test_cli_compare_bad_setting(pics, tmp_path, capsys, extra):
    sheet = tmp_path / "sheet.png"
    code = cli.main(
        ["compare", str(pics["content"]), str(pics["style"]), "--grid-out", str(sheet),
         "--backbone", "tiny", "--size", "40", "--steps", "2", *extra]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("impasto: error: ")
    assert not sheet.exists()


def test_cli_compare_refuses_output_over_input(pics, capsys):
    code = cli.main(
        ["compare", str(pics["content"]), str(pics["style"]), "--settings", "steps=2",
         "--grid-out", str(pics["content"]), "--backbone", "tiny"]
    )  # fmt: skip
    assert code == 2
    assert "overwrite an input" in capsys.readouterr().err


# --------------------------------------------------------------------------- methods side by side


def test_parse_a_fast_setting():
    assert parse_setting("method=fast,model=vangogh-bedroom,preserve_color=luminance") == {
        "method": "fast", "model": "vangogh-bedroom", "preserve_color": "luminance"}  # fmt: skip
    with pytest.raises(InputError, match="needs a model"):
        parse_setting("method=fast")
    with pytest.raises(InputError, match="unknown option 'style_weight'"):
        parse_setting("method=fast,model=m,style_weight=3")
    with pytest.raises(InputError, match="unknown method 'wct'"):
        parse_setting("method=wct")
    with pytest.raises(InputError, match="unknown option 'model'"):
        parse_setting("model=m")  # model= belongs to method=fast


def test_a_missing_fast_model_fails_before_any_setting_runs(pics, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a setting ran before every setting was checked")

    monkeypatch.setattr("impasto.pipeline.prepare", forbidden)
    with pytest.raises(InputError, match="model not found: nosuch"):
        compare(pics["content"], pics["style"], ["style_weight=1e3", "method=fast,model=nosuch"])


def test_a_result_made_without_a_backbone_is_scored_too(pics, tmp_path):
    # A method that uses no feature network (or a model without that metadata) reports "".
    from impasto.methods import fast
    from impasto.model_folder import save_model_folder

    config = fast.NetworkConfig(channels=4, residual_blocks=1)
    folder = save_model_folder(tmp_path / "m", "fast", {"channels": 4, "residual_blocks": 1},
                               fast.TransformNet(config).state_dict(), {})  # fmt: skip
    result = compare(pics["content"], pics["style"], [f"method=fast,model={folder}"], FAST)
    (row,) = result.rows
    assert row.backbone == "" and row.metrics_backbone == "efficientnet-lite2"
    assert {"ssim", "style_ratio", "color_distance"} <= set(row.metrics)


def test_compare_gatys_and_a_fast_model_side_by_side(pics, tmp_path):
    from impasto.methods import fast
    from impasto.model_folder import save_model_folder

    torch.manual_seed(0)
    config = fast.NetworkConfig(channels=4, residual_blocks=1)
    folder = save_model_folder(tmp_path / "m", "fast", {"channels": 4, "residual_blocks": 1},
                               fast.TransformNet(config).state_dict(),
                               {"backbone": "efficientnet-lite0"})  # fmt: skip
    result = compare(pics["content"], pics["style"],
                     ["style_weight=1e3", f"method=fast,model={folder}"], FAST,
                     metrics_backbone="tiny")  # fmt: skip
    gatys_row, fast_row = result.rows
    assert gatys_row.backbone == "tiny" and fast_row.backbone == "efficientnet-lite0"
    assert tuple(fast_row.image.shape) == tuple(gatys_row.image.shape) == (1, 3, 32, 40)
    assert set(fast_row.metrics) == {"ssim", "style_ratio", "color_distance"}
    model = fast.load_model(folder)
    expected = fast.stylize(result.content, model, fast.FastConfig(size=40))
    assert torch.allclose(fast_row.image, expected, atol=1e-6)


@pytest.mark.parametrize("failing", ["report", "sheet"])
def test_a_failed_write_leaves_none_of_the_outputs(pics, tmp_path, capsys, monkeypatch, failing):
    from impasto import compare as compare_module
    from impasto import images

    def refuse(*args, **kwargs):
        raise InputError("cannot write: the disk is full")

    if failing == "report":
        monkeypatch.setattr(compare_module, "write_report", refuse)
    else:
        monkeypatch.setattr(images, "save_image", refuse)
    sheet, report = tmp_path / "sheet.png", tmp_path / "scores.json"
    code = cli.main(
        ["compare", str(pics["content"]), str(pics["style"]), "--settings", "style_weight=1e3",
         "--grid-out", str(sheet), "--json", str(report), "--backbone", "tiny", "--size", "40",
         "--steps", "2"]
    )  # fmt: skip
    assert code == 2 and "disk is full" in capsys.readouterr().err
    assert not sheet.exists() and not report.exists()
