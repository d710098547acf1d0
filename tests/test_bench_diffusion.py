"""benchmarks/bench_diffusion.py: a tiny CPU run end to end (three variants, the reference
``base`` timed in the same run, ratios from the document's own medians), the real-size SDXL
UNet and ControlNet it would build on a GPU (counted on the meta device: no memory), and the
one-line refusal of the full size on the CPU."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import benchmark_script

pytest.importorskip("diffusers", reason="bench_diffusion builds diffusers models")
pytest.importorskip("transformers", reason="bench_diffusion builds transformers text encoders")

VARIANTS = {"base", "ip_adapter", "ip_adapter_controlnet"}


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("bench_diffusion") as module:
        yield module


def test_a_tiny_cpu_run_times_three_variants_against_base(bench, tmp_path, capsys, one_thread):
    out = tmp_path / "diffusion.json"
    code = bench.main(["--device", "cpu", "--tiny", "--size", "64", "--rounds", "1",
                       "--out", str(out)])  # fmt: skip
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document == json.loads(out.read_text())
    assert document["benchmark"] == "bench_diffusion"
    assert document["machine"]["torch"] == torch.__version__
    assert document["machine"]["diffusers_version"]
    settings = document["settings"]
    assert settings["device"] == "cpu" and settings["dtype"] == "fp32"
    assert settings["size"] == 64 and settings["tiny"] is True and settings["batch"] == 2
    assert settings["latent"] == [2, 4, 8, 8]  # CFG's two halves, 64 / 8
    assert document["reference"] == "base"
    variants = document["variants"]
    assert set(variants) == VARIANTS
    reference = variants["base"]["median_ms"]
    assert document["reference_ms"] == reference > 0
    assert variants["base"]["ratio_vs_reference"] == 1.0
    for name, entry in variants.items():
        assert len(entry["samples_ms"]) == settings["rounds"] * settings["steps"] == 1, name
        assert entry["min_ms"] <= entry["median_ms"]
        expected = reference / entry["median_ms"]  # reference / variant, from this document
        assert entry["ratio_vs_reference"] == pytest.approx(expected, rel=2e-3, abs=2e-3), name
        assert entry["peak_mib"] is None  # memory is measured on CUDA only
    model = document["model"]
    assert model["attention_processors"]["ip_adapter"] == [
        "AttnProcessor2_0",
        "IPAdapterAttnProcessor2_0",
    ]
    assert model["attention_processors"]["base"] == ["AttnProcessor2_0"]
    assert all(count > 0 for count in model["parameters"].values())


def test_the_gpu_run_builds_sdxl_sized_networks(bench):
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        unet = bench.build_unet(tiny=False)
        controlnet = bench.build_controlnet(unet, tiny=False)
    unet_parameters = bench.parameters(unet)
    assert unet_parameters == pytest.approx(2.567e9, rel=2e-3)  # SDXL base's UNet
    assert bench.parameters(controlnet) == pytest.approx(1.251e9, rel=2e-3)
    config = unet.config
    assert list(config.block_out_channels) == [320, 640, 1280]
    assert list(config.transformer_layers_per_block) == [1, 2, 10]
    assert config.cross_attention_dim == 2048 and config.addition_embed_type == "text_time"
    state = bench.ip_adapter_state_dict(unet, bench.SDXL_IMAGE_EMBED_DIM, "meta", torch.float16)
    assert state["image_proj"]["proj.weight"].shape == (4 * 2048, 1280)
    assert len(state["ip_adapter"]) == 2 * 70  # to_k_ip and to_v_ip of SDXL's 70 attn2 layers


def test_the_full_size_on_the_cpu_is_refused_in_one_line(bench, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("nothing may be built")

    monkeypatch.setattr(bench, "build_pipeline", never)
    assert bench.main(["--device", "cpu", "--size", "1024"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "--tiny" in captured.err
