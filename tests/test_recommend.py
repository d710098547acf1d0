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
        ("video", ["fast-temporal", "animatediff", "fast", "adain"]),
        ("arbitrary_style", ["adain", "wct"]),
        ("photorealistic", ["photowct", "color"]),
        ("text_prompt", ["sdxl-ip-adapter"]),
        ("brand_consistency", ["style-lora"]),
        ("no_content_leak", ["instantstyle"]),
    ],
)
def test_each_situation_answers_its_row(situation, expected):
    assert ids([situation]) == expected


def test_every_situation_is_tested_above():
    assert set(rec.SITUATIONS) == {
        "quality", "realtime", "video", "arbitrary_style", "photorealistic",
        "text_prompt", "brand_consistency", "no_content_leak",
    }  # fmt: skip


def test_default_is_gatys_then_sdxl_ip_adapter():
    assert ids() == ["gatys", "sdxl-ip-adapter"]
    assert ids([]) == ids(())


def test_several_situations_combine_rows_without_duplicates():
    assert ids(["video", "photorealistic"]) == [
        "fast-temporal", "animatediff", "fast", "adain", "photowct", "color",
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
    assert not fast.available
    assert "pip install 'impasto[video]'" in fast.how_to_get
    assert "impasto_module_that_is_not_installed" in fast.how_to_get
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
        assert method.defaults or method_id in registry.METHODS  # else from the method's config


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


def test_format_marks_available_and_not_installed():
    text = rec.format_recommendations(rec.recommend())
    gatys_block, sdxl_block = text.split("\n\n")
    assert "[gatys] (available)" in gatys_block
    assert "not installed" not in gatys_block
    assert "size=512" in gatys_block
    assert "[sdxl-ip-adapter] (not installed)" in sdxl_block
    assert "to get it: " in sdxl_block
    assert rec.format_recommendations([]) == ""


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


def test_cli_recommend_json_lists_each_flag_s_methods(capsys):
    import json

    from impasto.cli.main import main

    assert main(["recommend", "--text-prompt", "--no-content-leak", "--json"]) == 0
    ids = [entry["method"] for entry in json.loads(capsys.readouterr().out)]
    assert ids == ["sdxl-ip-adapter", "instantstyle"]


def test_cli_recommend_unknown_flag_is_one_line_exit_2(capsys):
    from impasto.cli.main import main

    assert main(["recommend", "--cheap"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("impasto: error:") and "--cheap" in err[0]
