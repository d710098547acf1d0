"""benchmarks/bench_arbitrary.py: a tiny run end to end (the reference and impasto's path timed
in the same run, the same pixels, the targets said)."""

from __future__ import annotations

import json

import pytest
from helpers import benchmark_script

from impasto.backbones import load_backbone
from impasto.decoders import build_decoders, save_decoders


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("bench_arbitrary") as module:
        yield module


@pytest.mark.parametrize("method", ["adain", "wct"])
def test_a_tiny_run_times_both_paths_on_the_same_pixels(method, bench, tmp_path, capsys,
                                                        one_thread):  # fmt: skip
    backbone = load_backbone("tiny")
    decoders = build_decoders(backbone, bench.load_method(method).decoder_layers(backbone), 16)
    folder = save_decoders(tmp_path / "d", method, "tiny", decoders, {})
    out = tmp_path / "bench.json"
    code = bench.main(["--methods", method, "--sizes", "32", "--devices", "cpu", "--rounds", "2",
                       "--decoder", str(folder), "--out", str(out)])  # fmt: skip
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document == json.loads(out.read_text())
    assert document["machine"]["cpu_model"] is not None
    (result,) = document["results"]
    assert result["method"] == method and result["size"] == "32x32"
    variants = result["variants"]
    assert set(variants) == {"reference", "impasto"}
    assert variants["reference"]["ratio_vs_reference"] == 1.0
    assert variants["impasto"]["median_ms"] > 0
    assert variants["impasto"]["max_abs_diff_vs_reference"] < 1e-4  # the same computation
