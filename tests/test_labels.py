"""Label masks for region-to-region transfer (impasto.labels): quantising noisy, anti-aliased
masks, pairing regions between content and style, nearest-neighbour resizing, input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.errors import InputError
from impasto.labels import (
    LABEL_COLOURS,
    label_map,
    matched_regions,
    pack,
    region_masks,
    resize_labels,
)

PHOTOREAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "photoreal"
BLUE, GREEN = (0, 0, 255), (0, 255, 0)

# One torch thread: these small tensor ops run ten times slower with threads on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")


def as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8-valued array -> (1, 3, H, W) float in [0, 1], as load_image gives."""
    return torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)[None]


def two_colour_mask(top, bottom, seed=0, height=100, width=60, edge_rows=(49, 50)):
    """Flat ``top`` above, flat ``bottom`` below, ``edge_rows`` blended 50/50 (anti-aliasing),
    every channel then shifted by uniform integer noise in -6..6 and clipped to 0..255."""
    rows = np.empty((height, width, 3), dtype=np.int64)
    rows[: edge_rows[0]] = top
    rows[edge_rows[0] :] = bottom
    rows[list(edge_rows)] = np.round((np.array(top) + np.array(bottom)) / 2)
    noise = np.random.default_rng(seed).integers(-6, 7, size=rows.shape)
    return np.clip(rows + noise, 0, 255)


def test_noisy_antialiased_blue_and_green_give_exactly_two_labels():
    pixels = two_colour_mask(BLUE, GREEN)
    edge = pixels[[49, 50]]
    # A 50/50 blue-green pixel is equidistant from both but for noise: |p - blue|^2 -
    # |p - green|^2 = 510 * (g - b), so it is green when g > b. Break exact ties away.
    ties = edge[..., 1] == edge[..., 2]
    edge[..., 1][ties] += 1
    pixels[[49, 50]] = edge
    expected = np.where(np.arange(100)[:, None] < 49, pack(BLUE), pack(GREEN)).repeat(60, 1)
    expected[[49, 50]] = np.where(edge[..., 1] > edge[..., 2], pack(GREEN), pack(BLUE))

    labels = label_map(as_tensor(pixels)).numpy()
    assert set(np.unique(labels)) == {pack(BLUE), pack(GREEN)}
    assert (labels == expected).all()
    blue_edge = int((edge[..., 1] < edge[..., 2]).sum())
    assert 0 < blue_edge < 120  # the noise really splits the edge rows
    assert (labels == pack(BLUE)).sum() == 49 * 60 + blue_edge
    # Why 'auto' is the default: all nine DPST colours as the palette turn the blend grey,
    # (0, 128, 128) being 128 from grey and about 180 from blue and from green.
    fixed = label_map(as_tensor(pixels), palette="dpst").numpy()
    assert (fixed[[49, 50]] == pack(LABEL_COLOURS["grey"])).all()
    assert (fixed[:49] == pack(BLUE)).all() and (fixed[51:] == pack(GREEN)).all()


def test_a_mask_in_other_flat_colours_gets_its_own_colours():
    orange, teal = (200, 90, 40), (60, 140, 200)
    pixels = two_colour_mask(orange, teal, seed=1)
    labels = label_map(as_tensor(pixels)).numpy()
    found = [((code >> 16) & 255, (code >> 8) & 255, code & 255) for code in np.unique(labels)]
    assert len(found) == 2
    for colour, truth in zip(sorted(found), sorted([orange, teal]), strict=True):
        assert max(abs(a - b) for a, b in zip(colour, truth, strict=True)) <= 3
    top, bottom = labels[:49], labels[51:]
    assert len(np.unique(top)) == 1 and len(np.unique(bottom)) == 1
    assert top[0, 0] != bottom[0, 0]


def test_unknown_palette_name_is_refused_with_the_choices():
    with pytest.raises(InputError, match="auto, dpst"):
        label_map(torch.zeros(1, 3, 4, 4), palette="rainbow")


def dpst_share(pixels: np.ndarray, colour) -> float:
    """DPST's own rule (ExtractMask): every channel within 0.1 of the range of the colour."""
    return float((np.abs(pixels - np.array(colour)) <= 25).all(-1).mean())


def test_the_dpst_masks_quantise_to_their_dpst_colours_and_pair_up():
    pairs = sorted(PHOTOREAL.glob("in*_seg.png"))
    if not pairs:
        pytest.skip(
            f"the 15 research photo pairs are not beside this checkout ({PHOTOREAL}); "
            "they are never shipped (non-commercial licence)"
        )
    dpst_codes = {pack(colour) for colour in LABEL_COLOURS.values()}
    for content_path in pairs:
        style_path = content_path.with_name(content_path.name.replace("in", "tar", 1))
        label_maps = {}
        for path in (content_path, style_path):
            pixels = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
            labels = label_maps[path] = label_map(path)
            codes, counts = torch.unique(labels, return_counts=True)
            share = {int(c): int(n) / labels.numel() for c, n in zip(codes, counts, strict=True)}
            assert len(share) <= 9 and set(share) <= dpst_codes, path.name
            for colour in LABEL_COLOURS.values():
                expected = dpst_share(pixels, colour)
                if expected > 0.01:
                    assert pack(colour) in share, (path.name, colour)
                # what DPST drops (anti-aliased edges) goes to a neighbour: about 1% at most
                assert abs(share.get(pack(colour), 0.0) - expected) < 0.02, (path.name, colour)

        content_size = Image.open(content_path).size[::-1]
        style_size = Image.open(style_path).size[::-1]
        regions = region_masks(content_path, style_path, content_size, style_size)
        total = sum(region.content for region in regions)
        assert torch.equal(total, torch.ones(1, 1, *content_size)), content_path.name
        content_labels = label_maps[content_path]
        covered = {colour for region in regions for colour in region.colours}
        for code, count in zip(*torch.unique(content_labels, return_counts=True), strict=True):
            if count / content_labels.numel() > 0.01:
                colour = ((int(code) >> 16) & 255, (int(code) >> 8) & 255, int(code) & 255)
                assert colour in covered, (content_path.name, colour)
        for region in regions:
            assert region.style.shape == (1, 1, *style_size)
            assert region.matched or bool(region.style.eq(1).all())


A, B, C = pack((255, 0, 0)), pack((0, 0, 255)), pack((10, 200, 30))


def test_labels_missing_in_the_style_take_the_whole_style():
    content = torch.full((6, 8), A)
    content[:, 4:] = B
    content[4:, 6:] = C  # 4 pixels of 48
    style = torch.full((4, 5), B)
    style[:, :2] = A

    regions = matched_regions(content, style)
    assert [(r.name, r.matched) for r in regions] == [
        ("red", True),
        ("blue", True),
        ("unmatched", False),
    ]
    red, blue, rest = regions
    content_red = torch.zeros(6, 8)
    content_red[:, :4] = 1
    style_red = torch.zeros(4, 5)
    style_red[:, :2] = 1
    content_rest = torch.zeros(6, 8)
    content_rest[4:, 6:] = 1
    assert torch.equal(red.content[0, 0], content_red) and torch.equal(red.style[0, 0], style_red)
    assert torch.equal(blue.content[0, 0], 1 - content_red - content_rest)
    assert torch.equal(blue.style[0, 0], 1 - style_red)
    assert torch.equal(rest.content[0, 0], content_rest)
    assert rest.colours == ((10, 200, 30),)
    assert torch.equal(rest.style, torch.ones(1, 1, 4, 5))
    assert torch.equal(red.content + blue.content + rest.content, torch.ones(1, 1, 6, 8))


def test_a_label_too_small_in_the_style_falls_back_to_the_whole_style():
    content = torch.full((10, 10), A)
    content[5:] = B
    style = torch.full((20, 20), A)
    style[0, 0] = B  # 1 pixel of 400: below the 0.5% minimum
    regions = matched_regions(content, style)
    assert [(r.name, r.matched) for r in regions] == [("red", True), ("unmatched", False)]
    assert float(regions[1].content.sum()) == 50


def test_nearest_resize_keeps_label_values_exact():
    labels = torch.tensor([A, B, C])[torch.randint(0, 3, (8, 10), generator=torch.manual_seed(0))]
    doubled = resize_labels(labels, (16, 20))
    assert torch.equal(doubled, labels.repeat_interleave(2, 0).repeat_interleave(2, 1))
    for size in [(5, 7), (13, 17), (3, 31)]:
        resized = resize_labels(labels, size)
        assert resized.shape == size
        assert set(resized.unique().tolist()) <= {A, B, C}
        # Pillow's NEAREST samples at pixel centres too: an independent reference
        codes = labels.numpy().astype(np.int32)
        reference = np.asarray(Image.fromarray(codes, mode="I").resize(size[::-1], Image.NEAREST))
        assert (resized.numpy() == reference).all()


def test_region_masks_resize_a_small_mask_to_its_photo_without_new_labels():
    pixels = two_colour_mask(BLUE, GREEN, height=50, width=30, edge_rows=(24, 25))
    mask = as_tensor(pixels)
    regions = region_masks(mask, mask, (100, 60), (75, 45))
    assert sorted(r.name for r in regions) == ["blue", "green"]  # no 'unmatched' region
    for region in regions:
        assert set(region.content.unique().tolist()) <= {0.0, 1.0}
        assert region.content.shape == (1, 1, 100, 60) and region.style.shape == (1, 1, 75, 45)
    assert torch.equal(sum(r.content for r in regions), torch.ones(1, 1, 100, 60))


def test_a_mask_of_another_aspect_ratio_is_refused():
    mask = as_tensor(np.zeros((20, 10, 3)))
    with pytest.raises(InputError, match="--content-mask is 10x20 .* aspect ratios"):
        region_masks(mask, mask, (30, 10), (20, 10))
    with pytest.raises(InputError, match="--style-mask"):
        region_masks(mask, mask, (40, 20), (20, 15))
    region_masks(mask, mask, (40, 20), (201, 100))  # within 2%: accepted


def test_masks_sharing_no_label_are_refused():
    red = as_tensor(np.tile(np.array([255, 0, 0]), (8, 8, 1)))
    blue = as_tensor(np.tile(np.array([0, 0, 255]), (8, 8, 1)))
    with pytest.raises(InputError, match=r"\(red\).*\(blue\) share no label"):
        region_masks(red, blue, (8, 8), (8, 8))


def test_an_unreadable_mask_file_is_an_input_error(tmp_path):
    bad = tmp_path / "mask.png"
    bad.write_text("not an image")
    with pytest.raises(InputError):
        region_masks(bad, bad, (8, 8), (8, 8))
