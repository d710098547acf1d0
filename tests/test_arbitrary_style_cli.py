"""AdaIN and WCT from the outside: the shipped decoders paint offline, masks keep each style in
its region, `impasto train decoder` and `impasto export` from the command line, and the ONNX
graphs checked in onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import ASSETS, error_line, write_image
from helpers import run_cli as run

import impasto
from impasto.backbones import load_backbone
from impasto.decoders import build_decoders, default_decoder, save_decoders
from impasto.methods.registry import load_method
from impasto.metrics import ssim

METHODS = ("adain", "wct")


def flat_colour(rgb, size=(64, 64)) -> torch.Tensor:
    """A painting-like image of one colour with a little texture."""
    generator = torch.Generator().manual_seed(sum(int(255 * c) for c in rgb))
    base = torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, *size)
    return (base + 0.08 * torch.randn(1, 3, *size, generator=generator)).clamp(0, 1)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    image = impasto.load_image(ASSETS / "washington_monument.jpg").rgb
    return torch.nn.functional.interpolate(image, size=(96, 128), mode="area")


@pytest.mark.parametrize("method", METHODS)
def test_the_shipped_decoder_paints_offline_and_keeps_the_scene(method, photo):
    """The end-to-end check with real weights: the style's statistics move toward the style,
    the scene stays readable."""
    assert default_decoder(method) == f"{method}-efficientnet-lite0"
    painting = impasto.load_image(ASSETS / "vangogh_bedroom_in_arles.jpg").rgb
    result = impasto.stylize(photo, [painting], method=method)
    out = result.image
    scorer = load_backbone("tiny")  # an independent network: the test must not use the encoder
    layers = list(scorer.defaults.style_layers)
    from impasto.losses import gram_matrix

    def grams(image):
        image = torch.nn.functional.interpolate(image, size=(96, 128), mode="area")
        return [gram_matrix(f) for f in scorer(image, layers).values()]

    target = grams(painting)
    before = sum(float((g - t).norm()) for g, t in zip(grams(photo), target, strict=True))
    after = sum(float((g - t).norm()) for g, t in zip(grams(out), target, strict=True))
    assert after < 0.7 * before
    assert float(ssim(out, photo)) > 0.25


@pytest.mark.parametrize("method", METHODS)
def test_masks_give_each_style_its_region_only(method, photo):
    red, blue = flat_colour((0.9, 0.1, 0.1)), flat_colour((0.1, 0.2, 0.9))
    left = torch.zeros(1, 1, 96, 128)
    left[..., :64] = 1
    result = impasto.stylize(photo, [red, blue], method=method, mask=[left, 1 - left])
    out = result.image[0]
    redness = out[0] - out[2]  # red minus blue, per pixel
    assert float(redness[:, :56].mean()) > 0.1  # the red style's half is red
    assert float(redness[:, 72:].mean()) < -0.1  # the blue style's half is blue


@pytest.mark.parametrize("method", METHODS)
def test_alpha_moves_the_colours_from_the_photos_to_the_paintings(method, photo):
    painting = flat_colour((0.9, 0.5, 0.1))

    def distances(alpha: float) -> tuple[float, float]:
        image = impasto.stylize(photo, [painting], method=method, alpha=alpha).image
        colour = image.mean(dim=(2, 3))
        return (float((colour - photo.mean(dim=(2, 3))).norm()),
                float((colour - painting.mean(dim=(2, 3))).norm()))  # fmt: skip

    to_photo_0, to_painting_0 = distances(0.0)
    to_photo_1, to_painting_1 = distances(1.0)
    assert to_photo_0 < to_photo_1 and to_painting_1 < 0.8 * to_painting_0


def test_a_mask_per_style_is_required(photo, tmp_path, capsys):
    content = impasto.save_image(photo, tmp_path / "c.png")
    style = write_image(tmp_path / "s.png", seed=1)
    mask = write_image(tmp_path / "m.png", seed=2)
    code, _, err = run(capsys, "stylize", "--method", "adain", content, style, style,
                       "--mask", mask, "-o", tmp_path / "o.png")  # fmt: skip
    assert code == 2 and "1 mask(s) for 2 style image(s)" in error_line(err)
    assert not (tmp_path / "o.png").exists()


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def folders(tmp_path):
    for index in range(4):
        write_image(tmp_path / "photos" / f"p{index}.png", seed=index, size=(40, 36))
        write_image(tmp_path / "styles" / f"s{index}.png", seed=9 + index, size=(36, 40))
    return tmp_path / "photos", tmp_path / "styles"


def test_train_decoder_from_the_command_line(folders, tmp_path, capsys, one_thread):
    photos, styles = folders
    code, _, err = run(capsys, "train", "decoder", "--method", "adain", "--backbone", "tiny",
                       "--data", photos, "--styles", styles, "--size", "24", "--batch", "2",
                       "--steps", "3", "--width", "16", "-o", tmp_path / "d", "--quiet",
                       "--styles-note", "test styles")  # fmt: skip
    assert code == 0, err
    metadata = json.loads((tmp_path / "d" / "metadata.json").read_text())
    assert metadata["data"]["styles"]["terms"] == "test styles"
    out = tmp_path / "o.png"
    code, _, err = run(capsys, "stylize", "--method", "adain", "--decoder", tmp_path / "d",
                       photos / "p0.png", styles / "s0.png", "-o", out)  # fmt: skip
    assert code == 0, err
    assert impasto.load_image(out).rgb.shape[-2:] == (36, 40)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--method", "adain"], "needs a folder of style images (--styles)"),
        (["--method", "wct", "--backbone", "efficientnet-lite2"], "independent scoring network"),
    ],
)
def test_train_decoder_refusals_are_one_line(flags, message, folders, tmp_path, capsys):
    photos, _ = folders
    code, _, err = run(capsys, "train", "decoder", *flags, "--data", photos, "--size", "24",
                       "--steps", "1", "-o", tmp_path / "d")  # fmt: skip
    assert code == 2 and message in error_line(err)
    assert not (tmp_path / "d" / "config.json").exists()


def test_a_decoder_of_another_method_is_refused(tmp_path, capsys, photo):
    decoders = build_decoders(load_backbone("tiny"), ("relu3_1",), 16)
    save_decoders(tmp_path / "d", "adain", "tiny", decoders, {})
    content = impasto.save_image(photo, tmp_path / "c.png")
    style = write_image(tmp_path / "s.png", seed=1)
    code, _, err = run(capsys, "stylize", "--method", "wct", "--decoder", tmp_path / "d",
                       content, style, "-o", tmp_path / "o.png")  # fmt: skip
    assert code == 2 and "is a 'adain' model, not a 'wct' model" in error_line(err)


@pytest.mark.parametrize("method", METHODS)
def test_onnx_export_matches_impasto_in_onnxruntime(method, tmp_path, capsys):
    import onnxruntime  # in the dev extra: a missing runtime must fail this test, not skip it

    backbone = load_backbone("tiny")
    torch.manual_seed(0)
    decoders = build_decoders(backbone, load_method(method).decoder_layers(backbone), 16)
    folder = save_decoders(tmp_path / "d", method, "tiny", decoders, {})
    code, _, err = run(capsys, "export", folder, "--format", "onnx", "-o", tmp_path / "m.onnx")
    assert code == 0, err
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"),
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    for (height, width), (style_h, style_w) in (((40, 56), (48, 48)), ((64, 36), (30, 52))):
        generator = torch.Generator().manual_seed(height)
        content = torch.rand(1, 3, height, width, generator=generator)
        style = torch.rand(1, 3, style_h, style_w, generator=generator)
        feeds = {"content": content.numpy(), "style": style.numpy(),
                 "alpha": np.array([0.8], dtype=np.float32)}  # fmt: skip
        (got,) = session.run(None, feeds)
        want = impasto.stylize(content, [style], method=method, decoder=str(folder),
                               alpha=0.8, style_size=max(style_h, style_w)).image  # fmt: skip
        assert got.shape == tuple(want.shape)
        # AdaIN: the same arithmetic; WCT: Newton-Schulz roots in float32 in the graph, the
        # float64 eigendecomposition in impasto
        tolerance = 1e-4 if method == "adain" else 2e-2
        assert np.abs(got - want.numpy()).mean() < tolerance / 4
        assert np.abs(got - want.numpy()).max() < tolerance * 5


@pytest.mark.parametrize("method", METHODS)
def test_the_record_names_the_decoder_and_from_makes_the_same_image(method, tmp_path, capsys,
                                                                     photo):  # fmt: skip
    content = impasto.save_image(photo, tmp_path / "c.png")
    style = write_image(tmp_path / "s.png", seed=3, size=(48, 40))
    first, again = tmp_path / "first.png", tmp_path / "again.png"
    code, _, err = run(capsys, "stylize", "--method", method, content, style, "-o", first,
                       "--alpha", "0.7")  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "info", first, "--json")
    record = json.loads(out)
    assert record["settings"]["decoder"] == f"{method}-efficientnet-lite0"
    assert record["model"]["shipped"] and len(record["model"]["sha256"]) == 64
    code, _, err = run(capsys, "stylize", "--from", first, "-o", again)
    assert code == 0, err
    assert again.read_bytes() == first.read_bytes()


def test_a_folder_in_gives_a_folder_out(tmp_path, capsys):
    backbone = load_backbone("tiny")
    decoders = build_decoders(backbone, ("relu3_1",), 16)
    save_decoders(tmp_path / "d", "adain", "tiny", decoders, {})
    for index in range(3):
        write_image(tmp_path / "in" / "sub" / f"p{index}.png", seed=index, size=(40 + index, 32))
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    style = write_image(tmp_path / "s.png", seed=7)
    code, _, err = run(capsys, "stylize", "--method", "adain", "--decoder", tmp_path / "d",
                       tmp_path / "in", style, "-o", tmp_path / "out")  # fmt: skip
    assert code == 0, err
    written = sorted(p.relative_to(tmp_path / "out").as_posix()
                     for p in (tmp_path / "out").rglob("*.png"))  # fmt: skip
    assert written == ["sub/p0.png", "sub/p1.png", "sub/p2.png"]
    assert impasto.load_image(tmp_path / "out" / "sub" / "p1.png").rgb.shape[-1] == 41
    assert "broken.png" in err
