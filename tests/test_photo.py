"""The photorealistic method (methods/photo.py): the detail-keeping decoder and its folder, the
shipped decoder keeping the photo's structure, label masks giving each region only its matching
region's look, and the checks of its options."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import error_line, run_cli

import impasto
from impasto.backbones import load_backbone
from impasto.decoders import build_decoders, load_decoders, save_decoders
from impasto.errors import InputError
from impasto.images import resize_to
from impasto.methods.registry import load_method
from impasto.metrics.pixels import color_distance, ssim
from impasto.model_folder import shipped_models

ASSETS = impasto.__path__[0] + "/assets/"


def photo(height: int = 96, width: int = 72) -> torch.Tensor:
    image = impasto.load_image(ASSETS + "washington_monument.jpg").rgb
    return resize_to(image, height, width)


def two_colour_style(top, bottom, height: int = 64, width: int = 64) -> torch.Tensor:
    """A 'style photo': a textured top half of one colour over a bottom half of another."""
    generator = torch.Generator().manual_seed(3)
    image = torch.empty(1, 3, height, width)
    image[..., : height // 2, :] = torch.tensor(top)[:, None, None]
    image[..., height // 2 :, :] = torch.tensor(bottom)[:, None, None]
    return (image + 0.06 * torch.randn(1, 3, height, width, generator=generator)).clamp(0, 1)


def halves(height: int, width: int, first, second, vertical: bool) -> torch.Tensor:
    """A label image: ``first`` colour on the left (or top) half, ``second`` on the other."""
    labels = torch.empty(1, 3, height, width)
    if vertical:
        labels[..., : width // 2] = torch.tensor(first)[:, None, None]
        labels[..., width // 2 :] = torch.tensor(second)[:, None, None]
    else:
        labels[..., : height // 2, :] = torch.tensor(first)[:, None, None]
        labels[..., height // 2 :, :] = torch.tensor(second)[:, None, None]
    return labels


BLUE_LABEL, GREEN_LABEL = (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)
RED, BLUE = (0.85, 0.15, 0.1), (0.1, 0.2, 0.85)


# --------------------------------------------------------------------------- the decoder


def test_the_skip_decoder_needs_its_skips_and_uses_them():
    backbone = load_backbone("tiny")
    decoders = build_decoders(backbone, ("relu3_1",), 16, skips=("relu2_1", "relu1_1"))
    image = torch.rand(1, 3, 40, 36)
    features = backbone(image, ("relu3_1", "relu2_1", "relu1_1"))
    skips = {name: features[name] for name in ("relu2_1", "relu1_1")}
    with torch.no_grad():
        decoded = decoders("relu3_1", features["relu3_1"], (40, 36), skips)
        changed = decoders("relu3_1", features["relu3_1"], (40, 36),
                           {**skips, "relu1_1": torch.zeros_like(skips["relu1_1"])})  # fmt: skip
    assert decoded.shape == (1, 3, 40, 36)
    assert not torch.allclose(decoded, changed)  # the finest skip reaches the picture
    with pytest.raises(ValueError, match="needs the features of layer relu2_1"):
        decoders("relu3_1", features["relu3_1"], (40, 36))


def test_a_skip_decoder_folder_round_trips_and_a_bad_skip_is_refused(tmp_path):
    backbone = load_backbone("tiny")
    decoders = build_decoders(backbone, ("relu3_1",), 16, skips=("relu1_1",))
    folder = save_decoders(tmp_path / "d", "photo", "tiny", decoders, {})
    loaded = load_decoders(folder, "photo")
    assert [list(skip) for skip in loaded.decoders.configs[0].skips] == [["relu1_1", 8, 0]]
    for name, value in decoders.state_dict().items():
        assert torch.equal(loaded.decoders.state_dict()[name], value)
    config = json.loads((folder / "config.json").read_text())
    config["network"]["decoders"][0]["skips"] = [["relu1_1", 8, 5]]  # coarser than the decoder
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="skips"):
        load_decoders(folder, "photo")


# --------------------------------------------------------------------------- the shipped decoder


def test_a_decoder_is_shipped_and_reconstructs_the_photo():
    assert "photo-efficientnet-lite0" in shipped_models("photo")
    content = photo()
    kept = impasto.stylize(content, [two_colour_style(RED, BLUE)], method="photo", alpha=0.0,
                           smoothing="none", device="cpu")  # fmt: skip
    assert ssim(kept.image, content) > 0.9  # alpha 0: the photo back, detail and all


def test_the_result_takes_the_style_photos_colours_and_keeps_more_structure_than_wct():
    content = photo(192, 256)
    grey = content.flip(-1).mean(dim=1, keepdim=True)
    red_grade = torch.cat([0.3 + 0.7 * grey, 0.35 * grey, 0.25 * grey], dim=1)  # a red look
    result = impasto.stylize(content, [red_grade], method="photo", device="cpu")
    red, green, blue = result.image[0].mean(dim=(1, 2)).tolist()
    assert red > green + 0.2 and red > blue + 0.2
    painted = impasto.stylize(content, [red_grade], method="wct", device="cpu")
    assert ssim(result.image, content) > ssim(painted.image, content) + 0.1


def test_the_grade_brings_the_colours_nearer_the_look_without_losing_the_structure():
    content = photo(192, 256)
    look = two_colour_style((0.85, 0.55, 0.2), (0.3, 0.15, 0.1), 128, 128)  # warm, two tones
    plain = impasto.stylize(content, [look], method="photo", grade=False, device="cpu").image
    graded = impasto.stylize(content, [look], method="photo", device="cpu").image
    assert color_distance(graded, look) < 0.8 * color_distance(plain, look)
    assert ssim(graded, content) > 0.6


def test_a_night_look_is_taken_as_far_as_the_structure_floor_allows():
    day = photo(192, 256)
    night = day.flip(-1) * torch.tensor([0.12, 0.14, 0.3])[:, None, None]  # dark and blue
    guarded = impasto.stylize(day, [night], method="photo", device="cpu")
    whole = impasto.stylize(day, [night], method="photo", structure=0.0, device="cpu")
    assert ssim(whole.image, day) < 0.6  # the whole look loses the photo...
    assert 0 < guarded.details["structure"]["look_taken"] < 1  # ...so only part is taken
    assert ssim(guarded.image, day) == pytest.approx(0.6, abs=0.01)
    assert guarded.details["structure"]["ssim"] == pytest.approx(ssim(guarded.image, day),
                                                                 abs=0.01)  # fmt: skip
    assert whole.details["structure"]["look_taken"] == 1.0
    brightness = guarded.image.mean()
    assert night.mean() < brightness < day.mean()  # on the way to night


def test_each_labelled_region_takes_only_its_matching_regions_look(tmp_path):
    content = photo()
    style = two_colour_style(RED, BLUE)
    # content: left half blue label, right half green; style: red top = green, blue bottom = blue
    content_labels = halves(96, 72, BLUE_LABEL, GREEN_LABEL, vertical=True)
    style_labels = halves(64, 64, GREEN_LABEL, BLUE_LABEL, vertical=False)
    result = impasto.stylize(content, [style], method="photo", device="cpu",
                             content_mask=content_labels, style_mask=style_labels,
                             smoothing="none")  # fmt: skip
    left = result.image[0, :, :, 4:30].mean(dim=(1, 2))
    right = result.image[0, :, :, 42:68].mean(dim=(1, 2))
    assert left[2] > left[0] + 0.2  # the blue-labelled half is blue
    assert right[0] > right[2] + 0.2  # the green-labelled half is red
    plain = impasto.stylize(content, [style], method="photo", device="cpu", smoothing="none")
    both = plain.image[0].mean(dim=(1, 2))
    assert abs(float(both[0] - both[2])) < abs(float(left[2] - left[0]))  # without: a mix


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "styles", "message"),
    [
        ({"content_mask": "a.png"}, 1, "go together"),
        (
            {"content_mask": "a.png", "style_mask": "b.png", "mask": ["m.png"]},
            1,
            "one or the other",
        ),
        ({"content_mask": "a.png", "style_mask": "b.png"}, 2, "one style image"),
    ],
)
def test_mask_options_that_do_not_fit_are_refused(options, styles, message):
    method = load_method("photo")
    config = method.config_class(**options)
    with pytest.raises(InputError, match=message):
        method.check(config, styles)


def test_the_cli_runs_with_label_masks_and_refuses_a_mask_of_another_shape(capsys, tmp_path):
    files = {"photo.png": photo(), "look.png": two_colour_style(RED, BLUE),
             "in.png": halves(96, 72, BLUE_LABEL, GREEN_LABEL, True),
             "tar.png": halves(64, 64, GREEN_LABEL, BLUE_LABEL, False),
             "wide.png": halves(40, 90, BLUE_LABEL, GREEN_LABEL, True)}  # fmt: skip
    for name, image in files.items():
        impasto.save_image(image, tmp_path / name)
    out = tmp_path / "out.png"
    pair = (tmp_path / "photo.png", tmp_path / "look.png")
    code, _out, err = run_cli(capsys, "stylize", *pair, "-o", out, "--method", "photo",
                              "--content-mask", tmp_path / "in.png", "--style-mask",
                              tmp_path / "tar.png")  # fmt: skip
    assert code == 0, err
    assert impasto.load_image(out).rgb.shape[-2:] == (96, 72)
    bad = tmp_path / "bad.png"
    code, _out, err = run_cli(capsys, "stylize", *pair, "-o", bad, "--method", "photo",
                              "--content-mask", tmp_path / "wide.png", "--style-mask",
                              tmp_path / "tar.png")  # fmt: skip
    assert code == 2 and "--content-mask is 90x40" in error_line(err)
    assert not bad.exists()


# --------------------------------------------------------------------------- Gatys, photorealistic


def test_gatys_with_label_masks_gives_each_region_only_its_matching_regions_colours():
    content = photo(64, 48)
    style = two_colour_style(RED, BLUE)
    content_labels = halves(64, 48, BLUE_LABEL, GREEN_LABEL, vertical=True)
    style_labels = halves(64, 64, GREEN_LABEL, BLUE_LABEL, vertical=False)
    result = impasto.stylize(content, [style], method="gatys", size=64, steps=40, scales=1,
                             device="cpu", backbone="efficientnet-lite0",
                             content_mask=content_labels, style_mask=style_labels)  # fmt: skip
    left = result.image[0, :, :, 2:20].mean(dim=(1, 2))
    right = result.image[0, :, :, 28:46].mean(dim=(1, 2))
    assert left[2] > left[0] + 0.1  # the blue-labelled half turned blue
    assert right[0] > right[2] + 0.1  # the green-labelled half turned red


def test_the_matting_regulariser_is_zero_for_an_affine_recolouring_and_not_for_texture():
    from impasto.photoreal import MattingRegulariser

    content = photo(40, 30)
    regulariser = MattingRegulariser(content)
    matrix = torch.tensor([[0.5, 0.2, 0.0], [0.1, 0.3, 0.1], [0.0, 0.2, 0.9]])
    recoloured = torch.einsum("ij,bjhw->bihw", matrix, content) + 0.1
    noise = torch.rand(content.shape, generator=torch.Generator().manual_seed(1))
    textured = recoloured + 0.1 * (noise - 0.5)
    assert float(regulariser(recoloured)) < 1e-3 * float(regulariser(textured))


def test_photorealistic_gatys_keeps_more_of_the_photo_than_plain_gatys():
    content = photo(64, 48)
    style = two_colour_style(RED, BLUE)
    options = dict(size=64, steps=30, scales=1, device="cpu", backbone="efficientnet-lite0")
    plain = impasto.stylize(content, [style], method="gatys", **options)
    photoreal = impasto.stylize(content, [style], method="gatys", photorealistic=True, **options)
    assert ssim(photoreal.image, content) > ssim(plain.image, content) + 0.05


def test_the_exact_smoothing_is_refused_up_front_when_it_cannot_fit(monkeypatch):
    from impasto import smoothing

    assert smoothing.free_memory_bytes() is None or smoothing.free_memory_bytes() > 0
    monkeypatch.setattr(smoothing, "free_memory_bytes", lambda: 50 * 2**20)  # 50 MB free
    with pytest.raises(InputError, match="--smoothing exact needs about .* GB for a 256x192"):
        impasto.stylize(photo(192, 256), [photo(64, 64)], method="photo", smoothing="exact",
                        device="cpu")  # fmt: skip
    small = impasto.stylize(photo(48, 64), [photo(64, 64)], method="photo", smoothing="exact",
                            device="cpu")  # fmt: skip
    assert small.image.shape == (1, 3, 48, 64)  # 3,072 pixels: about 4 MB, it fits
