"""Gatys at print sizes: a scale too large for --max-memory is optimised tile by tile
(impasto.tiled_refinement), each tile against the whole picture's style loss
(impasto.perceptual.TiledGrams), faded in over the finished cores so no seam shows."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from helpers import error_line, run_cli, write_image

from impasto import tiled_refinement
from impasto.backbones import load_backbone
from impasto.errors import InputError
from impasto.methods import gatys
from impasto.perceptual import TiledGrams, core_features
from impasto.tiled_refinement import MARGIN, largest_core, refine_in_tiles, windows


def test_cores_partition_the_picture_and_windows_reach_the_margin_further():
    tiles = windows(700, 1000, 300)
    owners = torch.zeros(700, 1000, dtype=torch.int64)
    for tile in tiles:
        owners[tile.core_top : tile.core_bottom, tile.core_left : tile.core_right] += 1
        assert tile.top == max(0, tile.core_top - MARGIN)
        assert tile.bottom == min(700, tile.core_bottom + MARGIN)
        assert tile.left == max(0, tile.core_left - MARGIN)
        assert tile.right == min(1000, tile.core_right + MARGIN)
    assert bool((owners == 1).all())  # every pixel in exactly one core
    # the fewest cores of at most 300 pixels, of nearly equal size: 3 rows, 4 columns of 250
    assert len(tiles) == 12
    assert {t.core_right - t.core_left for t in tiles} == {250}
    assert [(t.core_top, t.core_left) for t in tiles[:5]] == [(0, 0), (0, 250), (0, 500),
                                                              (0, 750), (234, 0)]  # fmt: skip


def test_largest_core_fits_the_window_in_the_budget():
    budget, per_pixel, fixed = 8 * 2**30, 4000, 512 * 2**20
    assert largest_core(1024, 768, budget, per_pixel, fixed) is None  # the whole picture fits
    assert largest_core(4096, 3072, None, per_pixel, fixed) is None  # no limit known
    core = largest_core(4096, 3072, budget, per_pixel, fixed)
    assert fixed + (core + 2 * MARGIN) ** 2 * per_pixel <= budget
    assert fixed + (core + 1 + 2 * MARGIN) ** 2 * per_pixel > budget
    with pytest.raises(InputError, match="raise --max-memory"):
        largest_core(4096, 3072, 600 * 2**20, per_pixel, fixed)


def test_refining_tiles_fades_each_window_in_without_a_step():
    """Each window returns a different constant (its number): inside a core, away from the
    windows that come after it, the picture is that window's; between cores it changes by at
    most one step of the fade per pixel, never all at once."""
    canvas = torch.zeros(1, 1, 700, 1000)
    tiles = windows(700, 1000, 300)
    seen = []

    def refine(pixels, index, _weight):
        seen.append(pixels.clone())
        return torch.full_like(pixels, float(index + 1))

    refine_in_tiles(canvas, refine, tiles)
    for index, tile in enumerate(tiles):
        inside = canvas[0, 0, tile.core_top : tile.core_bottom - MARGIN,
                        tile.core_left : tile.core_right - MARGIN]  # fmt: skip
        assert bool((inside == index + 1).all())
    largest_jump = max(float(canvas.diff(dim=d).abs().max()) for d in (-1, -2))
    # windows differ by whole numbers: a step where two meet would be 1 or more; faded over
    # MARGIN - DISCARD = 96 pixels (twice where fades cross) it is under a tenth
    assert largest_jump < 0.1
    # the second window starts from what the first wrote: 1 over the first's core, fading to
    # 0 (never written) at the first window's right edge
    first = tiles[0]
    overlap = seen[1][0, 0, : first.core_bottom, : first.right - tiles[1].left]
    assert bool((overlap[:, : first.core_right - tiles[1].left] == 1).all())
    assert bool((overlap[:, -tiled_refinement.DISCARD :] == 0).all())
    assert bool((overlap.diff(dim=-1) <= 0).all())


def test_a_tiles_gram_matrix_is_the_whole_pictures():
    """The features here are the pixels themselves and the fade is 1 over the core, 0 over the
    margins: a tile's Gram matrix, as its window changes, is exactly the Gram matrix of the
    whole picture with the window written in; once finished, the next tile starts from it."""
    picture = torch.rand(1, 5, 60, 90, generator=torch.Generator().manual_seed(0))
    tiles = windows(60, 90, 30, margin=8)
    grams = TiledGrams()

    def window(image, tile):
        return {"layer": image[..., tile.top : tile.bottom, tile.left : tile.right]}

    def whole_gram(image):
        flat = image.flatten(2)
        return flat @ flat.transpose(1, 2) / (60 * 90)

    for tile in tiles:
        grams.measure_core(window(picture, tile), tile)
    for index in (0, 4):
        tile = tiles[index]
        weight = tiled_refinement.fade(tile, 60, 90, discard=8)  # 0 over the margins
        grams.start(window(picture, tile), weight)
        gram = grams.gram(weight)
        torch.testing.assert_close(gram("layer", window(picture, tile)["layer"]),
                                   whole_gram(picture))  # fmt: skip
        changed = torch.rand(1, 5, tile.bottom - tile.top, tile.right - tile.left)
        written = picture.clone()
        written[..., tile.top : tile.bottom, tile.left : tile.right] = (
            weight * changed + (1 - weight) * written[..., tile.top : tile.bottom,
                                                      tile.left : tile.right])  # fmt: skip
        torch.testing.assert_close(gram("layer", changed), whole_gram(written))
        grams.finish({"layer": changed}, weight)
        picture = written
    assert core_features(window(picture, tiles[4])["layer"], tiles[4]).shape[-2:] == (30, 30)


def edge_jump(image: torch.Tensor, position: int, dim: int) -> float:
    """The mean step between pixels ``position - 1`` and ``position`` along ``dim`` minus the
    mean of the steps two pixels either side: what an edge there adds."""
    dim = dim % image.ndim
    steps = image.diff(dim=dim).abs().mean(dim=[d for d in range(image.ndim) if d != dim])
    return float(steps[position - 1] - (steps[position - 3] + steps[position + 1]) / 2)


def test_gatys_in_tiles_optimises_the_whole_picture_without_seams(monkeypatch):
    """The last scale forced into 2 x 3 tiles: each tile's style loss is the whole picture's, so
    the tiles lower the whole picture's loss from where the scale started, at least as far as the
    untiled run does in the same steps, and the core edges add no step beyond the picture's
    own."""
    tiny = load_backbone("tiny")
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 800), torch.linspace(0, 1, 1200), indexing="ij")
    content = torch.stack([xx, yy, 0.5 + 0.3 * torch.sin(12 * xx * yy)])[None]
    style = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(5))
    config = gatys.GatysConfig(size=1200, scales=2, steps=8, backbone="tiny", device="cpu")
    whole = gatys.stylize(content, [style], config, backbone=tiny)
    real_core = gatys.tile_core
    monkeypatch.setattr(gatys, "tile_core", lambda h, w, budget, config, per_pixel: 400
                        if w == 1200 else real_core(h, w, budget, config, per_pixel))  # fmt: skip
    tiled = gatys.stylize(content, [style], config, backbone=tiny)
    assert tiled.details["tiles"] == [1, 6]
    assert len(tiled.history) == 8 * 7

    layers = dict(tiny.defaults.style_layers)
    objective = gatys.Objective(tiny, tiny, content, [gatys.resize_long_side(style, 1200)],
                                [1.0], config, tiny.defaults.content_layers, layers,
                                torch.no_grad, channels_last=False)  # fmt: skip
    coarse = gatys.stylize(content, [style], dataclasses.replace(config, size=600, scales=1),
                           backbone=tiny)  # the first scale, alone  # fmt: skip
    start = torch.nn.functional.interpolate(coarse.image, size=(800, 1200), mode="bicubic")

    def loss(image):
        with torch.no_grad():
            return float(objective(image)[0])

    assert loss(tiled.image) < loss(whole.image) < loss(start.clamp(0, 1))
    for tile in windows(800, 1200, 400):
        for position, dim in ((tile.core_top, -2), (tile.core_left, -1)):
            if position > 0:
                assert edge_jump(tiled.image, position, dim) < 0.01, (position, dim)


def test_too_little_memory_for_one_tile_is_one_line(tmp_path, capsys):
    photo = write_image(tmp_path / "photo.png", 1, (128, 96))
    style = write_image(tmp_path / "style.png", 2, (64, 64))
    out = tmp_path / "out.png"
    code, _out, err = run_cli(capsys, "stylize", photo, style, "-o", out, "--size", "4096",
                              "--max-memory", "600MB", "--steps", "1",
                              "--backbone", "tiny")  # fmt: skip
    assert code == 2
    assert "raise --max-memory" in error_line(err)
    assert not out.exists()


def test_tile_core_counts_the_photorealistic_regulariser():
    plain = gatys.tile_core(3072, 4096, 8 * 2**30, gatys.GatysConfig(), 4000)
    photoreal = gatys.tile_core(3072, 4096, 8 * 2**30, gatys.GatysConfig(photorealistic=True),
                                4000)  # fmt: skip
    assert photoreal < plain
    assert math.isclose((plain + 2 * MARGIN) ** 2 * 4000,
                        8 * 2**30 - gatys.FIXED_BYTES - 3072 * 4096 *
                        gatys.PICTURE_BYTES_PER_PIXEL, rel_tol=0.01)  # fmt: skip


def test_the_backbones_own_memory_figure_sizes_the_tiles(monkeypatch):
    tiny = load_backbone("tiny")
    tiny.optimised_bytes_per_pixel = 1234
    seen = []
    real_core = gatys.tile_core

    def recording(height, width, budget, config, per_pixel):
        seen.append(per_pixel)
        return real_core(height, width, budget, config, per_pixel)

    monkeypatch.setattr(gatys, "tile_core", recording)
    config = gatys.GatysConfig(size=48, scales=2, steps=2, backbone="tiny", device="cpu")
    gatys.stylize(torch.rand(1, 3, 40, 48), [torch.rand(1, 3, 32, 32)], config, backbone=tiny)
    assert seen == [1234, 1234]
    assert load_backbone("efficientnet-lite0").optimised_bytes_per_pixel == 2400  # measured
