"""AdaIN and WCT: their transforms (known values, property tests), masks, the decoder network
and its folders, decoder training through the training core (bit-for-bit resume), and ONNX
export checked against onnxruntime."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import write_image

import impasto
from impasto import training
from impasto.backbones import load_backbone
from impasto.decoder_training import DecoderTrainConfig, check_backbone, train_decoder
from impasto.decoders import build_decoders, load_decoders, save_decoders
from impasto.errors import Cancelled, InputError
from impasto.methods.adain import adain
from impasto.methods.wct import newton_schulz_roots
from impasto.nn.decoder import Decoder, DecoderConfig
from impasto.photos import PhotoSet
from impasto.regions import region_weights, weighted_mean_covariance, weighted_mean_std
from impasto.whitening import colour_transform, style_statistics, symmetric_power

# --------------------------------------------------------------------------- the transforms


def correlated_features(channels: int, positions: int, seed: int, scale: float = 1.0):
    """(1, C, H, W) features with a random covariance (eigenvalues from 0.25 to 4: far from
    singular, so the ridge changes nothing measurable) and non-zero means."""
    generator = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator,
                                              dtype=torch.float64))  # fmt: skip
    spread = torch.linspace(0.5, 2.0, channels, dtype=torch.float64)
    mixing = rotation * spread
    noise = torch.randn(channels, positions, generator=generator, dtype=torch.float64)
    mean = torch.randn(channels, 1, generator=generator, dtype=torch.float64) * 3
    flat = scale * (mixing @ noise) + mean
    return flat.reshape(1, channels, positions // 20, 20).float()


def test_adain_gives_each_channel_the_styles_mean_and_deviation():
    content = correlated_features(6, 400, seed=1)
    style_mean = torch.tensor([0.5, -1.0, 2.0, 0.0, 3.0, 1.5]).view(1, 6, 1, 1)
    style_std = torch.tensor([1.0, 0.1, 2.0, 0.5, 3.0, 0.01]).view(1, 6, 1, 1)
    out = adain(content, style_mean, style_std)
    std, mean = torch.std_mean(out, dim=(2, 3), keepdim=True, correction=0)
    assert torch.allclose(mean, style_mean, atol=1e-4)
    assert torch.allclose(std, style_std, rtol=1e-3, atol=1e-4)


def test_adain_in_a_region_takes_the_contents_statistics_there_only():
    content = correlated_features(4, 400, seed=2)
    region = torch.zeros(1, 1, 20, 20)
    region[..., :10] = 1
    content[..., 10:] += 100.0  # the other half is far off: it must not enter the statistics
    mean_s, std_s = torch.ones(1, 4, 1, 1), torch.full((1, 4, 1, 1), 2.0)
    out = adain(content, mean_s, std_s, region)
    inside = out[..., :10]
    std, mean = torch.std_mean(inside, dim=(2, 3), correction=0)
    assert torch.allclose(mean, mean_s.flatten(), atol=1e-3)
    assert torch.allclose(std, std_s.flatten(), rtol=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_after_colouring_the_features_have_the_styles_covariance(seed):
    """The property of WCT: whiten with the content's statistics, colour with the style's."""
    content = correlated_features(16, 2000, seed=seed)
    style = correlated_features(16, 1200, seed=seed + 10, scale=0.3)
    out = colour_transform(content, style_statistics(style))
    mean_out, cov_out = weighted_mean_covariance(out)
    mean_s, cov_s = weighted_mean_covariance(style)
    assert torch.allclose(mean_out, mean_s, atol=1e-3)
    assert (cov_out - cov_s).norm() / cov_s.norm() < 1e-3
    # and it is not the identity: the content's covariance was different
    assert (weighted_mean_covariance(content)[1] - cov_s).norm() / cov_s.norm() > 0.5


def test_colouring_in_a_region_uses_the_contents_statistics_there_only():
    content = correlated_features(8, 800, seed=4)
    region = torch.zeros(1, 1, 40, 20)
    region[..., :20, :] = 1
    content[..., 20:, :] = content[..., 20:, :] * 50 + 7  # outside: other statistics
    style = correlated_features(8, 800, seed=5, scale=0.5)
    out = colour_transform(content, style_statistics(style), region)
    _, cov_in = weighted_mean_covariance(out[..., :20, :])
    _, cov_s = weighted_mean_covariance(style)
    assert (cov_in - cov_s).norm() / cov_s.norm() < 0.05


def test_the_ridge_keeps_a_singular_covariance_finite():
    features = correlated_features(6, 400, seed=6)
    features[:, 3] = 0.0  # a dead channel (ReLU6 layers have them)
    inverse_root = symmetric_power(weighted_mean_covariance(features)[1], -0.5)
    assert torch.isfinite(inverse_root).all()


def test_newton_schulz_roots_match_the_eigendecomposition():
    _, covariance = weighted_mean_covariance(correlated_features(12, 600, seed=7))
    root, inverse_root = newton_schulz_roots(covariance.float())
    exact_root, exact_inverse = symmetric_power(covariance, 0.5), symmetric_power(covariance, -0.5)
    assert (root.double() - exact_root).norm() / exact_root.norm() < 1e-3
    assert (inverse_root.double() - exact_inverse).norm() / exact_inverse.norm() < 1e-3


def test_newton_schulz_survives_an_all_zero_covariance():
    root, inverse_root = newton_schulz_roots(torch.zeros(5, 5))
    assert torch.isfinite(root).all() and torch.isfinite(inverse_root).all()


def test_region_weights_share_overlaps_and_leave_the_rest_to_the_photo():
    masks = torch.zeros(2, 1, 2, 3)
    masks[0, 0, :, 0] = 1  # first column: style 1 only
    masks[0, 0, :, 1] = 1
    masks[1, 0, :, 1] = 1  # second column: both
    masks[1, 0, 0, 2] = 0.5  # third column, top: half style 2, half the photo
    weights, uncovered = region_weights(masks)
    total = weights.sum(dim=0) + uncovered[0]
    assert torch.allclose(total, torch.ones_like(total))
    assert weights[:, 0, 0, 1].tolist() == [0.5, 0.5]
    assert weights[1, 0, 0, 2] == 0.5 and uncovered[0, 0, 0, 2] == 0.5
    assert uncovered[0, 0, 1, 2] == 1


def test_weighted_statistics_with_equal_weights_are_the_plain_ones():
    features = correlated_features(3, 200, seed=8)
    plain = weighted_mean_std(features)
    weighted = weighted_mean_std(features, torch.full((1, 1, 10, 20), 0.3))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(plain, weighted, strict=True))


# --------------------------------------------------------------------------- the decoder


@pytest.mark.parametrize("size", [(16, 16), (16, 24), (40, 32)])
def test_a_decoder_returns_the_encoders_input_size(size):
    backbone = load_backbone("tiny")
    decoders = build_decoders(backbone, ("relu3_1", "relu2_1", "relu1_1"), width=32)
    image = torch.rand(1, 3, *size)
    for layer in decoders.layers:
        features = backbone(image, [layer])[layer]
        assert decoders(layer, features, size).shape == (1, 3, *size)


def test_decoders_spend_the_same_width_on_the_same_scale():
    decoders = build_decoders(load_backbone("tiny"), ("relu3_1", "relu2_1", "relu1_1"), 64)
    assert [(c.layer, c.upsamplings, c.width) for c in decoders.configs] == [
        ("relu3_1", 2, 64), ("relu2_1", 1, 32), ("relu1_1", 0, 16)]  # fmt: skip


def test_the_decoder_has_no_normalisation_layers():
    decoder = Decoder(DecoderConfig("x", 8, 2))
    names = {type(module).__name__ for module in decoder.modules()}
    assert not any("Norm" in name for name in names)


def test_a_decoder_config_that_would_size_a_huge_network_is_refused(tmp_path):
    decoders = build_decoders(load_backbone("tiny"), ("relu3_1",), 16)
    folder = save_decoders(tmp_path / "d", "adain", "tiny", decoders, {})
    config = json.loads((folder / "config.json").read_text())
    config["network"]["decoders"][0]["width"] = 10**6
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="width"):
        load_decoders(folder, "adain")


def test_a_decoder_folder_round_trips_and_knows_its_method(tmp_path):
    decoders = build_decoders(load_backbone("tiny"), ("relu3_1", "relu1_1"), 16)
    folder = save_decoders(tmp_path / "d", "wct", "tiny", decoders, {"note": "x"})
    loaded = load_decoders(folder, "wct")
    assert loaded.backbone == "tiny" and loaded.decoders.layers == ("relu3_1", "relu1_1")
    for key, value in decoders.state_dict().items():
        assert torch.equal(loaded.decoders.state_dict()[key], value)
    with pytest.raises(InputError, match="'wct' model, not a 'adain' model"):
        load_decoders(folder, "adain")


def test_the_scoring_network_is_never_trained_on():
    with pytest.raises(InputError, match="independent scoring network"):
        check_backbone("efficientnet-lite2")
    check_backbone("efficientnet-lite0")


# --------------------------------------------------------------------------- training


@pytest.fixture
def image_sets(tmp_path):
    for index in range(5):
        write_image(tmp_path / "photos" / f"p{index}.png", seed=index, size=(40, 36))
    for index in range(3):
        write_image(tmp_path / "styles" / f"s{index}.png", seed=20 + index, size=(36, 40))
    return PhotoSet.load(tmp_path / "photos", 24), PhotoSet.load(tmp_path / "styles", 24)


def tiny_training(method: str, **changes) -> DecoderTrainConfig:
    values = dict(method=method, backbone="tiny", size=24, batch=2, steps=6, width=16,
                  checkpoint_every=2, preview_every=3, device="cpu",
                  learning_rate=1e-2)  # fmt: skip
    return DecoderTrainConfig(**{**values, **changes})


def weights_of(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize("method", ["adain", "wct", "photo"])
def test_a_cancelled_decoder_run_resumes_to_the_same_weights(method, tmp_path, image_sets,
                                                             one_thread):  # fmt: skip
    photos, styles = image_sets
    train_decoder(photos, tmp_path / "straight", tiny_training(method), styles=styles)
    with pytest.raises(Cancelled):
        train_decoder(photos, tmp_path / "stopped", tiny_training(method), styles=styles,
                      progress=lambda event: event.step != 3)  # fmt: skip
    assert int(training.read_checkpoint(tmp_path / "stopped")["step"]) == 3
    assert not (tmp_path / "stopped" / "config.json").exists()
    result = train_decoder(photos, tmp_path / "stopped", tiny_training(method), styles=styles,
                           resume=True)  # fmt: skip
    assert result.resumed_from == 3 and len(result.history) == 3
    straight, resumed = weights_of(tmp_path / "straight"), weights_of(tmp_path / "stopped")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)


def test_a_trained_decoder_folder_says_what_it_was_trained_on(tmp_path, image_sets, one_thread):
    photos, styles = image_sets
    train_decoder(photos, tmp_path / "d", tiny_training("adain"), styles=styles,
                  data_notes={"photos": "test photos", "styles": "test styles"})  # fmt: skip
    metadata = json.loads((tmp_path / "d" / "metadata.json").read_text())
    assert metadata["method"] == "adain" and metadata["backbone"] == "tiny"
    assert metadata["data"]["photos"]["photos"] == 5 and metadata["data"]["styles"]["photos"] == 3
    assert metadata["data"]["styles"]["terms"] == "test styles"
    assert metadata["layers"] == ["relu3_1"] and metadata["steps_done"] == 6
    previews = sorted(p.name for p in (tmp_path / "d" / "training" / "previews").iterdir())
    assert previews == ["step-0000003.png", "step-0000006.png"]
    result = impasto.stylize(torch.rand(1, 3, 30, 40), [torch.rand(1, 3, 32, 32)],
                             method="adain", decoder=str(tmp_path / "d"))  # fmt: skip
    assert result.image.shape == (1, 3, 30, 40)


def test_adain_training_needs_styles_and_wct_training_does_not(tmp_path, image_sets, one_thread):
    photos, _ = image_sets
    with pytest.raises(InputError, match="--styles"):
        train_decoder(photos, tmp_path / "a", tiny_training("adain"))
    train_decoder(photos, tmp_path / "w", tiny_training("wct", steps=2))
    assert (tmp_path / "w" / "config.json").is_file()


def test_training_lowers_the_reconstruction_loss(tmp_path, image_sets, one_thread):
    """A decoder learns: WCT's reconstruction loss after 40 steps is well below its start."""
    photos, _ = image_sets
    result = train_decoder(photos, tmp_path / "w", tiny_training("wct", steps=40,
                                                                  checkpoint_every=40))  # fmt: skip
    first = sum(step["total"] for step in result.history[:5]) / 5
    last = sum(step["total"] for step in result.history[-5:]) / 5
    assert last < 0.5 * first
