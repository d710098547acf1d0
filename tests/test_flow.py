"""Tests for impasto.flow: DIS optical flow, warping, and the reliable-pixel mask."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from impasto.errors import InputError
from impasto.flow import FLOW_PRESETS, motion_between, optical_flow, warp

pytest.importorskip(
    "cv2", reason="optical-flow tests need the video extra: pip install -e '.[video]'"
)

MARGIN = 12  # pixels left out at each border: the roll wraps there, the flow is guessed there


def texture(height: int, width: int, seed: int, cell: int = 8) -> torch.Tensor:
    """A smooth random RGB texture (1, 3, H, W) in [0, 1]: noise on a coarse grid, upsampled
    bicubically, so every patch has gradients for the flow to follow."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // cell + 3, width // cell + 3, generator=generator)
    fine = F.interpolate(coarse, scale_factor=cell, mode="bicubic", align_corners=False)
    return fine[..., :height, :width].clamp(0, 1).contiguous()


def interior(tensor: torch.Tensor) -> torch.Tensor:
    return tensor[..., MARGIN:-MARGIN, MARGIN:-MARGIN]


@pytest.mark.parametrize("preset", FLOW_PRESETS)
def test_optical_flow_recovers_a_known_shift(preset):
    frame = texture(96, 96, seed=0, cell=6)
    dy, dx = 2, 3
    rolled = torch.roll(frame, shifts=(dy, dx), dims=(-2, -1))  # rolled(x) = frame(x - (dx, dy))
    # From the rolled frame back to the original: each point is found (dx, dy) earlier.
    back = interior(optical_flow(rolled, frame, preset))
    assert back[0].mean() == pytest.approx(-dx, abs=0.1)
    assert back[1].mean() == pytest.approx(-dy, abs=0.1)
    assert (back[0] + dx).abs().max() < 0.5 and (back[1] + dy).abs().max() < 0.5
    forward = interior(optical_flow(frame, rolled, preset))
    assert forward[0].mean() == pytest.approx(dx, abs=0.1)
    assert forward[1].mean() == pytest.approx(dy, abs=0.1)


def test_optical_flow_at_a_lower_scale_is_in_full_size_pixels():
    frame = texture(96, 128, seed=1, cell=8)
    rolled = torch.roll(frame, shifts=(0, 4), dims=(-2, -1))
    flow = optical_flow(rolled, frame, "medium", scale=0.5)
    assert flow.shape == (2, 96, 128)
    assert interior(flow)[0].mean() == pytest.approx(-4, abs=0.3)
    assert interior(flow)[1].mean() == pytest.approx(0, abs=0.3)


def test_warp_with_zero_flow_is_the_identity():
    image = texture(40, 56, seed=2)
    assert torch.allclose(warp(image, torch.zeros(2, 40, 56)), image, atol=1e-6)


def test_warp_with_a_constant_integer_flow_is_a_roll_inside_the_frame():
    image = texture(40, 56, seed=3)
    dx, dy = 2, 1
    flow = torch.stack([torch.full((40, 56), float(dx)), torch.full((40, 56), float(dy))])
    warped = warp(image, flow)  # warped(x, y) = image(x + dx, y + dy)
    rolled = torch.roll(image, shifts=(-dy, -dx), dims=(-2, -1))
    kept = (..., slice(0, 40 - dy), slice(0, 56 - dx))
    assert torch.allclose(warped[kept], rolled[kept], atol=1e-5)
    # Past the frame's edge the border repeats (no black pulled in): the last column samples
    # x = 57, clamped to 55, one row down.
    assert torch.allclose(warped[..., : 40 - dy, -1], image[..., dy:, -1], atol=1e-5)


def test_a_square_moving_over_a_background_uncovers_unreliable_pixels():
    size, side, move = 128, 48, 12
    background = texture(size, size, seed=0)
    square = texture(side, side, seed=100) * 0.5  # darker: a clear edge
    top = left = (size - side) // 2 - move // 2
    previous, current = background.clone(), background.clone()
    previous[..., top : top + side, left : left + side] = square
    current[..., top : top + side, left + move : left + move + side] = square

    motion = motion_between(previous, current)
    assert motion.flow.shape == (2, size, size)
    assert motion.reliable.shape == (1, 1, size, size)
    reliable = motion.reliable[0, 0]
    # The strip the square left: background in the current frame, hidden in the previous one.
    uncovered = reliable[top : top + side, left : left + move]
    away = torch.ones(size, size, dtype=torch.bool)
    away[top - 8 : top + side + 8, left - 8 : left + move + side + 8] = False
    assert uncovered.mean() < 0.4
    assert reliable[away].mean() > 0.9
    # Inside the square the flow points back to where it was, and is reliable.
    inside_square = (slice(top + 8, top + side - 8), slice(left + move + 8, left + move + side - 8))
    assert motion.flow[0][inside_square].mean() == pytest.approx(-move, abs=0.3)
    assert reliable[inside_square].mean() > 0.9
    # warp brings the previous frame onto the current one where the mask says so.
    warped = motion.warp(previous)
    error = (warped - current).abs().mean(1)[0]
    assert error[reliable.bool()].mean() < 0.02 < error[~reliable.bool()].mean()


def test_flow_refuses_frames_of_different_sizes():
    with pytest.raises(InputError, match="different sizes"):
        optical_flow(texture(32, 48, 0), texture(32, 40, 0))
    with pytest.raises(InputError, match="different sizes"):
        motion_between(texture(32, 48, 0), texture(30, 48, 0))


def test_flow_refuses_an_unknown_preset_and_names_the_choices():
    frame = texture(32, 48, 0)
    with pytest.raises(InputError, match="unknown flow preset 'slow'.*ultrafast, fast, medium"):
        optical_flow(frame, frame, "slow")
    with pytest.raises(InputError, match="scale"):
        optical_flow(frame, frame, "medium", scale=0)
