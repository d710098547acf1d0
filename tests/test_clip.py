"""The CLIP image encoder and the clip_* metrics, on small random encoders (no real weights
offline): architecture arithmetic, strict loading from both file kinds, refusal of untrusted
TorchScript, and the metrics wired through evaluate and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from impasto import clip, metrics
from impasto.cli import main as cli
from impasto.errors import WeightsError
from impasto.weights import sha256_of


def tiny_encoder(seed: int = 0) -> clip.CLIPImageEncoder:
    """Width 64 (one head), 2 layers, 8 px patches on a 4x4 grid (32 px), 16-d output."""
    torch.manual_seed(seed)
    encoder = clip.CLIPImageEncoder(width=64, layers=2, patch=8, grid=4, output_dim=16, heads=1)
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return encoder.eval()


def openai_layout(encoder: clip.CLIPImageEncoder) -> dict[str, torch.Tensor]:
    """The encoder's tensors under OpenAI's keys, plus text-tower keys the loader must drop."""
    state = {f"visual.{key}": value.clone() for key, value in encoder.state_dict().items()}
    state["token_embedding.weight"] = torch.zeros(10, 8)
    state["logit_scale"] = torch.tensor(4.6)
    return state


@pytest.fixture
def images():
    torch.manual_seed(1)
    return torch.rand(1, 3, 40, 56), torch.rand(1, 3, 48, 48)


def test_quick_gelu_values():
    x = torch.tensor([0.0, 1.0, -2.0])
    expected = torch.tensor([0.0, 1 / (1 + math.exp(-1.702)), -2 / (1 + math.exp(2 * 1.702))])
    assert torch.allclose(clip.QuickGELU()(x), expected)


def test_attention_block_matches_the_formula():
    """x + softmax(QK^T / sqrt(d)) V W_o with q, k, v stacked in in_proj (OpenAI's layout)."""
    torch.manual_seed(2)
    block = clip.ResidualAttentionBlock(width=8, heads=1).eval()
    x = torch.randn(1, 5, 8)
    normed = torch.nn.functional.layer_norm(x, (8,), block.ln_1.weight, block.ln_1.bias)
    w, b = block.attn.in_proj_weight, block.attn.in_proj_bias
    q, k, v = (normed @ w[i * 8 : (i + 1) * 8].T + b[i * 8 : (i + 1) * 8] for i in range(3))
    attended = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(8), dim=-1) @ v
    y = x + attended @ block.attn.out_proj.weight.T + block.attn.out_proj.bias
    hidden = torch.nn.functional.layer_norm(y, (8,), block.ln_2.weight, block.ln_2.bias)
    hidden = block.mlp.c_fc(hidden)
    hidden = hidden * torch.sigmoid(1.702 * hidden)
    expected = y + block.mlp.c_proj(hidden)
    with torch.no_grad():
        assert torch.allclose(block(x), expected, atol=1e-5)


def test_preprocess_resizes_the_short_side_and_crops_the_centre():
    encoder = tiny_encoder()
    image = torch.zeros(1, 3, 32, 96)
    image[..., 32:64] = 1.0  # a white middle third, black sides
    prepared = encoder.preprocess(image)
    assert prepared.shape == (1, 3, 32, 32)
    white = (1 - torch.tensor(clip.CLIP_MEAN)) / torch.tensor(clip.CLIP_STD)
    assert torch.allclose(prepared[0, :, 16, 16], white, atol=1e-4)


def test_embeddings_are_unit_vectors_and_any_size_works(images):
    encoder = tiny_encoder()
    with torch.no_grad():
        for image in images:
            embedding = encoder(image)
            assert embedding.shape == (1, 16)
            assert embedding.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_state_dict_in_openai_layout_loads_strictly_and_reproduces_outputs(images):
    encoder = tiny_encoder()
    loaded = clip.CLIPImageEncoder.from_state_dict(openai_layout(encoder))
    assert loaded.resolution == 32
    with torch.no_grad():
        assert torch.equal(loaded(images[0]), encoder(images[0]))


def test_a_missing_or_foreign_key_is_refused():
    state = openai_layout(tiny_encoder())
    del state["visual.ln_post.weight"]
    with pytest.raises(WeightsError, match="missing.*ln_post"):
        clip.CLIPImageEncoder.from_state_dict(state)
    with pytest.raises(WeightsError, match="not a CLIP"):
        clip.CLIPImageEncoder.from_state_dict({"features.0.weight": torch.zeros(3)})


def test_load_clip_from_a_safetensors_file(tmp_path, images):
    encoder = tiny_encoder()
    path = tmp_path / "clip.safetensors"
    save_file(openai_layout(encoder), str(path))
    with torch.no_grad():
        assert torch.equal(clip.load_clip(path)(images[1]), encoder(images[1]))


class Wrapper(torch.nn.Module):
    """Like OpenAI's archive: the image tower under ``visual``, other tensors beside it."""

    def __init__(self, encoder):
        super().__init__()
        self.visual = encoder
        self.logit_scale = torch.nn.Parameter(torch.tensor(4.6))

    def forward(self, prepared):
        return self.visual.conv1(prepared) * self.logit_scale  # the archive keeps every tensor


def torchscript_archive(tmp_path: Path, encoder) -> Path:
    path = tmp_path / "ViT-tiny.pt"
    traced = torch.jit.trace(Wrapper(encoder).half().float(), torch.rand(1, 3, 32, 32))
    torch.jit.save(traced, str(path))
    return path


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_torchscript_archive_loads_only_when_its_sha256_is_trusted(tmp_path, images):
    encoder = tiny_encoder()
    path = torchscript_archive(tmp_path, encoder)
    with pytest.raises(WeightsError, match="TorchScript archive but not OpenAI"):
        clip.load_clip(path)  # the default trusted digest is OpenAI's, not this file's
    loaded = clip.load_clip(path, trusted_sha256=sha256_of(path))
    with torch.no_grad():
        assert torch.allclose(loaded(images[0]), encoder(images[0]), atol=1e-6)


def test_weights_are_found_from_the_environment_or_the_cache(tmp_path, monkeypatch):
    assert clip.clip_weights_path() is None
    monkeypatch.setenv("IMPASTO_CLIP_WEIGHTS", str(tmp_path / "x.safetensors"))
    assert clip.clip_weights_path() == tmp_path / "x.safetensors"
    with pytest.raises(WeightsError, match="x.safetensors': file not found"):
        clip.load_clip()  # named but missing: an error, not "unavailable"


def test_the_download_spec_is_openais_published_file():
    spec = clip.WEIGHTS
    assert spec.name == "clip-vit-b32"
    assert spec.sha256 in spec.url  # OpenAI publishes the digest in the URL
    assert spec.url.endswith("/ViT-B-32.pt") and spec.filename == "ViT-B-32.pt"


def test_evaluate_scores_clip_metrics_with_an_encoder():
    torch.manual_seed(3)
    content, style = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 64, 64)
    encoder = tiny_encoder()
    report = metrics.evaluate(
        content, content, style, metrics=["clip_content", "clip_style"], clip_weights=encoder
    )
    assert report.unavailable == {}
    assert report.metrics["clip_content"] == pytest.approx(1.0, abs=1e-5)
    with torch.no_grad():
        expected = float((encoder(content) * encoder(style)).sum())
    assert report.metrics["clip_style"] == pytest.approx(expected, abs=1e-6)
    assert report.metrics["clip_style"] < 0.999


def test_cli_evaluate_with_clip_weights_file(capsys, tmp_path):
    torch.manual_seed(4)
    paths = {}
    for name, shape in (("content", (36, 48, 3)), ("style", (40, 40, 3))):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray((np.random.rand(*shape) * 255).astype(np.uint8)).save(paths[name])
    weights = tmp_path / "clip.safetensors"
    save_file(openai_layout(tiny_encoder()), str(weights))
    code = cli.main([
        "evaluate", str(paths["content"]), "--content", str(paths["content"]),
        "--style", str(paths["style"]), "--metrics", "clip_content", "clip_style",
        "--clip-weights", str(weights), "--json",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)
    assert report["metrics"]["clip_content"] == pytest.approx(1.0, abs=1e-5)
    assert -1.0 <= report["metrics"]["clip_style"] < 0.999
    assert report["directions"]["clip_style"] == "higher is better"


def test_cli_evaluate_with_a_broken_clip_file_is_one_line(capsys, tmp_path):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(image)
    broken = tmp_path / "clip.pt"
    broken.write_bytes(b"not weights")
    code = cli.main([
        "evaluate", str(image), "--content", str(image), "--style", str(image),
        "--metrics", "clip_style", "--clip-weights", str(broken),
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "clip.pt" in err


def test_cli_download_clip_offline_is_one_line(capsys, monkeypatch, isolated_home):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    code = cli.main(["download", "clip-vit-b32"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "offline" in err.lower()
    assert list(isolated_home.rglob("*")) == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_plain_weight_loading_refuses_torchscript(tmp_path):
    """torch.load(weights_only=True) would pass a TorchScript zip to torch.jit.load."""
    from impasto.weights import load_state_dict

    path = torchscript_archive(tmp_path, tiny_encoder())
    with pytest.raises(WeightsError, match="TorchScript archive"):
        load_state_dict(path)
