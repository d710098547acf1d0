"""Keeping a photo's structure (impasto.structure): SSIM of a blend computed from one pass of
statistics agrees with computing it, and the guard takes the largest share of a change that
keeps the floor."""

from __future__ import annotations

import pytest
import torch

import impasto
from impasto import structure
from impasto.images import resize_to
from impasto.metrics.pixels import blend_ssim, ssim

ASSETS = impasto.__path__[0] + "/assets/"


def photo(height: int = 96, width: int = 128) -> torch.Tensor:
    return resize_to(impasto.load_image(ASSETS + "washington_monument.jpg").rgb, height, width)


def night(picture: torch.Tensor) -> torch.Tensor:
    """A day-to-night look: everything dark and blue."""
    return (picture * torch.tensor([0.15, 0.18, 0.35])[:, None, None]).clamp(0, 1)


@pytest.mark.parametrize("share", [0.0, 0.25, 0.6, 1.0])
def test_the_ssim_of_a_blend_is_the_ssim_of_the_blended_picture(share):
    day = photo()
    dark = night(day)
    assert blend_ssim(day, dark)(share) == pytest.approx(ssim(day + share * (dark - day), day),
                                                         abs=1e-6)  # fmt: skip


def test_a_night_look_is_taken_only_as_far_as_the_structure_floor_allows():
    day = photo()
    dark = night(day)
    assert ssim(dark, day) < 0.6
    kept, share, value = structure.keep_structure(day, dark, 0.6)
    assert 0 < share < 1
    assert ssim(kept, day) == pytest.approx(value, abs=1e-6)
    assert 0.6 <= value < 0.61  # the largest share: a little more falls below the floor
    assert ssim(day + (share + 0.01) * (dark - day), day) < 0.6


def test_a_look_that_keeps_the_structure_is_taken_whole_and_a_zero_floor_takes_any():
    day = photo()
    warm = (day * torch.tensor([1.0, 0.9, 0.75])[:, None, None]).clamp(0, 1)
    kept, share, _ = structure.keep_structure(day, warm, 0.6)
    assert share == 1.0 and kept is warm
    dark = night(day)
    kept, share, value = structure.keep_structure(day, dark, 0.0)
    assert share == 1.0 and kept is dark and value < 0.6


def test_a_large_picture_is_measured_on_a_smaller_copy_and_blended_at_full_size(monkeypatch):
    day = photo()
    dark = night(day)
    monkeypatch.setattr(structure, "GUARD_PIXELS", 48 * 64)
    kept, share, _ = structure.keep_structure(day, dark, 0.6)
    assert kept.shape == day.shape and 0 < share < 1
    assert torch.allclose(kept, day + share * (dark - day), atol=1e-6)
