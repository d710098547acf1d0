"""Colour space conversion, luminance-only transfer and colour matching."""

import pytest
import torch

from impasto.color import (
    PRESERVE_COLOR_CHOICES,
    check_preserve_color,
    match_color,
    preserve_luminance,
    rgb_to_yiq,
    yiq_to_rgb,
)
from impasto.errors import InputError

# The NTSC YIQ matrix as published (FCC; e.g. Wikipedia "YIQ"), written independently of
# impasto.color with 4-digit chroma coefficients; hence tolerances of ~1e-3 where it is used.
PUBLISHED_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.5959, -0.2746, -0.3213],
        [0.2115, -0.5227, 0.3112],
    ]
)


def yiq(image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", PUBLISHED_YIQ, image)


def pixel(r: float, g: float, b: float) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=torch.float32).reshape(1, 3, 1, 1)


def test_yiq_round_trip_on_random_images():
    image = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(image)), image, atol=1e-5, rtol=0)


def test_luma_of_white_is_one_and_of_red_is_0299():
    assert rgb_to_yiq(pixel(1, 1, 1))[0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert rgb_to_yiq(pixel(1, 0, 0))[0, 0].item() == pytest.approx(0.299, abs=1e-6)


def test_grey_has_no_chrominance():
    converted = rgb_to_yiq(pixel(0.5, 0.5, 0.5))
    assert converted[0, 0].item() == pytest.approx(0.5, abs=1e-6)
    assert converted[0, 1].abs().item() < 1e-6
    assert converted[0, 2].abs().item() < 1e-6


def mid_range(shape, seed):
    return 0.4 + 0.2 * torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_preserve_luminance_takes_luma_from_stylised_and_chroma_from_content():
    stylized = mid_range((1, 3, 8, 10), 1)
    content = mid_range((1, 3, 8, 10), 2)
    out = preserve_luminance(stylized, content)
    # Mid-range inputs keep the merged colours inside [0, 1], so clamping plays no part.
    assert out.min() > 0.05 and out.max() < 0.95
    torch.testing.assert_close(yiq(out)[:, 0], yiq(stylized)[:, 0], atol=2e-3, rtol=0)
    torch.testing.assert_close(yiq(out)[:, 1:], yiq(content)[:, 1:], atol=2e-3, rtol=0)
    # The test can tell them apart: the two inputs differ in both luma and chroma.
    assert (yiq(stylized) - yiq(content)).abs().amax(dim=(0, 2, 3)).min() > 0.02


def test_preserve_luminance_follows_the_stylised_size_when_content_differs():
    stylized = mid_range((1, 3, 12, 16), 3)
    # A uniform content colour stays the same colour at any size, whatever the resampling.
    content = pixel(0.6, 0.45, 0.4).expand(1, 3, 30, 40).contiguous()
    out = preserve_luminance(stylized, content)
    assert out.shape == (1, 3, 12, 16)
    torch.testing.assert_close(yiq(out)[:, 0], yiq(stylized)[:, 0], atol=2e-3, rtol=0)
    chroma = yiq(content)[:, 1:, :1, :1].expand(1, 2, 12, 16)
    torch.testing.assert_close(yiq(out)[:, 1:], chroma, atol=2e-3, rtol=0)


def coloured_noise(seed: int, mean, mixing, size=(24, 32)) -> torch.Tensor:
    """Uniform noise with correlated channels: mean + mixing @ (u - 0.5)."""
    uniform = torch.rand(3, size[0] * size[1], generator=torch.Generator().manual_seed(seed))
    pixels = torch.tensor(mean).reshape(3, 1) + torch.tensor(mixing) @ (uniform - 0.5)
    return pixels.reshape(1, 3, *size)


def mean_and_covariance(image: torch.Tensor):
    pixels = image.reshape(3, -1).double()
    mean = pixels.mean(dim=1)
    centered = pixels - mean[:, None]
    return mean, centered @ centered.T / pixels.shape[1]


def test_match_color_gives_the_reference_mean_and_covariance():
    source = coloured_noise(4, [0.3, 0.5, 0.6], [[0.3, 0.1, 0.0], [0.05, 0.25, 0.1], [0, 0.1, 0.3]])
    reference = coloured_noise(
        5, [0.6, 0.45, 0.35], [[0.2, -0.05, 0.0], [0.0, 0.1, 0.05], [0.05, 0.0, 0.15]], (20, 20)
    )
    assert 0 < source.min() and source.max() < 1 and 0 < reference.min() and reference.max() < 1
    out = match_color(source, reference)
    assert out.shape == source.shape
    # Nothing clamped: the matched colours lie inside (0, 1).
    assert out.min() > 0 and out.max() < 1
    out_mean, out_cov = mean_and_covariance(out)
    ref_mean, ref_cov = mean_and_covariance(reference)
    src_mean, src_cov = mean_and_covariance(source)
    torch.testing.assert_close(out_mean, ref_mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(out_cov, ref_cov, atol=1e-4, rtol=0)
    # The statistics really had to move.
    assert (src_mean - ref_mean).abs().max() > 0.1
    assert (src_cov - ref_cov).abs().max() > 1e-3


def test_match_color_refuses_batches():
    image = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError):
        match_color(image, image[:1])
    with pytest.raises(ValueError):
        match_color(image[:1], image)


def test_check_preserve_color_lists_the_choices():
    for mode in ("none", "luminance", "histogram"):
        assert check_preserve_color(mode) == mode
    with pytest.raises(InputError) as error:
        check_preserve_color("sepia")
    message = str(error.value)
    assert "sepia" in message
    for choice in ("none", "luminance", "histogram"):
        assert choice in message
    assert set(PRESERVE_COLOR_CHOICES) == {"none", "luminance", "histogram"}
