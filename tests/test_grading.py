"""Colour grading by distribution transfer (impasto.grading): the grade matches a reference's
whole colour distribution (not just its mean and covariance), keeps a picture graded to its
own colours, extends beyond the sampled range with slope 1, works in bands, and region by
region with masks."""

from __future__ import annotations

import pytest
import torch

import impasto
from impasto import grading
from impasto.color import match_color
from impasto.images import resize_to
from impasto.metrics.pixels import color_distance, quantiles

ASSETS = impasto.__path__[0] + "/assets/"


def noise_picture(seed: int, height: int = 48, width: int = 64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=generator)


def two_colour_picture(first, second, seed: int = 1, height: int = 48, width: int = 64):
    """Each pixel one of two colours at random (a distribution with two modes), a little noise."""
    generator = torch.Generator().manual_seed(seed)
    pick = torch.rand(1, 1, height, width, generator=generator) < 0.5
    picture = torch.where(pick, torch.tensor(first)[:, None, None],
                          torch.tensor(second)[:, None, None])  # fmt: skip
    return (picture + 0.02 * torch.randn(1, 3, height, width, generator=generator)).clamp(0, 1)


def graded(picture: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return grading.grade_to(picture, [grading.pixel_sample(reference)])


def test_the_grade_matches_a_two_mode_palette_that_a_mean_and_covariance_match_misses():
    picture = noise_picture(0)
    reference = two_colour_picture((0.9, 0.2, 0.1), (0.1, 0.3, 0.8))
    before = color_distance(picture, reference)
    by_moments = color_distance(match_color(picture, reference), reference)
    by_grade = color_distance(graded(picture, reference), reference)
    assert by_grade < 0.25 * by_moments < before
    assert by_grade < 0.05


def test_a_picture_graded_to_its_own_colours_barely_changes():
    picture = noise_picture(4)
    own = grading.pixel_sample(picture, seed=1)  # another sample than the fit's own
    assert (grading.grade_to(picture, [own]) - picture).abs().mean() < 0.01


def test_a_thin_region_that_the_strided_copy_misses_is_still_sampled(monkeypatch):
    monkeypatch.setattr(grading, "SAMPLED_PIXELS", 48 * 64 // 4)  # a stride of 2
    thin = torch.zeros(1, 1, 48, 64)
    thin[..., 5, :] = 1  # one odd row: every second row is read
    picture = noise_picture(9)
    sample = grading.pixel_sample(picture, thin, count=500)
    row = torch.stack([grading.rgb_to_yiq(picture)[0, :, 5, x] for x in range(64)])
    assert all(bool((row - colour).abs().sum(dim=1).min() < 1e-5) for colour in sample[:20])


def ranks(values: torch.Tensor) -> torch.Tensor:
    return values.argsort().argsort().double()


def test_a_photo_graded_to_a_darker_look_keeps_the_order_of_its_tones():
    photo = resize_to(impasto.load_image(ASSETS + "washington_monument.jpg").rgb, 96, 128)
    # a real photo's distribution, darker and bluer (mirrored, so the pixels do not line up)
    look = photo.flip(-1) * torch.tensor([0.4, 0.4, 0.7])[:, None, None]
    result = graded(photo, look)
    before, after = photo.mean(dim=1).flatten(), result.mean(dim=1).flatten()
    spearman = torch.corrcoef(torch.stack([ranks(before), ranks(after)]))[0, 1]
    assert spearman > 0.95
    assert float(after.mean()) < 0.55 * float(before.mean())  # the look is 0.4-0.7x as bright


def test_the_quantile_map_interpolates_and_continues_with_slope_one_beyond_the_ends():
    source = torch.tensor([[0.0, 1.0, 2.0]])
    target = torch.tensor([[10.0, 12.0, 20.0]])
    values = torch.tensor([[0.5, 1.5, -1.0, 3.0]])
    mapped = grading.quantile_map(values, source, target)
    assert torch.allclose(mapped, torch.tensor([[11.0, 16.0, 9.0, 21.0]]))


def test_the_table_lookup_agrees_with_the_quantile_map():
    generator = torch.Generator().manual_seed(2)
    source = torch.randn(3, 500, generator=generator)
    target = 2 * torch.randn(3, 500, generator=generator) + 1
    source_q = quantiles(source.T, grading.LEVELS).T
    target_q = quantiles(target.T, grading.LEVELS).T
    values = 1.5 * torch.randn(3, 2000, generator=generator)  # some beyond either end
    table = grading.MapTable.from_quantiles(source_q, target_q)
    expected = grading.quantile_map(values, source_q, target_q)
    spread = float(target_q.max() - target_q.min())
    assert (table(values) - expected).abs().max() < 2e-3 * spread


def test_bands_give_the_whole_pictures_result(monkeypatch):
    picture, reference = noise_picture(5), two_colour_picture((0.8, 0.7, 0.1), (0.2, 0.1, 0.3))
    grade = grading.fit_grade(grading.pixel_sample(picture), grading.pixel_sample(reference))
    whole = grade.apply(picture)
    monkeypatch.setattr(grading, "BAND_PIXELS", 64 * 5)  # bands of 5 rows
    assert torch.equal(grade.apply(picture), whole)


def test_amount_moves_part_of_the_way():
    picture, reference = noise_picture(6), two_colour_picture((0.9, 0.9, 0.2), (0.2, 0.1, 0.1))
    full = graded(picture, reference)
    half = grading.grade_to(picture, [grading.pixel_sample(reference)], amount=0.5)
    assert torch.allclose(half, (picture + full) / 2, atol=1e-6)
    assert torch.equal(grading.grade_to(picture, [grading.pixel_sample(reference)], amount=0),
                       picture)  # fmt: skip


def test_each_masked_region_takes_only_its_own_references_colours():
    picture = noise_picture(7)
    red, blue = (
        two_colour_picture((0.9, 0.1, 0.1), (0.7, 0.0, 0.0)),
        two_colour_picture((0.1, 0.1, 0.9), (0.0, 0.2, 0.6)),
    )
    left, right = torch.zeros(1, 1, 48, 64), torch.zeros(1, 1, 48, 64)
    left[..., :24] = 1  # columns 24-39 are covered by no mask
    right[..., 40:] = 1
    references = [grading.pixel_sample(red), grading.pixel_sample(blue)]
    result = grading.grade_to(picture, references, [left, right])
    left_mean = result[..., :24].mean(dim=(0, 2, 3))
    right_mean = result[..., 40:].mean(dim=(0, 2, 3))
    assert left_mean[0] > 0.7 and left_mean[2] < 0.2
    assert right_mean[2] > 0.6 and right_mean[0] < 0.2
    assert torch.equal(result[..., 24:40], picture[..., 24:40])


def test_a_weight_that_covers_nothing_is_refused():
    with pytest.raises(ValueError, match="covers no pixel"):
        grading.pixel_sample(noise_picture(8), torch.zeros(1, 1, 48, 64))
