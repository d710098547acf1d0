"""impasto.smoothing: the guided filter and the matting-Laplacian smoothing against slow,
loop-by-loop references written here from the papers' formulas, and the properties that define
them (edge-preserving, null space of the matting Laplacian, the closed form)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from impasto import guided as guided_module
from impasto.guided import guided_filter
from impasto.smoothing import (
    SMOOTHING_CHOICES,
    guided_radius,
    matting_affinity,
    matting_smooth,
    smooth,
    solve_matting,
)

# Tiny tensors: several threads only wait for each other on a busy machine (conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def _random(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _reflect(index: int, size: int) -> int:
    """Reflect padding's index (no repeated edge): -1 -> 1, size -> size - 2."""
    if index < 0:
        return -index
    if index >= size:
        return 2 * (size - 1) - index
    return index


def _window(y: int, x: int, ry: int, rx: int, height: int, width: int):
    """Rows and columns of the (2ry+1) x (2rx+1) window around (y, x), reflected at the border."""
    pixels = [
        (_reflect(y + dy, height), _reflect(x + dx, width))
        for dy in range(-ry, ry + 1)
        for dx in range(-rx, rx + 1)
    ]
    return torch.tensor([p[0] for p in pixels]), torch.tensor([p[1] for p in pixels])


def _guided_reference(guide: torch.Tensor, source: torch.Tensor, ry: int, rx: int, eps: float):
    """He et al.'s algorithm 1, one window at a time, float64, windows reflected at the border."""
    guide, source = guide[0].double(), source[0].double()
    channels, (height, width) = source.shape[0], guide.shape[1:]
    a = torch.zeros(height, width, 3, channels, dtype=torch.float64)
    b = torch.zeros(height, width, channels, dtype=torch.float64)
    for y in range(height):
        for x in range(width):
            rows, cols = _window(y, x, ry, rx, height, width)
            colours, values = guide[:, rows, cols].T, source[:, rows, cols].T  # (n, 3), (n, C)
            mean_i, mean_p = colours.mean(0), values.mean(0)
            # Sums of products, not matmuls: a BLAS call spins up threads on a busy 2-core CPU.
            centred, deviation = colours - mean_i, values - mean_p
            covariance = (centred[:, :, None] * centred[:, None, :]).mean(0)
            cross = (centred[:, :, None] * deviation[:, None, :]).mean(0)
            a[y, x] = torch.linalg.solve(
                covariance + eps * torch.eye(3, dtype=torch.float64), cross
            )
            b[y, x] = mean_p - a[y, x].T @ mean_i
    output = torch.zeros(channels, height, width, dtype=torch.float64)
    for y in range(height):
        for x in range(width):
            rows, cols = _window(y, x, ry, rx, height, width)
            mean_a, mean_b = a[rows, cols].mean(0), b[rows, cols].mean(0)
            output[:, y, x] = mean_a.T @ guide[:, y, x] + mean_b
    return output[None]


def _dense_affinity(image: torch.Tensor, eps: float, radius: int) -> torch.Tensor:
    """Levin et al. 2008 eq. 12, window by window, pair by pair."""
    image = image[0].double()
    _, height, width = image.shape
    n = (2 * radius + 1) ** 2
    affinity = torch.zeros(height * width, height * width, dtype=torch.float64)
    for cy in range(radius, height - radius):
        for cx in range(radius, width - radius):
            offsets = range(-radius, radius + 1)
            index = [(cy + dy) * width + cx + dx for dy in offsets for dx in offsets]
            colours = image.reshape(3, -1)[:, index].T
            centred = colours - colours.mean(0)
            covariance = centred.T @ centred / n + eps / n * torch.eye(3, dtype=torch.float64)
            inverse = torch.linalg.inv(covariance)
            for p, i in enumerate(index):
                for q, j in enumerate(index):
                    affinity[i, j] += (1 + centred[p] @ inverse @ centred[q]) / n
    return affinity


# --- guided filter ------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [1, 2])
@pytest.mark.parametrize("eps", [1e-2, 1e-4])
def test_guided_filter_matches_the_window_by_window_reference(radius, eps):
    guide, source = _random(1, 3, 9, 11, seed=1), _random(1, 2, 9, 11, seed=2)
    expected = _guided_reference(guide, source, radius, radius, eps)
    assert torch.allclose(guided_filter(guide, source, radius, eps).double(), expected, atol=1e-5)


def test_guided_filter_clamps_the_radius_of_an_image_smaller_than_the_window():
    guide, source = _random(1, 3, 3, 7, seed=3), _random(1, 3, 3, 7, seed=4)
    expected = _guided_reference(guide, source, 2, 5, 1e-3)  # radius 5 -> 2 rows, 5 columns
    assert torch.allclose(guided_filter(guide, source, 5, 1e-3).double(), expected, atol=1e-5)
    assert torch.isfinite(guided_filter(guide[:, :, :1], source[:, :, :1], 35, 1e-3)).all()


def test_guided_filter_with_the_source_as_guide_keeps_the_source():
    image = _random(1, 3, 32, 32, seed=5)
    assert torch.allclose(guided_filter(image, image, 4, 1e-6), image, atol=1e-4)


def test_guided_filter_with_a_constant_guide_is_a_box_mean_of_the_box_mean():
    # A flat guide: a = 0, b = box mean of p, and q = box mean of b.
    source, radius = _random(1, 3, 20, 24, seed=6), 3

    def box(image):
        padded = F.pad(image.double(), (radius,) * 4, mode="reflect")
        return F.avg_pool2d(padded, 2 * radius + 1, stride=1)

    output = guided_filter(torch.full((1, 3, 20, 24), 0.4), source, radius, 1e-3)
    assert torch.allclose(output.double(), box(box(source)), atol=1e-5)
    assert not torch.allclose(output.double(), box(source), atol=1e-3)


# --- edges: both modes --------------------------------------------------------------------------


def test_the_fast_radius_grows_with_the_picture():
    assert guided_radius((397, 512)) == 35  # the size it was chosen at
    assert guided_radius((2048, 1536)) == 140 and guided_radius((20, 24)) == 2


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_smoothing_flattens_each_region_and_keeps_the_edge_between_them(mode):
    height, width, edge = 64, 80, 40  # fast: a radius of 5 at this size
    content = torch.zeros(1, 3, height, width)
    content[..., edge:] = 1.0
    left, right = torch.tensor([0.8, 0.3, 0.2]), torch.tensor([0.2, 0.4, 0.9])
    clean = torch.where(torch.arange(width) < edge, left[:, None, None], right[:, None, None])
    noise = 0.1 * torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(7))
    stylised = clean[None] + noise
    output = smooth(content, stylised, mode)
    assert output.shape == stylised.shape
    for region in (slice(0, edge), slice(edge, width)):
        before = stylised[..., region].std(dim=(2, 3))
        after = output[..., region].std(dim=(2, 3))
        assert (after < before / 10).all(), (before, after)
    # 2 pixels from the edge each side: still the region's own colour, not a blend.
    assert torch.allclose(output[0, :, :, edge - 3], left[:, None], atol=0.05)
    assert torch.allclose(output[0, :, :, edge + 2], right[:, None], atol=0.05)


def test_fast_smoothing_keeps_the_photos_faint_texture_and_takes_the_change():
    # A flat wall with faint grain (variance far under eps): the stylisation darkened it and
    # added blotchy noise. The change is smoothed, so the grain stays; filtering the
    # stylised picture itself (FastPhotoStyle's way) averages the grain away.
    height, width = 64, 80
    grain = 0.01 * torch.randn(1, 1, height, width, generator=torch.Generator().manual_seed(3))
    content = (0.5 + grain).expand(1, 3, height, width).clone()
    noise = 0.05 * torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(4))
    stylised = content - 0.2 + noise
    output = smooth(content, stylised, "fast")
    assert torch.allclose(output - content, torch.full_like(output, -0.2), atol=0.03)

    def grain_kept(image):  # the share of the grain's amplitude in the image (slope)
        x, y = grain.flatten(), image[0, 0].flatten()
        return float(((x - x.mean()) * (y - y.mean())).mean() / x.var())

    assert grain_kept(output) > 0.9
    picture_filtered = guided_filter(content, stylised, guided_radius((height, width)), 1e-3)
    assert grain_kept(picture_filtered) < 0.3


# --- matting affinity -----------------------------------------------------------------------------


@pytest.mark.parametrize(("radius", "size"), [(1, (5, 6)), (2, (6, 7))])
def test_matting_affinity_matches_the_pair_by_pair_reference(radius, size):
    image = _random(1, 3, *size, seed=8)
    affinity = matting_affinity(image, eps=1e-3, radius=radius).to_dense()
    assert torch.allclose(affinity, _dense_affinity(image, 1e-3, radius), atol=1e-10)
    assert torch.allclose(affinity, affinity.T, atol=1e-12)


def test_matting_laplacian_has_constants_and_colour_channels_in_its_null_space():
    image = _random(1, 3, 5, 6, seed=9)
    affinity = matting_affinity(image, eps=1e-8).to_dense()
    laplacian = torch.diag(affinity.sum(dim=1)) - affinity
    ones = torch.ones(30, 1, dtype=torch.float64)
    colours = image[0].double().reshape(3, -1).T
    assert (laplacian @ ones).abs().max() < 1e-10
    assert (laplacian @ colours).abs().max() < 1e-5
    # ... and it is not the zero matrix: a random vector is not in the null space.
    assert (laplacian @ _random(30, 1, seed=10).double()).abs().max() > 1e-2


# --- closed-form smoothing ------------------------------------------------------------------------


@pytest.mark.parametrize("pad_border", [False, True])
def test_matting_smooth_solves_the_papers_closed_form(pad_border):
    content, stylised, lam = _random(1, 3, 6, 7, seed=11), _random(1, 3, 6, 7, seed=12), 1e-2
    # With pad_border, the closed form of the images replicate-padded by 2 pixels, cropped.
    border = 2 if pad_border else 0
    padded_content = F.pad(content, (border,) * 4, mode="replicate")
    padded_stylised = F.pad(stylised, (border,) * 4, mode="replicate")
    height, width = padded_content.shape[-2:]
    affinity = _dense_affinity(padded_content, 1e-5, 1)
    root = affinity.sum(dim=1).rsqrt()
    similarity = root[:, None] * affinity * root[None, :]
    alpha = 1 / (1 + lam)
    target = padded_stylised[0].double().reshape(3, -1).T
    system = torch.eye(height * width, dtype=torch.float64) - alpha * similarity
    expected = (1 - alpha) * torch.linalg.solve(system, target)  # R* = (1 - a)(I - a S)^-1 Y
    expected = expected.T.reshape(3, height, width)[
        :, border : height - border, border : width - border
    ]
    solution = solve_matting(content, stylised, lam=lam, eps=1e-5, tol=1e-10, pad_border=pad_border)
    assert solution.relative_residual <= 1e-10
    assert torch.allclose(solution.image[0].double(), expected, atol=1e-6)


def test_matting_smooth_with_a_huge_lambda_returns_the_stylised_image():
    content, stylised = _random(1, 3, 12, 10, seed=13), _random(1, 3, 12, 10, seed=14)
    assert torch.allclose(matting_smooth(content, stylised, lam=1e6), stylised, atol=1e-4)


# --- the choice ----------------------------------------------------------------------------------


def test_smooth_none_returns_the_stylised_image_and_every_mode_keeps_a_batch():
    content, stylised = _random(2, 3, 8, 9, seed=15), _random(2, 3, 8, 9, seed=16) * 1.2
    assert torch.equal(smooth(content, stylised, "none"), stylised.clamp(0, 1))
    for mode in SMOOTHING_CHOICES:
        output = smooth(content[:1], stylised, mode)
        assert output.shape == stylised.shape
        assert output.min() >= 0 and output.max() <= 1


def test_smooth_refuses_an_unknown_mode_naming_the_choices():
    image = _random(1, 3, 8, 8)
    with pytest.raises(ValueError) as caught:
        smooth(image, image, "bilateral")
    assert all(choice in str(caught.value) for choice in SMOOTHING_CHOICES)


@pytest.mark.parametrize(
    "content_shape", [(1, 3, 8, 9), (1, 3, 9, 8), (3, 3, 8, 8), (1, 1, 8, 8), (3, 8, 8)]
)
def test_smooth_refuses_images_that_do_not_match(content_shape):
    with pytest.raises(ValueError):
        smooth(torch.rand(content_shape), _random(2, 3, 8, 8), "fast")


def test_matting_smooth_refuses_a_zero_lambda_and_a_wrong_shape():
    image = _random(1, 3, 8, 8)
    with pytest.raises(ValueError):
        matting_smooth(image, image, lam=0.0)
    with pytest.raises(ValueError):
        matting_smooth(image, _random(1, 3, 8, 9))


def test_the_subsampled_guided_filter_upsamples_its_models_as_one_picture_would():
    from impasto.guided import _apply_coefficients, _guided_coefficients

    guide, source = _random(1, 3, 90, 70, seed=21), _random(1, 3, 90, 70, seed=22)
    assert torch.equal(guided_module.guided_filter_subsampled(guide, source, 4, 1e-3, 1),
                       guided_filter(guide, source, 4, 1e-3))  # fmt: skip
    small = (45, 35)
    centre, offset, models = _guided_coefficients(F.interpolate(guide.double(), size=small,
                                                                mode="area"),
                                                  F.interpolate(source.double(), size=small,
                                                                mode="area"), 2, 1e-3)  # fmt: skip
    whole = F.interpolate(models, size=(90, 70), mode="bilinear", align_corners=False)
    expected = _apply_coefficients(whole, guide.double() - centre, offset)
    rows_before = guided_module.SUBSAMPLED_ROWS
    try:
        guided_module.SUBSAMPLED_ROWS = 16  # several bands
        banded = guided_module.guided_filter_subsampled(guide, source, 4, 1e-3, 2)
    finally:
        guided_module.SUBSAMPLED_ROWS = rows_before
    assert torch.allclose(banded.double(), expected, atol=1e-5)
    # ... and it is close to the full-size filter on a smooth picture with an edge
    content = torch.zeros(1, 3, 96, 96)
    content[..., 48:] = 1.0
    stylised = content * 0.5 + 0.2 + 0.02 * _random(1, 3, 96, 96, seed=23)
    full = guided_filter(content, stylised, 8, 1e-3)
    fast_one = guided_module.guided_filter_subsampled(content, stylised, 8, 1e-3, 2)
    assert (fast_one - full).abs().mean() < 0.01
