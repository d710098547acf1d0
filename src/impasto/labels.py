"""Label masks for region-to-region photorealistic style transfer (Luan et al. 2017, Deep Photo
Style Transfer, section 3.2): one label image per photo, the same colour marking matching regions
(sky to sky). A label map is a (H, W) int64 tensor of label colours packed as 0xRRGGBB, so maps
quantised with different palettes agree on what a value means.

Departures from DPST, and why:

- DPST keeps a pixel only if every channel lies within 0.1 of one of its nine colours and drops
  the rest (anti-aliased edges, other colours). Here the labels are found in the masks (any few
  flat colours work; one near a DPST colour becomes it) and every pixel goes to the nearest.
- DPST gives content pixels whose label the style lacks no style at all. Here they form one more
  region whose style is the whole style image: users expect the whole picture restyled.
- DPST scales masks bilinearly; here labels are resized nearest-neighbour, never interpolated.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import InputError
from .images import load_image

Colour = tuple[int, int, int]
Mask = torch.Tensor | str | os.PathLike[str]  # (1, 3, H, W) in [0, 1], or an image file

# The nine colours of `ExtractMask` in neuralstyle_seg.lua (luanfujun/deep-photo-styletransfer,
# commit 16744e3): it keeps a pixel when each channel is < 0.1 or > 0.9 of the range (grey: within
# 0.4..0.6), so the colours are the RGB cube's corners and mid-grey (0.5 -> 128). The 30 masks in
# shared/data/photoreal use exactly these values on their flat areas.
LABEL_COLOURS: dict[str, Colour] = {
    "blue": (0, 0, 255),
    "green": (0, 255, 0),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "yellow": (255, 255, 0),
    "grey": (128, 128, 128),
    "lightblue": (0, 255, 255),
    "purple": (255, 0, 255),
}
PALETTES = ("auto", "dpst")  # or an explicit sequence of (r, g, b) colours, 0-255
DPST_TOLERANCE = 25  # per channel, 0-255: ExtractMask's window of 0.1 around each colour
MIN_SHARE = 0.005  # a label must cover this share of a mask's pixels to count
FLAT_STEP = 24  # largest step to a neighbour (0-255) inside a flat area: noise, not an edge
BIN = 32  # colour histogram bins; offset so that 0, 128 and 255 sit at bins' centres
MERGE_DISTANCE = 40.0  # found colours closer than this (RGB, 0-255) are one label
MAX_LABELS = 32
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class Region:
    """One region: content (1, 1, Hc, Wc) and style (1, 1, Hs, Ws) float masks of 0s and 1s.
    name: a DPST colour name, '#rrggbb', or 'unmatched' for the content labels the style lacks
    (their style mask is the whole style image). colours: its label colours in the content."""

    name: str
    colours: tuple[Colour, ...]
    content: torch.Tensor
    style: torch.Tensor
    matched: bool


def pack(colour: Sequence[int]) -> int:
    """(r, g, b) 0-255 -> 0xRRGGBB, the value a label map holds for that colour."""
    return int(colour[0]) << 16 | int(colour[1]) << 8 | int(colour[2])


def unpack(code: int) -> Colour:
    return (code >> 16 & 255, code >> 8 & 255, code & 255)


def label_name(code: int) -> str:
    """The DPST name of a packed label colour, else '#rrggbb'."""
    colour = unpack(code)
    names = [name for name, value in LABEL_COLOURS.items() if value == colour]
    return names[0] if names else "#{:02x}{:02x}{:02x}".format(*colour)


def as_rgb(image: Mask) -> torch.Tensor:
    """A mask as (1, 3, H, W) float in [0, 1]: a path is loaded (InputError when unreadable)."""
    if isinstance(image, str | os.PathLike):
        return load_image(image).rgb
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[:2] != (1, 3):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"a label mask must be an RGB image (1, 3, H, W), not {shape}")
    return image


def to_pixels(rgb: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) int32 in 0..255 (int32: half the time of int64)."""
    return (rgb[0].float().clamp(0, 1) * 255).round().int().permute(1, 2, 0).contiguous()


def flat_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: pixels within FLAT_STEP of their four neighbours in every channel. Drops
    anti-aliased edges (a 1-2 px blend steps far from a side), keeps noisy flat areas."""
    padded = F.pad(pixels.permute(2, 0, 1)[None].float(), (1, 1, 1, 1), mode="replicate")[0]
    sides = (padded[:, :-2, 1:-1], padded[:, 2:, 1:-1], padded[:, 1:-1, :-2], padded[:, 1:-1, 2:])
    step = torch.stack([(side - padded[:, 1:-1, 1:-1]).abs() for side in sides]).amax(dim=(0, 1))
    return step <= FLAT_STEP


def snap_to_dpst(colour: Colour) -> Colour:
    for value in LABEL_COLOURS.values():
        if max(abs(a - b) for a, b in zip(colour, value, strict=True)) <= DPST_TOLERANCE:
            return value
    return colour


def dominant_colours(*images: Mask, min_share: float = MIN_SHARE) -> list[Colour]:
    """The label colours of one or more masks, most common first: colour bins whose flat pixels
    cover ``min_share`` of some mask, each as its pixels' per-channel median, snapped to a DPST
    colour within DPST_TOLERANCE, near-duplicates merged."""
    found: list[tuple[float, Colour]] = []
    for image in images:
        pixels = to_pixels(as_rgb(image))
        flat = pixels[flat_pixels(pixels)]
        keys = ((flat + BIN // 2) // BIN * flat.new_tensor([256, 16, 1])).sum(dim=1)
        _, inverse, counts = torch.unique(keys, return_inverse=True, return_counts=True)
        total = pixels.shape[0] * pixels.shape[1]
        for index in (counts >= min_share * total).nonzero().flatten().tolist():
            median = flat[inverse == index].median(dim=0).values
            found.append((int(counts[index]) / total, tuple(int(v) for v in median)))
    chosen: list[Colour] = []
    for _, colour in sorted(found, key=lambda item: -item[0]):
        colour = snap_to_dpst(colour)
        if all(math.dist(colour, other) > MERGE_DISTANCE for other in chosen):
            chosen.append(colour)
    return chosen


def label_map(image: Mask, palette: str | Sequence[Colour] = "auto") -> torch.Tensor:
    """(H, W) int64 label map of a label image: each pixel's nearest palette colour (Euclidean in
    RGB 0-255, ties to the earlier colour) packed as 0xRRGGBB.

    palette: 'auto' (default): the mask's own colours (:func:`dominant_colours`); 'dpst': the nine
    LABEL_COLOURS; or a sequence of (r, g, b). 'auto' serves both kinds of mask: DPST colours come
    out exact, while the fixed nine fold a user's orange onto red and turn a blue/green edge grey
    (mid-grey is nearer the 50/50 blend than blue or green are)."""
    rgb = as_rgb(image)
    colours = palette_colours(palette, rgb)
    pixels = to_pixels(rgb)
    best = torch.full(pixels.shape[:2], 4 * 255**2, dtype=torch.int32)
    labels = torch.zeros(pixels.shape[:2], dtype=torch.long)
    for colour in colours:  # exact integer distances; strict < keeps ties with the earlier colour
        distance = (pixels - pixels.new_tensor(colour)).square().sum(dim=2, dtype=torch.int32)
        nearer = distance < best
        best = torch.where(nearer, distance, best)
        labels[nearer] = pack(colour)
    return labels


def palette_colours(palette: str | Sequence[Colour], rgb: torch.Tensor) -> list[Colour]:
    if isinstance(palette, str):
        if palette not in PALETTES:
            raise InputError(
                f"palette {palette!r}: choose one of {', '.join(PALETTES)} or give RGB colours"
            )
        colours = list(LABEL_COLOURS.values()) if palette == "dpst" else dominant_colours(rgb)
    else:
        colours = [tuple(int(v) for v in colour) for colour in palette]
        if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in colours):
            raise InputError(f"palette {palette!r}: give (r, g, b) colours with values 0-255")
    if not 0 < len(colours) <= MAX_LABELS:
        raise InputError(
            f"a label mask has {len(colours)} flat colours: paint 1 to {MAX_LABELS} regions in "
            "flat colours (is it a photo?)"
        )
    return colours


def resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (H, W) label map resized to ``size`` = (h, w) by nearest neighbour (pixel centres)."""
    height, width = labels.shape
    rows = ((torch.arange(size[0]) + 0.5) * height / size[0]).long().clamp(max=height - 1)
    cols = ((torch.arange(size[1]) + 0.5) * width / size[1]).long().clamp(max=width - 1)
    return labels[rows][:, cols]


def shares(labels: torch.Tensor) -> dict[int, float]:
    codes, counts = torch.unique(labels, return_counts=True)
    return {int(c): int(n) / labels.numel() for c, n in zip(codes, counts, strict=True)}


def matched_regions(
    content_labels: torch.Tensor, style_labels: torch.Tensor, min_share: float = MIN_SHARE
) -> list[Region]:
    """The regions of two (H, W) label maps, largest first: one per label covering at least
    ``min_share`` of both maps, then one 'unmatched' region for the remaining content pixels with
    the whole style image as its style. The content masks partition the content (sum to 1).
    InputError when no label is shared."""
    content_share, style_share = shares(content_labels), shares(style_labels)
    by_size = sorted(content_share, key=content_share.__getitem__, reverse=True)
    matched = [c for c in by_size if min(content_share[c], style_share.get(c, 0)) >= min_share]
    if not matched:
        raise InputError(
            f"--content-mask ({', '.join(map(label_name, content_share))}) and --style-mask "
            f"({', '.join(map(label_name, style_share))}) share no label colour covering "
            f"{min_share:.1%} of each: paint matching regions in the same colour"
        )
    regions = []
    for code in matched:
        content, style = (content_labels == code).float(), (style_labels == code).float()
        regions.append(
            Region(label_name(code), (unpack(code),), content[None, None], style[None, None], True)
        )
    rest = ~torch.isin(content_labels, torch.tensor(matched))
    if rest.any():
        colours = tuple(unpack(int(code)) for code in torch.unique(content_labels[rest]))
        whole = torch.ones(1, 1, *style_labels.shape)
        regions.append(Region("unmatched", colours, rest.float()[None, None], whole, False))
    return regions


def check_label_options(content_mask, style_mask, style_count: int | None) -> None:
    """InputError unless --content-mask and --style-mask come together, with one style image."""
    if (content_mask is None) != (style_mask is None):
        raise InputError("--content-mask and --style-mask go together: give both")
    if content_mask is not None and style_count not in (None, 1):
        raise InputError("--content-mask/--style-mask pair one style image's regions: give one "
                         "style image")  # fmt: skip


def check_aspect(flag: str, rgb: torch.Tensor, size: tuple[int, int]) -> None:
    """InputError when the mask ``rgb`` (1, 3, h, w) does not have the aspect ratio of its
    photo, of ``size`` = (height, width), within ASPECT_TOLERANCE."""
    height, width = size
    ratio = (rgb.shape[-1] / rgb.shape[-2]) / (width / height)
    if abs(ratio - 1) > ASPECT_TOLERANCE:
        raise InputError(
            f"{flag} is {rgb.shape[-1]}x{rgb.shape[-2]} but its photo is {width}x{height}: the "
            f"aspect ratios differ by {abs(ratio - 1):.0%}; it must outline the same picture"
        )


def region_masks(
    content_mask: Mask,
    style_mask: Mask,
    content_size: tuple[int, int],
    style_size: tuple[int, int],
    palette: str | Sequence[Colour] = "auto",
    min_share: float = MIN_SHARE,
) -> list[Region]:
    """Load two label masks (paths or (1, 3, H, W) tensors), quantise both with one palette
    ('auto': the colours found in either mask), resize each label map nearest-neighbour to its
    photo's ``(height, width)`` and pair their regions (:func:`matched_regions`).

    InputError for an unreadable mask, a mask whose aspect ratio differs from its photo's by
    more than 2%, or masks sharing no label."""
    content_rgb, style_rgb = as_rgb(content_mask), as_rgb(style_mask)
    check_aspect("--content-mask", content_rgb, content_size)
    check_aspect("--style-mask", style_rgb, style_size)
    if palette == "auto":
        palette = dominant_colours(content_rgb, style_rgb, min_share=min_share)
    content_labels = resize_labels(label_map(content_rgb, palette), content_size)
    style_labels = resize_labels(label_map(style_rgb, palette), style_size)
    return matched_regions(content_labels, style_labels, min_share)
