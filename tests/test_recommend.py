"""The method recommender: each row of the decision table, availability, errors, output."""

import json
import subprocess
import sys

import pytest

from impasto import recommend as rec
from impasto.errors import InputError


def ids(situations=()):
    return [r.method for r in rec.recommend(situations)]


# Expected answers written out by hand from the project's seed, not read from the table.
@pytest.mark.parametrize(
    ("situation", "expected"),
    [
        ("quality", ["gatys"]),
        ("realtime", ["fast", "adain"]),
        ("video", ["fast", "adain", "fast-temporal", "animatediff"]),
        ("arbitrary_style", ["adain", "wct"]),
        ("photorealistic", ["photo", "color"]),
        ("text_prompt", ["diffusion"]),
        ("brand_consistency", ["diffusion", "style-lora"]),
        ("no_content_leak", ["diffusion"]),
    ],
)
def test_each_situation_answers_its_row(situation, expected):
    assert ids([situation]) == expected


def test_every_situation_is_tested_above():
    assert set(rec.SITUATIONS) == {
        "quality", "realtime", "video", "arbitrary_style", "photorealistic",
        "text_prompt", "brand_consistency", "no_content_leak",
    }  # fmt: skip


def test_default_is_gatys_then_diffusion():
    assert ids() == ["gatys", "diffusion"]
    assert ids([]) == ids(())


def test_several_situations_combine_rows_without_duplicates():
    assert ids(["video", "photorealistic"]) == [
        "fast", "adain", "fast-temporal", "animatediff", "photo", "color",
    ]  # fmt: skip
    # realtime and arbitrary_style both name AdaIN: listed once, at its first row.
    assert ids(["arbitrary_style", "realtime"]) == ["fast", "adain", "wct"]
    assert ids(["quality", "quality"]) == ["gatys"]


def test_single_string_is_one_situation():
    assert ids("quality") == ["gatys"]


def test_reasons_record_which_rows_chose_a_method():
    (adain,) = [r for r in rec.recommend(["realtime", "arbitrary_style"]) if r.method == "adain"]
    assert len(adain.because) == 2


def test_the_methods_of_the_table_are_the_available_ones():
    from impasto.methods.registry import METHODS

    everything = rec.recommend(rec.SITUATIONS)
    assert {r.method for r in everything} == set(rec.METHODS)
    assert {r.method for r in everything if r.available} == set(METHODS)
    for r in everything:
        assert r.how_to_get


def test_a_row_of_the_table_is_recommended_from_the_row_alone():
    # color is described nowhere in recommend.py: its row's situations and summary suffice,
    # and where to start comes from its config's defaults.
    import dataclasses

    from impasto.methods.registry import METHODS, load_method

    (color,) = [r for r in rec.recommend(["photorealistic"]) if r.method == "color"]
    assert color.available and color.reason == METHODS["color"].summary
    assert color.trade_offs == METHODS["color"].trade_offs
    config = load_method("color").config_class
    assert color.defaults and color.defaults == {
        k: v for k, v in dataclasses.asdict(config()).items() if k in color.defaults
    }


def test_availability_follows_the_method_table_and_its_extras(monkeypatch):
    import dataclasses

    from impasto.methods import registry

    row = dataclasses.replace(registry.METHODS["fast"], extra="video",
                              requires=("impasto_module_that_is_not_installed",))  # fmt: skip
    monkeypatch.setitem(registry.METHODS, "fast", row)
    fast = next(r for r in rec.recommend(["realtime"]) if r.method == "fast")
    assert not fast.available and fast.implemented and fast.status == "not installed"
    assert "pip install 'impasto[video]'" in fast.how_to_get
    assert "impasto_module_that_is_not_installed" in fast.how_to_get
    text = rec.format_recommendations([fast])
    assert "[fast] (not installed)" in text and "to get it: needs impasto_module" in text
    with pytest.raises(InputError, match=r"impasto\[video\]"):
        registry.load_method("fast")


def test_importing_recommend_does_not_import_torch():
    code = (
        "import sys, impasto.recommend as r; r.recommend(['video']); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_situation_raises_and_lists_the_valid_ones():
    with pytest.raises(InputError) as error:
        rec.recommend(["quality", "cheap"])
    message = str(error.value)
    assert "'cheap'" in message
    for situation in rec.SITUATIONS:
        assert situation in message


def test_table_integrity():
    from impasto.methods import registry

    for rule in rec.RULES:
        assert rule.methods, rule
        assert set(rule.methods) <= set(rec.METHODS), rule
        assert set(rule.situations) <= set(rec.SITUATIONS), rule
    covered = {situation for rule in rec.RULES for situation in rule.situations}
    assert covered == set(rec.SITUATIONS)
    assert sum(1 for rule in rec.RULES if not rule.situations) == 1  # exactly one default row
    for method_id, method in rec.METHODS.items():
        assert method.id == method_id
        assert method.name and method.reason and method.trade_offs
        # else where to start comes from the method's config
        assert method.defaults or method.training or method_id in registry.METHODS
        assert method.usage or method_id not in registry.METHODS  # each built-in one says how


def test_gatys_defaults_are_real_config_fields():
    import dataclasses

    from impasto.methods.gatys import GatysConfig

    fields = {f.name for f in dataclasses.fields(GatysConfig)}
    assert set(rec.METHODS["gatys"].defaults) <= fields
    GatysConfig(**rec.METHODS["gatys"].defaults)


@pytest.mark.parametrize(("cached", "backbone"), [(True, "vgg19"), (False, "efficientnet-lite0")])
def test_gatys_says_which_backbone_it_would_use(monkeypatch, cached, backbone):
    from impasto import weights

    monkeypatch.setattr(weights, "cached_path", lambda spec: "/cache/vgg19.pth" if cached else None)
    (gatys,) = rec.recommend(["quality"])
    assert f"backbone now: {backbone}" in gatys.note
    assert ("impasto download vgg19" in gatys.note) is not cached


def test_gatys_backbone_with_an_empty_cache_is_the_offline_one():
    (gatys,) = rec.recommend(["quality"])  # conftest points the cache at an empty folder
    assert "efficientnet-lite0" in gatys.note


def test_format_marks_available_and_not_implemented():
    text = rec.format_recommendations(rec.recommend())
    gatys_block, diffusion_block = text.split("\n\n")
    assert "[gatys] (available)" in gatys_block
    assert "run it: impasto stylize photo.jpg painting.jpg -o out.png" in gatys_block
    assert "start with: size=512" in gatys_block
    assert "not installed" not in gatys_block and "not implemented" not in gatys_block
    assert "[diffusion] (available)" in diffusion_block  # the dev extra installs it
    assert "run it: impasto stylize --method diffusion" in diffusion_block
    assert "start with: ip_scale=0.6" in diffusion_block
    not_yet = rec.format_recommendations(rec.recommend(["brand_consistency"])).split("\n\n")[1]
    assert "[style-lora] (not implemented yet)" in not_yet and "run it" not in not_yet
    assert rec.format_recommendations([]) == ""


def test_what_impasto_does_not_implement_never_reads_as_an_install_away():
    everything = rec.recommend(rec.SITUATIONS)
    missing = [r for r in everything if not r.implemented]
    assert {r.method for r in missing} == set(rec.METHODS) - {
        "gatys",
        "fast",
        "adain",
        "wct",
        "photo",
        "color",
        "diffusion",
    }
    for r in missing:
        assert r.status == "not implemented yet" and not r.available and r.usage == ""
        block = rec.format_recommendations([r])
        assert "not implemented in impasto yet" in block
        assert "pip install" not in block and "not installed" not in block


def test_arbitrary_style_is_available_with_the_command_that_runs_it():
    answers = {r.method: r for r in rec.recommend(["arbitrary_style"])}
    for method in ("adain", "wct"):
        assert answers[method].available and answers[method].implemented
        assert answers[method].usage.startswith(f"impasto stylize --method {method} ")
        assert "impasto train decoder" in rec.format_recommendations([answers[method]])


def test_realtime_says_how_to_run_the_real_time_model():
    from impasto.model_folder import shipped_models

    for situation in ("realtime", "video"):
        (fast,) = [r for r in rec.recommend([situation]) if r.method == "fast"]
        assert fast.usage.startswith("impasto stylize --method fast --model vangogh-bedroom-rt")
        assert "--compile" in fast.usage
        block = rec.format_recommendations([fast])
        assert f"run it: {fast.usage}" in block
    assert {"vangogh-bedroom", "vangogh-bedroom-rt"} <= set(shipped_models("fast"))
    # Without a real-time situation, the full-size model.
    (fast,) = [r for r in rec.recommend(["arbitrary_style", "realtime"]) if r.method == "fast"]
    assert "vangogh-bedroom-rt" in fast.usage  # realtime asked: its command wins
    assert "--model vangogh-bedroom " in rec.METHODS["fast"].usage


def test_every_command_line_parses_with_the_real_parser():
    import shlex

    from impasto.cli.main import build_parser

    commands = {r.usage for s in rec.SITUATIONS for r in rec.recommend([s]) if r.usage}
    for method in rec.METHODS.values():
        commands |= {method.usage, *method.usage_for.values(), method.train_usage} - {""}
    assert len(commands) >= 5  # gatys, fast, fast real-time, training fast, color
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "impasto", command
        args = build_parser(words[1:]).parse_args(words[1:])  # SystemExit on a bad flag
        assert args.command in ("stylize", "train")


def test_training_settings_are_labelled_and_are_the_trainer_s_defaults():
    import dataclasses

    from impasto.methods.fast import FastTrainConfig

    (fast,) = [r for r in rec.recommend(["realtime"]) if r.method == "fast"]
    trainer = {f.name: f.default for f in dataclasses.fields(FastTrainConfig)}
    assert fast.training and fast.training == {k: trainer[k] for k in fast.training}
    assert fast.defaults == {}  # nothing to read as a running setting
    block = rec.format_recommendations([fast])
    assert "training settings (for a new style): size=256, batch=4, steps=4000" in block
    assert "start with" not in block
    assert "a new style: impasto train fast --style" in block


def test_situations_that_pull_against_each_other_are_named_in_one_line():
    (line,) = rec.tensions(["quality", "realtime"])
    assert "quality and realtime" in line and "gatys" in line and "fast" in line
    assert "\n" not in line
    both = rec.tensions(["realtime", "quality", "video"])
    assert both == [rec.TENSIONS[0].text, rec.TENSIONS[1].text]
    assert rec.tensions(["quality"]) == rec.tensions() == []
    assert rec.tensions(["arbitrary_style", "realtime"]) == []  # AdaIN serves both
    with pytest.raises(InputError, match="'cheap'"):
        rec.tensions(["cheap"])
    for tension in rec.TENSIONS:
        assert set(tension.situations) <= set(rec.SITUATIONS)


def test_to_dict_is_json_serialisable():
    for r in rec.recommend(rec.SITUATIONS):
        data = json.loads(json.dumps(r.to_dict()))
        assert data["method"] == r.method
        assert data["available"] is r.available
        assert data["defaults"] == json.loads(json.dumps(dict(r.defaults)))


def test_recommendation_defaults_are_copies():
    (gatys,) = rec.recommend(["quality"])
    gatys.defaults["size"] = 64
    assert rec.METHODS["gatys"].defaults["size"] == 512


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_recommend_quality_names_gatys_as_available(capsys):
    from impasto.cli.main import main

    assert main(["recommend", "--quality"]) == 0
    out = capsys.readouterr().out
    first = out.strip().splitlines()[0]
    assert "[gatys]" in first and "(available)" in first


def test_cli_recommend_flags_a_contradiction_first(capsys):
    from impasto.cli.main import main

    assert main(["recommend", "--quality", "--realtime"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("note: quality and realtime pull against each other")
    assert lines[1] == "" and lines[2].startswith("1. ")
    assert main(["recommend", "--quality", "--realtime", "--json"]) == 0
    captured = capsys.readouterr()
    assert [entry["method"] for entry in json.loads(captured.out)][:2] == ["gatys", "fast"]
    assert captured.err.startswith("note: quality and realtime")


def test_cli_recommend_realtime_prints_the_command_line(capsys):
    from impasto.cli.main import main

    assert main(["recommend", "--realtime"]) == 0
    out = capsys.readouterr().out
    assert "run it: impasto stylize --method fast --model vangogh-bedroom-rt --compile" in out
    assert "note:" not in out


def test_cli_recommend_json_lists_each_flag_s_methods(capsys):
    import json

    from impasto.cli.main import main

    assert main(["recommend", "--text-prompt", "--no-content-leak", "--json"]) == 0
    ids = [entry["method"] for entry in json.loads(capsys.readouterr().out)]
    assert ids == ["diffusion"]


def test_cli_recommend_unknown_flag_is_one_line_exit_2(capsys):
    from impasto.cli.main import main

    assert main(["recommend", "--cheap"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("impasto: error:") and "--cheap" in err[0]


def test_diffusion_is_available_only_with_its_weights(monkeypatch, tmp_path):
    pytest.importorskip("diffusers", reason="the diffusion extra is not installed")
    here = {r.method: r for r in rec.recommend(["text_prompt"])}
    assert here["diffusion"].available  # the test session's cache holds (tiny) weights
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    (gone,) = rec.recommend(["text_prompt"])
    assert not gone.available and gone.implemented
    assert "impasto download sdxl" in gone.note
    assert "impasto download controlnet-canny-sdxl" in gone.note
    assert "impasto download sdxl" in rec.format_recommendations([gone])
