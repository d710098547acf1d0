"""--auto and `impasto tune` (impasto.tune): a ladder of settings tried at 256 px, each scored
by style and structure on EfficientNet-Lite1, the best for the target chosen."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from helpers import error_line, run_cli

import impasto
from impasto import pipeline, tune
from impasto.images import load_image
from impasto.provenance import read_record

ASSETS = Path(impasto.__file__).resolve().parent / "assets"  # the bundled sample pair
PHOTO = ASSETS / "washington_monument.jpg"
PAINTING = ASSETS / "vangogh_bedroom_in_arles.jpg"


@pytest.fixture(scope="module")
def adain_tuning():
    """AdaIN on the bundled pair, three alphas (a shorter ladder: the same code path)."""
    photo, painting = load_image(PHOTO).rgb, load_image(PAINTING).rgb
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(tune.SEARCHES, "adain", ("alpha", (0.2, 0.6, 1.0)))
        config = pipeline.make_config("adain", {}, 1)
        return tune.tune("adain", config, photo, [painting])


def test_more_alpha_moves_the_scores_toward_the_painting(adain_tuning):
    """What the tuner reads must follow the setting: more alpha, more style, less structure."""
    styles = [c.style for c in adain_tuning.candidates]
    structures = [c.structure for c in adain_tuning.candidates]
    assert [c.value for c in adain_tuning.candidates] == [0.2, 0.6, 1.0]
    assert styles == sorted(styles) and styles[0] < styles[-1]
    assert structures == sorted(structures, reverse=True) and structures[0] > structures[-1]
    assert all(0.0 <= c.ssim <= 1.0 and c.style_ratio > 0 for c in adain_tuning.candidates)


def test_the_chosen_setting_has_the_best_balance(adain_tuning):
    def mean(c, style_weight=1.0, structure_weight=1.0):
        return (style_weight * c.style + structure_weight * c.structure) / (
            style_weight + structure_weight)  # fmt: skip

    best = max(adain_tuning.candidates, key=mean)
    assert adain_tuning.chosen == best.value
    assert adain_tuning.config.alpha == best.value
    assert dataclasses.replace(adain_tuning.config, alpha=1.0) == pipeline.make_config(
        "adain", {}, 1)  # nothing else changed  # fmt: skip
    marked = [line for line in adain_tuning.table() if "<- chosen" in line]
    assert len(marked) == 1 and f"{best.value:g}" in marked[0]
    # the targets order the choice: style counted twice never picks less alpha
    stronger = tune.choose(adain_tuning.candidates, "stronger").value
    subtle = tune.choose(adain_tuning.candidates, "subtle").value
    assert subtle <= adain_tuning.chosen <= stronger
    assert tune.choose(adain_tuning.candidates, "stronger") == max(
        adain_tuning.candidates, key=lambda c: mean(c, 2.0, 1.0))  # fmt: skip


def test_gatys_tunes_its_style_weight_in_one_small_scale(monkeypatch):
    """Gatys tries its ladder of style weights at 256 px in one scale (the tiny network)."""
    seen = []
    real_prepare = pipeline.prepare

    def prepare(method, config, styles, **kwargs):
        seen.append((config.size, config.scales, config.style_weight))
        return real_prepare(method, config, styles, **kwargs)

    monkeypatch.setattr(pipeline, "prepare", prepare)
    photo, painting = load_image(PHOTO).rgb, load_image(PAINTING).rgb
    config = pipeline.make_config("gatys", {"backbone": "tiny", "steps": 3, "size": 700}, 1)
    tuning = tune.tune("gatys", config, photo, [painting], target="subtle")
    assert seen == [(256, 1, value) for value in tune.SEARCHES["gatys"][1]]
    assert tuning.chosen in tune.SEARCHES["gatys"][1]
    assert (tuning.config.size, tuning.config.scales) == (700, None)  # the run's own
    assert tuning.plot().shape[:2] == (1, 3)


def test_stylize_auto_prints_the_curve_and_records_the_choice(tmp_path, capsys):
    out = tmp_path / "out.png"
    code, _stdout, err = run_cli(capsys, "stylize", PHOTO, PAINTING, "--method", "adain",
                                 "--size", "128", "--auto", "--target", "subtle", "-o", out,
                                 "--quiet")  # fmt: skip
    assert code == 0, err
    chosen = [line for line in err.splitlines() if line.startswith("--auto chose --alpha ")]
    assert len(chosen) == 1
    value = float(chosen[0].split()[-1])
    assert "<- chosen" in err and "--auto (subtle)" in err
    assert read_record(out)["settings"]["alpha"] == pytest.approx(value)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--method", "fast", "--model", "vangogh-bedroom", "--auto"], "no setting to tune"),
        (["--method", "adain", "--target", "stronger"], "give --auto too"),
    ],
)
def test_auto_mistakes_are_one_line(tmp_path, capsys, arguments, words):
    out = tmp_path / "out.png"
    inputs = [PHOTO] if "fast" in arguments else [PHOTO, PAINTING]
    code, _stdout, err = run_cli(capsys, "stylize", *inputs, "-o", out, *arguments)
    assert code == 2
    assert words in error_line(err)
    assert not out.exists()


def test_tune_command_prints_the_table_and_draws_the_curve(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(tune.SEARCHES, "wct", ("alpha", (0.3, 0.9)))
    plot = tmp_path / "curve.png"
    code, stdout, err = run_cli(capsys, "tune", PHOTO, PAINTING, "--method", "wct", "--plot",
                                plot, "--quiet")  # fmt: skip
    assert code == 0, err
    assert stdout.splitlines()[0].split()[:2] == ["alpha", "SSIM"]
    assert stdout.count("<- chosen") == 1 and "chosen: alpha " in stdout
    picture = load_image(plot).rgb
    assert picture.shape[-2:] == (300, 520)
    assert float(picture.std()) > 0.05  # something drawn on the white


def test_the_python_api_tunes_too(monkeypatch):
    monkeypatch.setitem(tune.SEARCHES, "adain", ("alpha", (0.3, 0.9)))
    result = impasto.stylize(PHOTO, PAINTING, method="adain", size=96, auto="stronger")
    found = result.details["auto"]
    assert found["parameter"] == "alpha" and found["target"] == "stronger"
    assert [point["value"] for point in found["curve"]] == [0.3, 0.9]
    assert result.config.alpha == found["chosen"]
    best = max(found["curve"], key=lambda point: (2 * point["style"] + point["structure"]) / 3)
    assert found["chosen"] == best["value"]


def test_the_clis_copies_of_the_tables_match_the_library():
    """The CLI names the tunable methods and targets without importing torch: same tables."""
    from impasto.cli import tune as tune_command

    assert tune_command.TUNABLE == tuple(tune.SEARCHES)
    assert tune_command.TARGET_CHOICES == tune.TARGET_CHOICES
