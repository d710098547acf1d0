"""Tiled inference (impasto.tiling), --max-memory (impasto.memory), and the fast method in
tiles: weights that blend to one, tiles that reproduce the whole picture where both fit, the
instance norms' statistics shared by every tile, and bad budgets as one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import error_line, run_cli, write_image

import impasto
from impasto import tiling
from impasto.errors import InputError
from impasto.images import load_image, resize_long_side
from impasto.memory import format_bytes, memory_budget, parse_memory
from impasto.methods import fast
from impasto.nn.layers import InstanceNorm, statistics_from


def _picture(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A smooth picture with edges: coarse noise upsampled, plus a bright square."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 16 + 1, width // 16 + 1, generator=generator)
    image = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    image[..., height // 3 : height // 2, width // 4 : width // 2] = 0.95
    return image.clamp(0, 1)


# --- the plan -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "core", "margin"), [(1000, 256, 80), (257, 256, 80), (96, 40, 8)]
)
def test_cores_cover_the_axis_once_and_tiles_reach_the_margin_further(length, core, margin):
    found = tiling.spans(length, core, margin)
    covered = torch.zeros(length, dtype=torch.int64)
    for start, stop, core_start, core_stop in found:
        covered[core_start:core_stop] += 1
        assert start == max(0, core_start - margin) and stop == min(length, core_stop + margin)
    assert bool((covered == 1).all())


@pytest.mark.parametrize(
    ("length", "core", "margin", "discard"), [(1000, 256, 80, 48), (300, 64, 40, 40)]
)
def test_weights_sum_to_one_everywhere_and_ignore_the_discarded_edge(length, core, margin, discard):
    total = torch.zeros(length)
    for (start, stop, _a, _b), weight in zip(
        tiling.spans(length, core, margin),
        tiling.axis_weights(length, core, margin, discard),
        strict=True,
    ):
        total[start:stop] += weight
        if start > 0:  # an inner edge: the first `discard` pixels count for nothing
            assert bool((weight[:discard] == 0).all())
        if stop < length:
            assert bool((weight[-discard:] == 0).all())
    assert torch.allclose(total, torch.ones(length), atol=1e-6)


def test_core_for_fits_the_budget_and_the_stride():
    side = tiling.core_for(1_000_000, margin=80, multiple=4)
    assert side % 4 == 0 and (side + 160) ** 2 <= 1_000_000 < (side + 4 + 160) ** 2


# --- tiles give the whole picture's output ---------------------------------------------------


def test_a_local_network_in_tiles_gives_exactly_its_whole_output():
    # Two 5x5 reflect-padded convolutions (a reach of 4 pixels, far under the discarded 48).
    torch.manual_seed(0)
    first, second = torch.randn(8, 3, 5, 5) / 10, torch.randn(3, 8, 5, 5) / 10

    def network(x):
        x = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), first).relu()
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), second)

    image = _picture(300, 420)
    tiled = tiling.run_tiled(network, image, 64, margin=80, discard=48)
    assert torch.allclose(tiled, network(image), atol=1e-5)
    # ... and without the discarded band the padding shows at the tiles' edges: the test can fail
    careless = tiling.run_tiled(network, image, 64, margin=8, discard=0)
    assert (careless - network(image)).abs().max() > 1e-3


@pytest.fixture(scope="module")
def stylizer() -> fast.Stylizer:
    torch.manual_seed(3)
    network = fast.TransformNet(fast.NetworkConfig(channels=8, residual_blocks=2))
    with torch.no_grad():  # a random network whose norms matter: give them spread
        for module in network.modules():
            if isinstance(module, InstanceNorm):
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.5, 0.5)
    model = fast.FastModel(network.eval(), {}, None)
    return fast.Stylizer(model, "cpu", "fp32")


def test_the_fast_network_in_tiles_with_the_pictures_statistics_matches_it_whole(stylizer):
    image = _picture(400, 520, seed=1)
    whole = stylizer.forward(image)
    with statistics_from(stylizer.network, image):
        tiled = tiling.run_tiled(stylizer.forward, image, 128, multiple=4)
    assert (tiled - whole).abs().max() < 2e-3
    # Each tile normalised by its own statistics (what tiling by hand does) drifts, visibly.
    own = tiling.run_tiled(stylizer.forward, image, 128, multiple=4)
    assert (own - whole).abs().mean() > 10 * (tiled - whole).abs().mean()


def test_statistics_from_restores_the_norms_afterwards(stylizer):
    image = _picture(64, 64, seed=2)
    before = stylizer.forward(image)
    with statistics_from(stylizer.network, _picture(64, 64, seed=9)):
        inside = stylizer.forward(image)
    assert not torch.allclose(inside, before, atol=1e-3)
    assert torch.equal(stylizer.forward(image), before)
    assert all(norm.statistics is None for norm in stylizer.network.modules()
               if isinstance(norm, InstanceNorm))  # fmt: skip


def test_the_stylizer_tiles_a_picture_larger_than_a_tile_and_stays_close(monkeypatch):
    stylizer = fast.Stylizer(fast.load_model("vangogh-bedroom"), "cpu", "fp32")
    photo = load_image(Path(impasto.__file__).parent / "assets" / "washington_monument.jpg")
    image = resize_long_side(photo.rgb, 900)
    whole = stylizer(image)
    monkeypatch.setattr(tiling, "TILE_PIXELS", 200_000)  # tiles and a thumbnail of 0.2 MP
    events = []
    tiled = stylizer(image, progress=lambda event: events.append(event) or True)
    assert tiled.shape == whole.shape
    assert len(events) >= 4 and events[-1].step == events[-1].total
    # The statistics come from a thumbnail of a third of the pixels: close, not equal; tiles
    # each normalised by their own statistics (tiling by hand) drift several times further.
    own = tiling.run_tiled(stylizer.forward, image, tiling.core_for(200_000, multiple=4),
                           multiple=4)  # fmt: skip
    error, drift = (tiled - whole).abs().mean(), (own - whole).abs().mean()
    assert error < 0.03 and drift > 3 * error, (error, drift)


# --- memory ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4GB", 4 * 2**30), ("512mb", 512 * 2**20), ("1.5G", int(1.5 * 2**30)), (2**27, 2**27)],
)
def test_parse_memory_reads_sizes(text, expected):
    assert parse_memory(text) == expected
    assert memory_budget(text) == expected


@pytest.mark.parametrize("text", ["lots", "4 parsecs", "-1GB", "10MB", ""])
def test_parse_memory_refuses_what_is_not_a_usable_size(text):
    with pytest.raises(InputError, match="max-memory"):
        parse_memory(text)


def test_a_budget_that_cannot_hold_the_picture_is_refused_naming_the_need():
    image = torch.zeros(1, 3, 4000, 3000)
    with pytest.raises(InputError, match=r"needs at least .* raise --max-memory"):
        tiling.tile_pixels(image, 100 * 2**20, 400.0)
    assert tiling.tile_pixels(torch.zeros(1, 3, 100, 100), 2**30, 400.0) is None
    room = tiling.tile_pixels(image, 2**30, 400.0)
    assert room is not None and room <= (2**30 - 12e6 * 32) / 400
    assert format_bytes(1.5 * 2**30) == "1.5 GB"


def test_cli_bad_max_memory_is_one_line_and_writes_nothing(capsys, tmp_path):
    photo = write_image(tmp_path / "photo.png", 1, size=(64, 48))
    out = tmp_path / "out.png"
    fast_run = ("stylize", str(photo), "--method", "fast", "--model", "vangogh-bedroom")
    code, _out, err = run_cli(capsys, *fast_run, "--max-memory", "lots", "-o", str(out))
    assert code == 2 and "--max-memory 'lots'" in error_line(err) and not out.exists()
    assert "Traceback" not in err


def test_cli_max_memory_runs_a_picture_in_tiles(capsys, tmp_path, monkeypatch):
    photo = write_image(tmp_path / "photo.png", 2, size=(640, 480))
    out = tmp_path / "out.png"
    monkeypatch.setattr(tiling, "TILE_PIXELS", 100_000)
    fast_run = ("stylize", str(photo), "--method", "fast", "--model", "vangogh-bedroom")
    code, _out, err = run_cli(capsys, *fast_run, "--max-memory", "1GB", "-o", str(out))
    assert code == 0, err
    from PIL import Image

    assert Image.open(out).size == (640, 480)


# --- the arbitrary-style methods in tiles ----------------------------------------------------


def _washington(long_side: int) -> torch.Tensor:
    photo = load_image(Path(impasto.__file__).parent / "assets" / "washington_monument.jpg")
    return resize_long_side(photo.rgb, long_side)


def _bedroom() -> torch.Tensor:
    return load_image(Path(impasto.__file__).parent / "assets" / "vangogh_bedroom_in_arles.jpg").rgb


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("adain", {}),
        ("wct", {}),
        ("photo", {"smoothing": "none"}),
        ("adain", {"mask": True}),
        ("wct", {"mask": True}),
    ],  # fmt: skip
)
def test_arbitrary_style_in_tiles_gives_the_whole_pictures_result(method, options, monkeypatch):
    from impasto import pipeline

    photo = _washington(512)
    styles = [_bedroom()]
    if options.pop("mask", False):  # the left half takes the painting, the right half the photo
        left = torch.zeros(1, 1, *photo.shape[-2:])
        left[..., : photo.shape[-1] // 2] = 1.0
        options["mask"] = [left]
    prepared = pipeline.prepare(method, pipeline.make_config(method, options, 1), styles)
    whole = prepared.checked_run(photo).image
    monkeypatch.setattr(tiling, "TILE_PIXELS", 100_000)
    events = []
    tiled = prepared.checked_run(photo, lambda event: events.append(event) or True).image
    assert max(event.total for event in events) >= 4  # it ran in tiles (2 x 2 here)
    # The picture's statistics are gathered over the tiles first: the same transform as whole.
    assert (tiled - whole).abs().max() < 2e-3


def test_gathered_statistics_are_the_whole_pictures():
    from impasto.regions import Moments, weighted_mean_covariance, weighted_mean_std

    features = torch.randn(1, 6, 20, 30, generator=torch.Generator().manual_seed(5))
    weight = torch.rand(1, 1, 20, 30, generator=torch.Generator().manual_seed(6))
    for region in (None, weight):
        moments = Moments()
        for rows in (slice(0, 7), slice(7, 20)):  # two pieces
            moments.add(features[..., rows, :], None if region is None else region[..., rows, :])
        mean, covariance = weighted_mean_covariance(features, region)
        assert torch.allclose(moments.mean_covariance()[0], mean, atol=1e-10)
        assert torch.allclose(moments.mean_covariance()[1], covariance, atol=1e-10)
        expected_mean, expected_std = weighted_mean_std(features.double(), region)
        assert torch.allclose(moments.mean_std()[0].double(), expected_mean, atol=1e-6)
        assert torch.allclose(moments.mean_std()[1].double(), expected_std, atol=1e-6)
