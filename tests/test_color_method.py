"""--method color: colour-only transfer (its own tests; the contract suite covers the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import impasto
from impasto.errors import InputError
from impasto.images import load_image, resize_long_side
from impasto.methods import color as color_method
from impasto.methods.color import ColorConfig, from_space, palette_of, to_space, transfer
from impasto.metrics import color_distance, ssim

ASSETS = Path(__file__).resolve().parents[1] / "src" / "impasto" / "assets"


def smooth_image(seed: int, low: float, high: float, size=(48, 64)) -> torch.Tensor:
    """A smooth random image with values in [low, high] (no clamping needed by a transfer)."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, 5, 5, generator=generator, dtype=torch.float64)
    image = torch.nn.functional.interpolate(base, size=size, mode="bilinear")  # no overshoot
    return (low + (high - low) * image).float()


def test_lab_of_published_colours():
    # CIE L*a*b* (D65) of sRGB white and pure red, as published for the sRGB standard.
    pixels = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    lab = to_space(pixels, "lab") * 100
    assert torch.allclose(lab[:, 0], torch.tensor([100.0, 0, 0], dtype=torch.float64), atol=1e-3)
    assert torch.allclose(
        lab[:, 1], torch.tensor([53.24, 80.09, 67.20], dtype=torch.float64), atol=0.05
    )


@pytest.mark.parametrize("space", ["lab", "rgb", "yiq"])
def test_colour_spaces_round_trip(space):
    pixels = torch.rand(3, 1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(from_space(to_space(pixels, space), space), pixels, atol=1e-9)


@pytest.mark.parametrize("space", ["rgb", "yiq"])  # linear spaces: no gamut clamping here
def test_meancov_gives_the_styles_mean_and_covariance(space):
    content = smooth_image(1, 0.35, 0.65)
    style = smooth_image(2, 0.3, 0.6, size=(40, 40))
    config = ColorConfig(mode="meancov", space=space)
    result = transfer(content, palette_of([style], [1.0], space), config)

    def stats(image):
        values = to_space(image.reshape(3, -1).double(), space)
        return values.mean(dim=1), torch.cov(values, correction=0)

    (result_mean, result_cov), (style_mean, style_cov) = stats(result), stats(style)
    (content_mean, _) = stats(content)
    assert torch.allclose(result_mean, style_mean, atol=2e-3)
    assert torch.allclose(result_cov, style_cov, atol=2e-4)
    assert not torch.allclose(content_mean, style_mean, atol=2e-2)  # so the test can fail


def test_histogram_gives_each_channel_the_styles_values_in_the_contents_order():
    content = smooth_image(3, 0.2, 0.8)
    style = smooth_image(4, 0.1, 0.9, size=(48, 64))  # as many pixels: quantiles line up
    result = transfer(content, palette_of([style], [1.0], "rgb"), ColorConfig(space="rgb"))
    for channel in range(3):
        got, wanted = result[0, channel].flatten(), style[0, channel].flatten()
        # the style's quantile function is kept at 4096 points: exact up to that sampling
        gap = (got.sort().values - wanted.sort().values).abs()
        assert gap.max() < 5e-3 and gap.mean() < 5e-4
        # every detail of the photo kept: the pixels' order in each channel is the photo's
        order = content[0, channel].flatten().argsort(stable=True)  # ties in pixel order
        assert (got[order].diff() >= -1e-6).all()


def test_strength_moves_the_colours_part_of_the_way():
    content, style = smooth_image(5, 0.3, 0.6), smooth_image(6, 0.4, 0.9)
    palette = palette_of([style], [1.0], "lab")
    none = transfer(content, palette, ColorConfig(strength=0.0))
    half = transfer(content, palette, ColorConfig(strength=0.5))
    full = transfer(content, palette, ColorConfig(strength=1.0))
    assert torch.allclose(none, content, atol=1e-5)
    lab = [to_space(x.reshape(3, -1).double(), "lab") for x in (content, half, full)]
    assert torch.allclose(lab[1], (lab[0] + lab[2]) / 2, atol=1e-6)


def test_two_styles_blend_and_a_zero_weight_is_ignored():
    content = smooth_image(7, 0.2, 0.8)
    red, blue = smooth_image(8, 0.5, 1.0), smooth_image(9, 0.0, 0.5)
    alone = impasto.stylize(content, [red], method="color").image
    weighted = impasto.stylize(content, [red, blue], method="color", style_blend=[1, 0]).image
    both = impasto.stylize(content, [red, blue], method="color").image
    assert torch.allclose(alone, weighted, atol=1e-6)
    assert (
        alone.mean() > both.mean() > impasto.stylize(content, [blue], method="color").image.mean()
    )
    with pytest.raises(impasto.InputError, match="--style-blend has 1 weight"):
        impasto.stylize(content, [red, blue], method="color", style_blend=[1])


def test_a_flat_style_does_not_blow_up():
    content = smooth_image(10, 0.2, 0.8)
    flat = torch.full((1, 3, 16, 16), 0.5)
    for mode in color_method.MODE_CHOICES:
        result = transfer(content, palette_of([flat], [1.0], "lab"), ColorConfig(mode=mode))
        assert torch.isfinite(result).all()
        assert (result - 0.5).abs().max() < 0.02


def test_the_bundled_pair_takes_the_paintings_palette_and_keeps_the_photos_structure():
    content = resize_long_side(load_image(ASSETS / "washington_monument.jpg").rgb, 256)
    style = load_image(ASSETS / "vangogh_bedroom_in_arles.jpg").rgb
    result = impasto.stylize(content, style, method="color").image
    # colours: much nearer the painting's (sliced Wasserstein distance of the colours)
    assert color_distance(result, style) < 0.5 * color_distance(content, style)
    # structure: grey-level SSIM with the photo stays high (only colours moved)
    assert (
        ssim(
            result.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1),
            content.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1),
        )
        > 0.6
    )


def test_masks_give_each_region_only_its_own_styles_palette(tmp_path):
    photo = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(8))
    red, blue = torch.zeros(1, 3, 20, 20), torch.zeros(1, 3, 20, 20)
    red[:, 0], blue[:, 2] = 0.9, 0.8
    left = torch.zeros(1, 1, 40, 60)
    left[..., :30] = 1.0
    right = torch.zeros(1, 1, 40, 60)
    right[..., 40:] = 1.0  # columns 30-39: no mask, the photo stays
    result = impasto.stylize(photo, [red, blue], method="color", space="rgb",
                             mask=[left, right]).image  # fmt: skip
    inside_left, inside_right = result[..., 2:28], result[..., 42:]
    assert torch.allclose(inside_left, red[..., :1, :1].expand_as(inside_left), atol=1e-6)
    assert torch.allclose(inside_right, blue[..., :1, :1].expand_as(inside_right), atol=1e-6)
    assert torch.allclose(result[..., 32:38], photo[..., 32:38], atol=1e-6)
    # without masks, both palettes are blended everywhere: no region is pure red
    blended = impasto.stylize(photo, [red, blue], method="color", space="rgb").image
    assert blended[:, 2, :, 2:28].mean() > 0.2


def test_a_mask_per_style_is_counted(tmp_path):
    with pytest.raises(InputError, match="1 mask"):
        impasto.stylize(torch.rand(1, 3, 20, 20), [torch.rand(1, 3, 8, 8)] * 2, method="color",
                        mask=[torch.ones(1, 1, 20, 20)])  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "space", "largest", "mean"),
    [
        ("histogram", "lab", 0.01, 1e-4),
        # in RGB the 8-bit photo has runs of equal values: the whole-picture ranks spread each
        # run in reading order, the bands give it one rank; on average they agree
        ("histogram", "rgb", 0.07, 0.003),
        ("meancov", "lab", 1e-5, 1e-7),
        ("meancov", "rgb", 1e-5, 1e-7),
    ],
)
def test_a_photo_recoloured_in_bands_is_the_whole_photo_recoloured(mode, space, largest, mean):
    """Large photos are recoloured in bands of rows (bounded memory), their statistics gathered
    over every band first: the bands give what the whole picture gives."""
    photo = load_image(ASSETS / "washington_monument.jpg").rgb
    palette = palette_of([load_image(ASSETS / "vangogh_bedroom_in_arles.jpg").rgb], [1.0], space)
    config = ColorConfig(mode=mode, space=space)
    whole = transfer(photo, palette, config)
    bands = color_method.transfer_in_bands(photo, palette, config, rows=97)
    assert float((whole - bands).abs().max()) <= largest
    assert float((whole - bands).abs().mean()) <= mean
    assert float((whole - photo).abs().mean()) > 0.05  # and it did recolour


def test_photos_over_the_band_limit_go_through_in_bands(monkeypatch):
    calls = []
    monkeypatch.setattr(color_method, "BAND_PIXELS", 40 * 60)
    real = color_method.transfer_in_bands

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(color_method, "transfer_in_bands", counted)
    palette = palette_of([smooth_image(1, 0.2, 0.9)], [1.0], "lab")
    transfer(smooth_image(2, 0.1, 0.6, size=(40, 60)), palette, ColorConfig())
    assert calls == []
    transfer(smooth_image(2, 0.1, 0.6, size=(41, 60)), palette, ColorConfig())
    assert calls == [1]
