"""The diffusion method on tiny components loaded from disk as the real repositories would be
(tests/diffusion_tiny.py): InstantStyle's mask reaches only the intended attention blocks, the
ControlNet sees the photo's edges, a LoRA changes the picture and unfusing restores it, a seed
reproduces it, and missing weights are one line naming the download. No Hub, no GPU: this
proves the wiring, not the pictures a real SDXL makes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusion extra (diffusers) is not installed")
pytest.importorskip("transformers", reason="the diffusion extra (transformers) is not installed")
from diffusion_tiny import record_calls, tiny_repos  # noqa: E402, F401
from helpers import error_line, run_cli  # noqa: E402

import impasto  # noqa: E402
from impasto import diffusion_parts as parts  # noqa: E402
from impasto.errors import InputError, WeightsError  # noqa: E402
from impasto.methods.diffusion import (  # noqa: E402
    FAMILIES,
    DiffusionConfig,
    canny_edges,
    ip_scales,
    output_size,
)
from impasto.methods.registry import load_method  # noqa: E402


def options(repos, family: str = "sdxl", **more) -> dict:
    base = {"sdxl": repos.sdxl_base, "sd15": repos.sd15_base}[family]
    control = {"sdxl": repos.controlnet_sdxl, "sd15": repos.controlnet_sd15}[family]
    return {"base": str(base), "ip_adapter": str(repos.ip_adapter), "controlnet": str(control),
            "size": 64, "steps": 2, "device": "cpu", "seed": 0, **more}  # fmt: skip


def picture(seed: int, height: int = 48, width: int = 64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")


def prepared(repos, family: str = "sdxl", **more):
    method = load_method("diffusion")
    config = DiffusionConfig(**options(repos, family, **more))
    return method.prepare(config, [picture(5)])


@pytest.mark.parametrize(
    ("family", "expected_prefix"),
    # InstantStyle's style blocks: SDXL's up_blocks.0.attentions.1 (the paper, Fig. 4);
    # SD 1.5's up_blocks.1 (the authors' infer_style_sd15.py)
    [("sdxl", "up_blocks.0.attentions.1."), ("sd15", "up_blocks.1.")],
)
def test_instantstyle_reaches_only_the_intended_attention_blocks(tiny_repos, family,  # noqa: F811
                                                                 expected_prefix):  # fmt: skip
    runner = prepared(tiny_repos, family, ip_scale=0.7, ip_blocks="style")
    seen = {}
    for name, processor in runner.pipe.unet.attn_processors.items():
        if "attn2" in name and hasattr(processor, "scale"):
            seen[name] = list(processor.scale)
    assert seen, "the IP-Adapter's attention processors are in place"
    receiving = {name for name, scale in seen.items() if any(s != 0 for s in scale)}
    assert receiving and all(name.startswith(expected_prefix) for name in receiving), receiving
    assert all(s == pytest.approx(0.7) for name in receiving for s in seen[name])


def test_style_and_layout_adds_the_layout_block_and_all_reaches_every_block(tiny_repos):  # noqa: F811
    both = ip_scales(FAMILIES["sdxl"], "style_and_layout", 0.5)
    assert both == {"up": {"block_0": [0.0, 0.5, 0.0]}, "down": {"block_2": [0.0, 0.5]}}
    assert ip_scales(FAMILIES["sdxl"], "all", 0.5) == 0.5
    runner = prepared(tiny_repos, ip_blocks="all", ip_scale=0.4)
    scales = [list(p.scale) for n, p in runner.pipe.unet.attn_processors.items()
              if "attn2" in n and hasattr(p, "scale")]  # fmt: skip
    assert scales and all(s == pytest.approx(0.4) for scale in scales for s in scale)


def test_the_controlnet_sees_the_photos_edges(tiny_repos, monkeypatch):  # noqa: F811
    import cv2

    photo = torch.zeros(1, 3, 64, 64)
    photo[..., 16:48, 16:48] = 1.0  # a white square: edges on its border only
    edges = canny_edges(photo)
    grey = np.zeros((64, 64), np.uint8)
    grey[16:48, 16:48] = 255
    expected = cv2.Canny(grey, 100, 200) > 0
    assert torch.equal(edges[0, 0] > 0.5, torch.from_numpy(expected))
    assert edges[0, 0, 30, 30] == 0 and edges[0, :, 16, 16:48].sum() > 0
    runner = prepared(tiny_repos)
    seen = record_calls(monkeypatch, runner.pipe)
    runner.run(photo)
    assert torch.equal(seen["control_image"], canny_edges(seen["image"]))


def test_a_seed_reproduces_the_picture_and_another_seed_changes_it(tiny_repos):  # noqa: F811
    photo = picture(1)
    first = prepared(tiny_repos).run(photo).image
    again = prepared(tiny_repos).run(photo).image
    other = prepared(tiny_repos, seed=7).run(photo).image
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_a_lora_changes_the_picture_and_unfusing_restores_it(tiny_repos):  # noqa: F811
    photo = picture(2)
    runner = prepared(tiny_repos)
    plain = runner.run(photo).image
    names = parts.apply_loras(runner.pipe, [(tiny_repos.lora_sdxl, 1.0)])
    styled = runner.run(photo).image
    parts.remove_loras(runner.pipe, names)
    restored = runner.run(photo).image
    assert (styled - plain).abs().max() > 1e-3
    assert torch.allclose(restored, plain, atol=1e-5)


def test_the_lora_scale_matters(tiny_repos):  # noqa: F811
    photo = picture(3)
    weak = prepared(tiny_repos, lora=[f"{tiny_repos.lora_sdxl}:0.2"]).run(photo).image
    strong = prepared(tiny_repos, lora=[f"{tiny_repos.lora_sdxl}:1.5"]).run(photo).image
    assert (weak - strong).abs().max() > 1e-3


def test_stylize_end_to_end_through_the_api(tiny_repos):  # noqa: F811
    events = []
    result = impasto.stylize(picture(4, 48, 80), [picture(6), picture(7)], method="diffusion",
                             progress=events.append, style_blend=[2, 1],
                             **options(tiny_repos))  # fmt: skip
    assert result.image.shape == (1, 3, 38, 64)  # made at 64x128, back to the photo's aspect
    assert 0 <= float(result.image.min()) and float(result.image.max()) <= 1
    steps = [e.step for e in events if e.kind == "step"]
    assert steps == sorted(steps) and steps
    assert result.provenance()["method"] == "diffusion"


def test_output_sides_are_multiples_of_64_on_the_photos_aspect():
    assert output_size(480, 640, 1024) == (768, 1024)
    assert output_size(1000, 10, 512) == (512, 64)


def test_missing_weights_are_one_line_naming_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    method = load_method("diffusion")
    config = DiffusionConfig(base="stabilityai/stable-diffusion-xl-base-1.0", device="cpu")
    with pytest.raises(WeightsError, match="impasto download sdxl"):
        method.prepare(config, [picture(1)])
    with pytest.raises(InputError, match="not a folder"):
        method.prepare(DiffusionConfig(base=str(tmp_path / "afile.txt")), [picture(1)])


def test_the_cli_says_what_is_missing_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    photo, painting = tmp_path / "p.png", tmp_path / "s.png"
    impasto.save_image(picture(1), photo)
    impasto.save_image(picture(2), painting)
    code, _out, err = run_cli(capsys, "stylize", photo, painting, "-o", tmp_path / "o.png",
                              "--method", "diffusion")  # fmt: skip
    assert code == 2 and "impasto download sdxl" in error_line(err)
    assert not (tmp_path / "o.png").exists()


def test_download_refuses_offline_in_one_line(capsys, monkeypatch):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    code, _out, err = run_cli(capsys, "download", "sdxl")
    assert code == 2 and "IMPASTO_OFFLINE" in error_line(err)


def test_a_lora_that_is_not_a_file_is_refused_before_loading(tmp_path):
    with pytest.raises(InputError, match="--lora: file not found"):
        load_method("diffusion").check(DiffusionConfig(lora=[str(tmp_path / "x:0.5")]), 1)


def test_backbones_lists_which_diffusion_weights_are_here(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _err = run_cli(capsys, "backbones")
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert code == 0 and " yes " in rows["sdxl"] and " yes " in rows["clip-text"]
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    code, out, _err = run_cli(capsys, "backbones")
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert " no " in rows["sdxl"] and "impasto download NAME" in out


def test_family_sd15_without_a_base_loads_the_sd15_default():
    result = impasto.stylize(picture(8), [picture(9)], method="diffusion", family="sd15",
                             size=64, steps=2, device="cpu")  # fmt: skip
    assert result.details["family"] == "sd15" and result.image.shape[-1] == 64


def test_missing_weights_names_every_model_a_fresh_install_lacks(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    method = load_method("diffusion")
    config = DiffusionConfig(control="depth", prompt="auto")
    missing = method.missing_weights(config)
    for fetch in ("sdxl", "ip-adapter-sdxl", "controlnet-depth-sdxl", "depth-anything",
                  "clip-text"):  # fmt: skip
        assert f"`impasto download {fetch}`" in missing
    assert "\n" not in missing


def test_missing_weights_sees_an_adapter_folder_without_the_familys_file(tiny_repos, tmp_path):  # noqa: F811
    # h94/IP-Adapter holds both families' adapters: the folder alone is not enough
    method = load_method("diffusion")
    assert method.missing_weights(DiffusionConfig(**options(tiny_repos))) is None
    assert method.missing_weights(DiffusionConfig(**options(tiny_repos, "sd15"))) is None
    only_sd15 = tmp_path / "adapter"
    shutil.copytree(tiny_repos.ip_adapter / "models", only_sd15 / "models")
    missing = method.missing_weights(
        DiffusionConfig(**options(tiny_repos, ip_adapter=str(only_sd15)))
    )
    assert missing.startswith("the IP-Adapter's sdxl weights (sdxl_models/")
    assert "`impasto download ip-adapter-sdxl`" in missing
