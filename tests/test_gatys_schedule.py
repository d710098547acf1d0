"""Gatys's schedule (issue 18): fewer evaluations at each finer scale (--step-decay), small
sizes rendered larger and shrunk on a network with a strided first layer, and the start from
the photo graded to the painting's colours (--init graded)."""

import pytest
import torch

from impasto.backbones import load_backbone
from impasto.methods import gatys
from impasto.methods.gatys import GatysConfig, scale_steps, stylize, working_size
from impasto.metrics import color_distance
from impasto.temporal import TemporalPrior


@pytest.fixture(scope="module")
def tiny():
    return load_backbone("tiny")


@pytest.fixture(scope="module")
def strided(tiny):
    """The tiny network, as if its first layer were strided (a second object, same weights)."""
    backbone = load_backbone("tiny")
    backbone.first_stride = 2
    return backbone


def picture(height, width, seed, low=0.0, high=1.0):
    noise = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
    return low + (high - low) * noise


@pytest.mark.parametrize(
    ("steps", "scales", "decay", "expected"),
    [
        (200, 2, 1.0, [200, 200]),
        (200, 2, 0.5, [200, 100]),
        (200, 3, 0.5, [200, 100, 50]),
        (40, 3, 0.25, [40, 10, 10]),  # never below MIN_SCALE_STEPS
        (5, 2, 0.5, [5, 5]),  # nor above the coarsest scale's
        (200, 1, 0.25, [200]),
    ],
)
def test_scale_steps_shrink_by_the_decay_from_the_coarsest_scale(steps, scales, decay, expected):
    assert scale_steps(steps, scales, decay) == expected


def test_each_scale_runs_its_share_of_the_steps(tiny):
    events = []
    config = GatysConfig(size=48, steps=24, scales=2, step_decay=0.5, backbone="tiny")
    result = stylize(picture(40, 60, 1), [picture(36, 36, 2)], config, backbone=tiny,
                     progress=events.append)  # fmt: skip
    steps = [event for event in events if event.kind == "step"]
    coarse = [event for event in steps if "24 px" in event.stage]
    fine = [event for event in steps if "48 px" in event.stage]
    assert (len(coarse), len(fine)) == (24, 12)
    assert len(result.history) == 36 and steps[-1].total == 36


@pytest.mark.parametrize(
    ("size", "stride", "expected"),
    [(192, 2, 384), (256, 2, 512), (383, 2, 766), (384, 2, 384), (512, 2, 512), (192, 1, 192)],
)
def test_small_sizes_are_rendered_at_twice_the_size_on_a_strided_network(size, stride, expected):
    backbone = load_backbone("tiny")
    backbone.first_stride = stride
    assert working_size(size, backbone) == expected


def test_a_supersampled_run_returns_the_output_size_and_says_what_it_rendered(strided):
    content, style = picture(40, 60, 1), picture(36, 36, 2)
    config = GatysConfig(size=48, steps=3, backbone="tiny")
    result = stylize(content, [style], config, backbone=strided)
    assert result.image.shape[-2:] == (32, 48)
    assert result.details["scale_sizes"] == [96]
    assert 0 <= result.image.min() and result.image.max() <= 1


def test_supersampling_shrinks_what_it_renders(strided, monkeypatch):
    """The returned picture is the 96 px render shrunk with antialiasing (computed here with
    torch directly), not a run at 48 px."""
    import torch.nn.functional as F

    content, style = picture(40, 60, 1), picture(36, 36, 2)
    config = GatysConfig(size=48, steps=3, backbone="tiny")
    rendered = []
    original = gatys.resize_to

    def spy(image, height, width):
        if image.shape[-1] == 96 and (height, width) == (32, 48):
            rendered.append(image.clone())
        return original(image, height, width)

    monkeypatch.setattr(gatys, "resize_to", spy)
    result = stylize(content, [style], config, backbone=strided)
    assert rendered, "the 96 px render was never shrunk to the output"
    shrunk = F.interpolate(rendered[-1], size=(32, 48), mode="bicubic", align_corners=False,
                           antialias=True).clamp(0, 1)  # fmt: skip
    torch.testing.assert_close(result.image, shrunk)


def test_previews_and_a_stop_keep_the_output_size_when_supersampled(strided):
    from impasto.errors import Cancelled

    content, style = picture(40, 60, 1), picture(36, 36, 2)
    previews = []

    def watch(event):
        if event.image is not None:
            previews.append(event.image)
        return not (event.kind == "step" and event.step >= 4)

    config = GatysConfig(size=48, steps=6, save_every=2, backbone="tiny")
    with pytest.raises(Cancelled) as stopped:
        stylize(content, [style], config, backbone=strided, progress=watch)
    assert previews and all(p.shape[-2:] == (32, 48) for p in previews)
    assert stopped.value.partial.image.shape[-2:] == (32, 48)


def test_a_video_prior_at_the_output_size_is_brought_to_the_rendered_size(strided):
    content, style = picture(40, 60, 1), picture(36, 36, 2)
    prior = TemporalPrior(image=picture(32, 48, 3), reliable=torch.ones(1, 1, 32, 48),
                          strength=0.5)  # fmt: skip
    config = GatysConfig(size=48, steps=20, backbone="tiny")
    result = stylize(content, [style], config, backbone=strided, prior=prior)
    assert result.image.shape[-2:] == (32, 48)
    assert result.details["scale_sizes"] == [96]


def test_the_graded_start_has_the_paintings_colours_and_the_photos_layout():
    photo = picture(48, 64, 1, low=0.1, high=0.5)
    photo[..., :, :32] *= 0.5  # a darker left half: a layout the grade must keep
    painting = torch.cat([picture(40, 40, 2, low=0.6, high=1.0)[:, :1],
                          picture(40, 40, 3, low=0.0, high=0.3)[:, :2]], dim=1)  # fmt: skip
    start = gatys.graded_start(photo, [painting], [1.0])
    assert color_distance(start, painting) < 0.25 * color_distance(photo, painting)
    assert start[..., :, :32].mean() < start[..., :, 32:].mean()


def test_the_graded_start_mixes_several_paintings_by_their_blend():
    photo = picture(48, 64, 1)
    red = torch.zeros(1, 3, 32, 32)
    red[:, 0] = 0.9
    blue = torch.zeros(1, 3, 32, 32)
    blue[:, 2] = 0.9
    start = gatys.graded_start(photo, [red, blue], [0.75, 0.25])
    red_share = (start[:, 0] > start[:, 2]).float().mean().item()
    assert 0.65 < red_share < 0.85


def test_init_graded_runs_and_starts_from_the_graded_photo(tiny):
    """With every weight 0 Adam leaves the start as it is: the result is the start."""
    content, style = picture(40, 60, 1), picture(36, 36, 2, low=0.6)
    config = GatysConfig(size=48, steps=1, init="graded", backbone="tiny", optimizer="adam",
                         content_weight=0.0, style_weight=0.0, tv_weight=0.0)  # fmt: skip
    result = stylize(content, [style], config, backbone=tiny)
    resize = gatys.resize_long_side  # the painting's colours as given, at any scale
    expected = gatys.graded_start(resize(content, 48), [style], [1.0])
    torch.testing.assert_close(result.image, expected, atol=1e-5, rtol=0)
    assert color_distance(result.image, style) < color_distance(resize(content, 48), style)


def test_with_masks_each_region_of_the_graded_start_takes_its_own_paintings_colours():
    photo = picture(32, 48, 1, low=0.3, high=0.7)
    red, blue = torch.zeros(1, 3, 24, 24), torch.zeros(1, 3, 24, 24)
    red[:, 0], blue[:, 2] = 0.9, 0.9
    left, right = torch.zeros(1, 1, 32, 48), torch.zeros(1, 1, 32, 48)
    left[..., :16], right[..., 32:] = 1.0, 1.0  # the middle third: no mask
    start = gatys.graded_start(photo, [red, blue], [0.5, 0.5], ([left, right], None))
    west, middle, east = start[..., 2:14], start[..., 18:30], start[..., 34:46]
    assert west[:, 0].mean() > west[:, 2].mean() + 0.5
    assert east[:, 2].mean() > east[:, 0].mean() + 0.5
    torch.testing.assert_close(middle, photo[..., 18:30])  # uncovered: the photo as it was


def test_a_supersampled_result_has_the_unsupersampled_shape_even_where_rounding_differs(strided):
    """A 3:2 photo at 256 px is 171x256; rendered at 512 (341x512) and shrunk by halving the
    long side it would be 170x256. Finished, stopped and previewed, it must be 171x256."""
    from impasto.errors import Cancelled

    content, style = picture(40, 60, 1), picture(36, 36, 2)
    config = GatysConfig(size=256, steps=2, save_every=1, backbone="tiny")
    previews = []

    def keep(event):
        if event.image is not None:
            previews.append(event.image)

    finished = stylize(content, [style], config, backbone=strided, progress=keep)
    assert finished.details["scale_sizes"] == [256, 512]
    assert finished.image.shape[-2:] == (171, 256)
    assert previews and all(p.shape[-2:] == (171, 256) for p in previews)
    with pytest.raises(Cancelled) as stopped:
        stylize(content, [style], config, backbone=strided,
                progress=lambda e: not (e.kind == "step" and e.step >= 3))  # fmt: skip
    assert stopped.value.partial.image.shape[-2:] == (171, 256)


@pytest.mark.parametrize(
    ("init", "photorealistic", "expected"),
    [("auto", False, "graded"), ("auto", True, "content"), ("noise", True, "noise"),
     ("graded", True, "graded"), ("content", False, "content")],
)  # fmt: skip
def test_auto_starts_graded_except_a_photorealistic_run(init, photorealistic, expected):
    from impasto.starts import starting_image

    config = GatysConfig(init=init, photorealistic=photorealistic)
    assert starting_image(config) == expected
