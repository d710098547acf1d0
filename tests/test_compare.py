"""Tests for ``impasto.compare`` and ``impasto compare``: settings parsing, runs, sheet, CLI.

Runs use the random ``tiny`` backbone at 40 px with two steps.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from helpers import error_line, run_cli, write_image
from PIL import Image

from impasto.cli import main as cli
from impasto.compare import (
    PER_RESULT,
    ComparisonResult,
    ComparisonRow,
    compare,
    compare_pairs,
    contact_sheet,
    pair_result_names,
    pairs_sheet,
    parse_setting,
    parse_settings,
    result_names,
    shared_settings,
    write_report,
    write_results,
)
from impasto.errors import InputError
from impasto.images import load_image, sheet_size
from impasto.images.sheet import LABEL_LINES, LINE_HEIGHT, PADDING, draw_rows, grid_columns
from impasto.methods.registry import missing_requirement

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


def compare_cli(pics, sheet, *extra) -> int:
    """``impasto compare`` on the pair, tiny backbone, 40 px, 2 steps: its exit code."""
    return cli.main(["compare", str(pics["content"]), str(pics["style"]), "--grid-out",
                     str(sheet), "--backbone", "tiny", "--size", "40", "--steps", "2",
                     *extra])  # fmt: skip


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
    # Each row remembers its whole config: the setting over the shared options and defaults.
    assert result.rows[1].config["style_weight"] == 1e5 and result.rows[1].config["steps"] == 2
    assert result.rows[0].config["tv_weight"] == 1000.0  # GatysConfig's default
    assert result.settings == {
        "size": 40,
        "steps": 2,
        "seed": 0,
        "backbone": "tiny",
        "metrics_backbone": "tiny",
    }

    sheet = contact_sheet(result.content, result.style, result.rows, cell=48)
    title = ["settings: size 40, steps 2, seed 0, backbone tiny; scored by tiny"]
    assert sheet.shape[-1:-3:-1] == sheet_size(4, 48, columns=2, title=title)  # 2 x 2: no gap
    untitled = contact_sheet(result.content, result.style, result.rows, cell=48, title=[])
    assert untitled.shape[-1:-3:-1] == sheet_size(4, 48, columns=2)
    assert sheet.shape[-2] > untitled.shape[-2]  # the title takes lines of its own
    assert torch.equal(sheet[..., -untitled.shape[-2] + PADDING :, :], untitled[..., PADDING:, :])


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
    columns, grid_rows = 3, 2  # 6 cells: 3 x 2, no empty cell (and no title: no config)
    assert sheet.shape[-1] > columns * 32 and sheet.shape[-2] > grid_rows * 32
    assert sheet.shape[-1:-3:-1] == sheet_size(6, 32, columns=3)
    write_report(rows, json_path=tmp_path / "r.json", csv_path=tmp_path / "r.csv")
    entries = json.loads((tmp_path / "r.json").read_text())
    assert len(entries) == 4 and "style_ratio" not in entries[0]["metrics"]
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == (
        "label,seconds,ssim,style_ratio,color_distance,backbone,metrics_backbone,width,height,"
        "size,steps,seed,file"
    )
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
        assert image.size[0] == sheet_size(4, 256, columns=2)[0]  # 2 x 2, no empty cell
        assert image.size[1] == sheet_size(4, 256, columns=2)[1] + LINE_HEIGHT + PADDING
    entries = json.loads(report.read_text())
    assert [entry["label"] for entry in entries] == ["style_weight=1e3", "preserve_color=luminance"]
    assert all({"ssim", "color_distance"} <= set(entry["metrics"]) for entry in entries)
    for entry in entries:  # the global settings are in every entry's config
        assert {"size": 40, "steps": 2, "seed": 0, "backbone": "tiny"}.items() <= entry[
            "config"
        ].items()
    assert "[1/2] style_weight=1e3" in err and "[2/2] preserve_color=luminance" in err
    assert f"wrote {sheet}" in err
    # The individual results, next to the sheet in a folder named after it.
    folder = tmp_path / "sheet"
    names = ["01-style_weight=1e3.png", "02-preserve_color=luminance.png"]
    assert sorted(p.name for p in folder.iterdir()) == names
    assert [entry["file"] for entry in entries] == [str(folder / name) for name in names]
    assert f"wrote 2 results into {folder}" in err


def test_an_individual_result_is_the_image_stylize_makes(pics, tmp_path, capsys):
    # Independent of compare's own code path: `impasto stylize` with the same settings (the
    # same seed on the CPU) must write the same pixels as compare's result file.
    pair = [str(pics["content"]), str(pics["style"])]
    common = ["--backbone", "tiny", "--size", "40", "--steps", "2"]
    outputs = ["--grid-out", str(tmp_path / "sheet.jpg"), "--out-dir", str(tmp_path / "each")]
    code = cli.main(["compare", *pair, "--settings", "style_weight=1e3", *outputs, *common])
    assert code == 0, capsys.readouterr().err
    alone = ["-o", str(tmp_path / "alone.jpg"), "--style-weight", "1e3"]
    code = cli.main(["stylize", *pair, *alone, *common])
    assert code == 0, capsys.readouterr().err
    (written,) = (tmp_path / "each").iterdir()
    assert written.name == "01-style_weight=1e3.jpg"  # the sheet's format
    assert not (tmp_path / "sheet").exists()  # --out-dir replaces the default folder
    assert torch.equal(load_image(written).rgb, load_image(tmp_path / "alone.jpg").rgb)
    # It says how it was made, as stylize's output does, and the two records agree.
    from impasto.provenance import read_record

    record, alone_record = read_record(written), read_record(tmp_path / "alone.jpg")
    assert record["settings"]["style_weight"] == 1e3
    assert record["settings"] == alone_record["settings"]
    assert record["inputs"] == alone_record["inputs"]


def test_cli_compare_without_settings_runs_every_method_of_the_table(pics, tmp_path, capsys):
    from impasto.methods.registry import METHODS

    sheet, report = tmp_path / "sheet.png", tmp_path / "scores.json"
    code = compare_cli(pics, sheet, "--json", str(report))
    err = capsys.readouterr().err
    assert code == 0, err
    entries = json.loads(report.read_text())
    methods = [entry["options"].get("method", "gatys") for entry in entries]
    assert methods == list(METHODS)  # one column per row of the table, in its order
    fast = entries[methods.index("fast")]
    assert fast["options"]["model"] == "vangogh-bedroom" and fast["label"].startswith("method=fast")
    assert all(entry["width"] == 40 for entry in entries)  # --size reached every method
    cells = 2 + len(METHODS)
    with Image.open(sheet) as image:
        width, height = sheet_size(cells, 256, columns=grid_columns(cells))
        assert image.size[0] == width
        assert (image.size[1] - height - PADDING) % LINE_HEIGHT == 0 and image.size[1] > height
    assert len(list((tmp_path / "sheet").iterdir())) == len(METHODS)


def test_cli_compare_leaves_out_a_method_whose_weights_are_not_here(pics, tmp_path, capsys,
                                                                    monkeypatch):  # fmt: skip
    # a fresh install with the diffusion extra: no model in the Hugging Face cache yet
    if missing_requirement("diffusion"):
        pytest.skip(f"diffusion {missing_requirement('diffusion')}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    from impasto.methods.registry import available_methods

    sheet, report = tmp_path / "sheet.png", tmp_path / "scores.json"
    code = compare_cli(pics, sheet, "--json", str(report))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "left out: method diffusion: the base model" in err
    assert "`impasto download sdxl`" in err
    methods = [entry["options"].get("method", "gatys") for entry in json.loads(report.read_text())]
    assert methods == [name for name in available_methods() if name != "diffusion"]
    assert sheet.exists()


def test_cli_compare_says_a_setting_lacks_its_weights_before_any_work(pics, tmp_path, capsys,
                                                                      monkeypatch):  # fmt: skip
    if missing_requirement("diffusion"):
        pytest.skip(f"diffusion {missing_requirement('diffusion')}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    sheet = tmp_path / "sheet.png"
    code = compare_cli(pics, sheet, "--settings", "method=gatys", "method=diffusion")
    err = capsys.readouterr().err
    assert code == 2
    assert "[1/2]" not in err  # gatys did not run first, only to be thrown away
    assert error_line(err).startswith("impasto: error: setting 'method=diffusion': the base model")
    assert not sheet.exists()


@pytest.mark.parametrize(
    "extra",
    [
        ["--settings", "colour=red"],
        ["--settings", "steps=2", "--backbone", "nope"],
    ],
)
def test_cli_compare_bad_setting(pics, tmp_path, capsys, extra):
    sheet = tmp_path / "sheet.png"
    code = compare_cli(pics, sheet, *extra)
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


@pytest.mark.parametrize(
    ("make", "extra", "words"),
    [
        ("sheet", [], "results folder '{tmp}/sheet': it is a file (choose another with --out-dir)"),
        ("taken", ["--out-dir", "{tmp}/taken"], "--out-dir '{tmp}/taken': it is a file"),
        ("", ["--out-dir", "{tmp}/no/such"], "folder '{tmp}/no' does not exist"),
        ("", ["--out-dir", "{tmp}/sheet.png"], "would overwrite an input or another output"),
    ],
)
def test_cli_compare_checks_the_results_folder_before_the_work(
    pics, tmp_path, capsys, monkeypatch, make, extra, words
):
    def forbidden(*args, **kwargs):
        raise AssertionError("the work started before the results folder was checked")

    monkeypatch.setattr("impasto.compare.compare", forbidden)
    monkeypatch.setattr("impasto.compare.compare_pairs", forbidden)
    if make:
        (tmp_path / make).write_text("a file in the way")
    before = sorted(p.name for p in tmp_path.iterdir())
    extra = [arg.format(tmp=tmp_path) for arg in extra]
    argv = ["compare", str(pics["content"]), str(pics["style"]), "--settings", "steps=2"]
    code = cli.main([*argv, "--grid-out", str(tmp_path / "sheet.png"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert words.format(tmp=tmp_path) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# --------------------------------------------------------------------------- methods side by side


def test_parse_a_fast_setting():
    assert parse_setting("method=fast,model=vangogh-bedroom,preserve_color=luminance") == {
        "method": "fast", "model": "vangogh-bedroom", "preserve_color": "luminance"}  # fmt: skip
    with pytest.raises(InputError, match="needs a model"):
        parse_setting("method=fast")
    with pytest.raises(InputError, match="unknown option 'style_weight'"):
        parse_setting("method=fast,model=m,style_weight=3")
    with pytest.raises(InputError, match="unknown method 'nosuch'"):
        parse_setting("method=nosuch")
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


@pytest.mark.parametrize("failing", ["results", "report", "sheet"])
def test_a_failed_write_leaves_none_of_the_outputs(pics, tmp_path, capsys, monkeypatch, failing):
    from impasto import compare as compare_module
    from impasto import images

    sheet, report = tmp_path / "sheet.png", tmp_path / "scores.json"
    save_image = images.save_image

    def refuse(*args, **kwargs):
        raise InputError("cannot write: the disk is full")

    def refuse_the_sheet(image, path, *args, **kwargs):
        if path == sheet:
            refuse()
        return save_image(image, path, *args, **kwargs)

    if failing == "report":
        monkeypatch.setattr(compare_module, "write_report", refuse)
    else:
        monkeypatch.setattr(
            images, "save_image", refuse if failing == "results" else refuse_the_sheet
        )
    pair = [str(pics["content"]), str(pics["style"])]
    outputs = ["--grid-out", str(sheet), "--json", str(report)]
    common = ["--backbone", "tiny", "--size", "40", "--steps", "2"]
    code = cli.main(
        ["compare", *pair, "--settings", "style_weight=1e3", "steps=3", *outputs, *common]
    )
    assert code == 2 and "disk is full" in capsys.readouterr().err
    assert not sheet.exists() and not report.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "style.png"]


def test_a_failed_write_keeps_what_was_in_the_results_folder(pics, tmp_path, monkeypatch):
    from impasto import images

    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    rows = [
        ComparisonRow(f"style_weight={i}", {}, 0.1, {}, torch.rand(1, 3, 8, 8)) for i in range(3)
    ]
    save_image, calls = images.save_image, []

    def fail_on_the_third(image, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise InputError("cannot write: the disk is full")
        return save_image(image, path, *args, **kwargs)

    monkeypatch.setattr(images, "save_image", fail_on_the_third)
    with pytest.raises(InputError, match="disk is full"):
        write_results(rows, folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]  # this call's files are gone
    assert all(row.file == "" for row in rows)
    with pytest.raises(InputError, match="it is a file"):
        write_results(rows, folder / "notes.txt")
    with pytest.raises(InputError, match="does not exist"):
        write_results(rows, tmp_path / "no" / "results")


def test_result_names_are_numbered_safe_and_in_the_sheet_s_format():
    labels = ["method=fast,model=/tmp/my model", "style_weight=1e3", "", "x" * 100]
    assert result_names(labels, ".jpg") == [
        "01-method=fast,model=_tmp_my_model.jpg",
        "02-style_weight=1e3.jpg",
        "03-result.jpg",
        "04-" + "x" * 60 + ".jpg",
    ]
    assert result_names([f"s={i}" for i in range(120)])[0] == "001-s=0.png"  # sorts in order
    assert len(set(result_names(["a/b", "a:b"]))) == 2  # the number keeps them apart


@pytest.mark.parametrize(
    ("count", "columns"),
    [(1, 1), (2, 2), (3, 3), (4, 2), (5, 5), (6, 3), (7, 4), (8, 4), (9, 3), (10, 5), (12, 4)],
)
def test_grid_columns_leave_as_little_empty_space_as_a_near_square_grid_allows(count, columns):
    # Written out by hand: a single row up to five pictures when it fills, else 3:2-ish grids.
    assert grid_columns(count) == columns


def test_grid_columns_never_leave_an_empty_row_or_an_overly_long_strip():
    for count in range(1, 60):
        columns = grid_columns(count)
        rows = -(-count // columns)
        assert rows <= columns <= 5 * rows
        assert rows * columns - count < columns  # the last row holds at least one picture
        assert rows * columns - count <= -(-count // 4) * 4 - count  # never worse than 4 wide


def test_shared_settings_name_what_every_result_ran_with():
    def row(config, backbone="tiny", scorer="efficientnet-lite2"):
        return ComparisonRow("x", {}, 0.1, {}, torch.rand(1, 3, 8, 8), backbone, scorer, {}, config)

    gatys = {"size": 64, "steps": 2, "seed": 0, "backbone": "auto"}
    fast = {"size": None, "model": "vangogh-bedroom"}
    assert shared_settings([row(gatys), row({**gatys, "steps": 5})]) == {
        "size": 64,
        "steps": PER_RESULT,
        "seed": 0,
        "backbone": "tiny",  # the network that made them, not the config's auto
        "metrics_backbone": "efficientnet-lite2",
    }
    mixed = shared_settings([row(gatys), row(fast, backbone="efficientnet-lite0")])
    assert mixed["size"] == PER_RESULT and mixed["steps"] == 2  # fast has no steps
    assert mixed["backbone"] == PER_RESULT
    assert shared_settings([row(fast, backbone="", scorer="none")]) == {"size": None}


def test_a_notice_is_said_once_per_comparison_not_once_per_setting(pics, monkeypatch):
    from impasto import compare as comparing
    from impasto import pipeline

    said = []
    real_prepare = pipeline.prepare

    def prepare_with_a_notice(method, config, styles, *, progress=None, notify=None):
        notify("Using efficientnet-lite0: VGG-19 weights unavailable")  # as each row would
        return real_prepare(method, config, styles, progress=progress, notify=notify)

    monkeypatch.setattr(pipeline, "prepare", prepare_with_a_notice)
    settings = ["style_weight=1e3", "style_weight=1e4"]
    shared = {"backbone": "tiny", "size": 40, "steps": 2}
    comparing.compare(pics["content"], pics["style"], settings, shared, notify=said.append)
    assert said == ["Using efficientnet-lite0: VGG-19 weights unavailable"]


# --------------------------------------------------------------------------- several pairs


def tinted(path, low, high, size=(50, 40), seed=0):
    """A noisy image at ``path`` whose values all lie in [low, high] (0-255)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(low, high + 1, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def test_compare_pairs_runs_every_setting_on_each_pair_and_counts_over_all(tmp_path, monkeypatch):
    from impasto import pipeline

    first = (write_image(tmp_path / "c1.png", 1, (50, 40)), write_image(tmp_path / "s1.png", 2))
    second = (write_image(tmp_path / "c2.png", 3, (36, 48)), write_image(tmp_path / "s2.png", 4))
    said, seen = [], []
    real_prepare = pipeline.prepare

    def prepare_with_a_notice(method, config, styles, *, progress=None, notify=None):
        notify("Using efficientnet-lite0: VGG-19 weights unavailable")  # as each run would
        return real_prepare(method, config, styles, progress=progress, notify=notify)

    monkeypatch.setattr(pipeline, "prepare", prepare_with_a_notice)
    settings = ["method=color", "style_weight=1e3"]
    results = compare_pairs(
        [first, second],
        settings,
        FAST,
        progress=lambda index, total, row: seen.append((index, total, row.content_name, row.label)),
        metrics_backbone="tiny",
        notify=said.append,
    )
    assert said == ["Using efficientnet-lite0: VGG-19 weights unavailable"]
    c1, c2 = str(first[0]), str(second[0])
    assert seen == [
        (0, 4, c1, "method=color"),
        (1, 4, c1, "style_weight=1e3"),
        (2, 4, c2, "method=color"),
        (3, 4, c2, "style_weight=1e3"),
    ]
    assert [(r.content_name, r.style_name) for r in results] == [
        (c1, str(first[1])),
        (c2, str(second[1])),
    ]
    assert all([row.label for row in result.rows] == settings for result in results)
    assert tuple(results[0].rows[1].image.shape) == (1, 3, 32, 40)  # each pair at its own shape
    assert tuple(results[1].rows[1].image.shape) == (1, 3, 40, 30)
    # Each pair ran with its own style: the same as comparing that pair alone.
    (alone,) = compare(*second, ["method=color"], FAST, metrics_backbone="tiny").rows
    assert torch.equal(results[1].rows[0].image, alone.image)
    assert results[1].rows[0].to_dict()["content"] == c2


def test_compare_pairs_refuses_what_is_not_a_list_of_pairs(pics):
    pair = (pics["content"], pics["style"])
    for bad, words in [([], "no pair"), ([pair, (pics["content"],)], "pair 2"), (pair, "pair 1")]:
        with pytest.raises(InputError, match=words):
            compare_pairs(bad, ["method=color"])


def solid(color, size=8):
    return torch.tensor(color, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, size, size)


def test_pairs_sheet_has_a_row_per_pair_under_a_header_per_column():
    colors = [  # per pair: content, style, two results
        [(1, 0, 0), (0, 0, 1), (0, 1, 0), (1, 1, 0)],
        [(0, 1, 1), (1, 0, 1), (0, 0, 0), (1, 1, 1)],
    ]
    results = []
    for number, pair in enumerate(colors, start=1):
        rows = [
            ComparisonRow(label, {}, 0.1, {"ssim": 0.5}, solid(color))
            for label, color in zip(["s=1", "s=2"], pair[2:], strict=True)
        ]
        results.append(
            ComparisonResult(rows, solid(pair[0]), solid(pair[1]), f"c{number}.png", "s.png")
        )
    cell = 64
    sheet = pairs_sheet(results, cell=cell, title=[])
    # Worked out by hand from the layout: one header line, 4 columns, 2 rows of blocks.
    header = LINE_HEIGHT + PADDING
    block = cell + LABEL_LINES * LINE_HEIGHT + 2 * PADDING
    width = 4 * (cell + PADDING) + PADDING
    assert tuple(sheet.shape) == (1, 3, header + 2 * block + PADDING, width)
    for row, pair in enumerate(colors):
        for column, color in enumerate(pair):
            left = PADDING + column * (cell + PADDING)
            top = header + PADDING + row * block
            centre = sheet[0, :, top + cell // 2, left + cell // 2]
            assert torch.allclose(centre, torch.tensor(color, dtype=torch.float32), atol=2 / 255)
    for column in range(4):  # a header over every column
        left = PADDING + column * (cell + PADDING)
        band = sheet[0, :, PADDING : PADDING + LINE_HEIGHT, left : left + cell]
        assert bool((band < 0.5).all(dim=0).any()), f"no header over column {column}"
    # One pair keeps the one-pair grid; pairs that ran different settings have no common columns.
    alone = pairs_sheet(results[:1], cell=cell)
    assert torch.equal(
        alone, contact_sheet(results[0].content, results[0].style, results[0].rows, cell=cell)
    )
    results[1].rows[1].label = "s=3"
    with pytest.raises(ValueError, match="same settings"):
        pairs_sheet(results, cell=cell)
    with pytest.raises(ValueError, match="as many cells"):
        draw_rows([[(solid((1, 0, 0)), ["a"])], []], cell=cell)


def test_pair_result_names_start_with_each_pair_s_stems_and_never_collide():
    labels = ["method=color", "style_weight=1e3"]
    assert pair_result_names([("a/photo.jpg", "b/ink.png")], labels) == [
        "01-method=color.png",  # one pair: as before
        "02-style_weight=1e3.png",
    ]
    pairs = [("a/photo.jpg", "a/ink.png"), ("b/Photo.jpg", "b/INK.png"), ("", ""), ("x y.png", "z")]
    assert pair_result_names(pairs, labels[:1], ".jpg") == [
        "photo-ink-01-method=color.jpg",
        "Photo-INK-2-01-method=color.jpg",  # the same name but for case: some disks ignore case
        "content-style-01-method=color.jpg",  # images made in memory
        "x_y-z-01-method=color.jpg",
    ]


@pytest.mark.parametrize("count", [1, 3])
def test_cli_compare_refuses_an_odd_number_of_images(tmp_path, capsys, monkeypatch, count):
    def forbidden(*args, **kwargs):
        raise AssertionError("the work started with an image that has no partner")

    monkeypatch.setattr("impasto.compare.compare_pairs", forbidden)
    images = [write_image(tmp_path / f"in{i}.png", i) for i in range(count)]
    code, _, err = run_cli(capsys, "compare", *images, "--grid-out", tmp_path / "sheet.png")
    assert code == 2
    line = error_line(err)
    assert "pairs" in line and "CONTENT STYLE" in line and f"in{count - 1}.png" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"in{i}.png" for i in range(count)]


def test_cli_compare_two_pairs_writes_a_row_per_pair(tmp_path, capsys):
    c1, s1 = tinted(tmp_path / "in" / "c1.png", 0, 60), tinted(tmp_path / "in" / "s1.png", 0, 255)
    c2, s2 = tinted(tmp_path / "in" / "c2.png", 200, 255), tinted(tmp_path / "in" / "s2.png", 0, 99)
    sheet, report, table = tmp_path / "sheet.png", tmp_path / "r.json", tmp_path / "r.csv"
    settings = ["--settings", "method=color", "style_weight=1e3"]
    outputs = ["--grid-out", sheet, "--json", report, "--csv", table]
    common = ["--backbone", "tiny", "--size", "40", "--steps", "2"]
    code, _, err = run_cli(capsys, "compare", c1, s1, c2, s2, *settings, *outputs, *common)
    assert code == 0, err
    for line in [
        "[1/4] c1.png + s1.png, method=color",
        "[2/4] c1.png + s1.png, style_weight=1e3",
        "[3/4] c2.png + s2.png, method=color",
        "[4/4] c2.png + s2.png, style_weight=1e3",
        "wrote 4 results into",
    ]:
        assert line in err
    # The sheet: a title line, a header line, then a row per pair of content, style, 2 results.
    cell, block = 256, 256 + LABEL_LINES * LINE_HEIGHT + 2 * PADDING
    top = 2 * (LINE_HEIGHT + PADDING) + PADDING
    with Image.open(sheet) as image:
        assert image.size == (4 * (cell + PADDING) + PADDING, top + 2 * block)
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    first = pixels[top + cell - 150 : top + cell, PADDING : PADDING + cell]  # dark content
    second = pixels[top + block + cell - 150 : top + block + cell, PADDING : PADDING + cell]
    assert first.mean() < 0.3 and second.mean() > 0.7
    # The results: named after their pair, one record per pair and setting with its files.
    folder = tmp_path / "sheet"
    names = [
        "c1-s1-01-method=color.png",
        "c1-s1-02-style_weight=1e3.png",
        "c2-s2-01-method=color.png",
        "c2-s2-02-style_weight=1e3.png",
    ]
    assert sorted(p.name for p in folder.iterdir()) == names
    entries = json.loads(report.read_text())
    assert [(e["content"], e["style"], e["label"], e["file"]) for e in entries] == [
        (str(content), str(style), label, str(folder / name))
        for (content, style), label, name in zip(
            [(c1, s1), (c1, s1), (c2, s2), (c2, s2)],
            ["method=color", "style_weight=1e3"] * 2,
            names,
            strict=True,
        )
    ]
    header, *lines = csv.reader(table.read_text().splitlines())
    assert header[0] == "label" and header[-2:] == ["content", "style"]
    assert [[line[0], *line[-2:]] for line in lines] == [
        ["method=color", str(c1), str(s1)],
        ["style_weight=1e3", str(c1), str(s1)],
        ["method=color", str(c2), str(s2)],
        ["style_weight=1e3", str(c2), str(s2)],
    ]
    with Image.open(folder / names[2]) as made:  # pair 2's own shape (50 x 40 at 40 px)
        assert made.size == (40, 32)


def test_cli_compare_pairs_with_the_same_file_names_keep_every_result(tmp_path, capsys):
    names = ["a/photo.png", "a/style.png", "b/photo.png", "b/style.png"]
    pairs = [write_image(tmp_path / name, seed) for seed, name in enumerate(names)]
    outputs = ["--grid-out", tmp_path / "sheet.jpg"]
    code, _, err = run_cli(capsys, "compare", *pairs, "--settings", "method=color", *outputs)
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "sheet").iterdir())
    assert written == ["photo-style-01-method=color.jpg", "photo-style-2-01-method=color.jpg"]
