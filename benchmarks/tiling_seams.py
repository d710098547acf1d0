#!/usr/bin/env python
"""The README's picture of tiling: the same corner of a large picture stylised by ``fast`` in
impasto's tiles (overlapping, blended, normalised with the whole picture's statistics) and
tiled by hand (the same cores, no overlap, each tile normalised by its own statistics), side
by side, with the mean jump across the tile edges of each.

The picture: ../shared/data/images/content/air_force_academy_chapel.jpg (see that folder's
SOURCES.md) enlarged 4x (Lanczos) to 4096x3052; model ``vangogh-bedroom``. Writes the sheet
to ``--out`` (default examples/tiling_seams.jpg) and prints the figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from impasto import tiling
from impasto.images import save_image
from impasto.images.encode import from_pil
from impasto.methods import fast

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "data" / "images" / "content" / "air_force_academy_chapel.jpg"
CROP = 512


def edge_jump(image: torch.Tensor, column: int, row: int) -> float:
    """Mean absolute step across the tile edges (between the two pixels either side of the
    column and of the row) minus the mean step one pixel further in: the part of the step that
    the edge adds."""

    def step(a, b):
        return float((a - b).abs().mean())

    across = step(image[..., column - 1], image[..., column]) + step(
        image[..., row - 1, :], image[..., row, :]
    )
    beside = step(image[..., column - 2], image[..., column - 1]) + step(
        image[..., row - 2, :], image[..., row - 1, :]
    )
    return (across - beside) / 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "tiling_seams.jpg")
    args = parser.parse_args(argv)
    with Image.open(PHOTO) as photo:
        big = photo.convert("RGB").resize((4096, 3052), Image.LANCZOS)
    picture, _alpha = from_pil(big)
    stylizer = fast.Stylizer(fast.load_model("vangogh-bedroom"), "cpu")
    ours = stylizer(picture)
    room = tiling.tile_pixels(picture, None, stylizer.bytes_per_pixel)
    core = tiling.core_for(room, multiple=4)
    by_hand = torch.zeros_like(picture)
    for top in range(0, picture.shape[-2], core):
        for left in range(0, picture.shape[-1], core):
            window = (..., slice(top, top + core), slice(left, left + core))
            by_hand[window] = stylizer.forward(picture[window])
    corner = (core, core)
    figures = {"impasto": edge_jump(ours, core, core), "by hand": edge_jump(by_hand, core, core)}
    print(f"tile core {core} px; mean added step across the tile edges: "
          + ", ".join(f"{name} {value:.4f}" for name, value in figures.items()))  # fmt: skip
    half = CROP // 2
    crops = [image[..., corner[0] - half : corner[0] + half, corner[1] - half : corner[1] + half]
             for image in (ours, by_hand)]  # fmt: skip
    sheet = torch.ones(1, 3, CROP + 28, 2 * CROP + 8)
    sheet[..., 28:, :CROP], sheet[..., 28:, CROP + 8 :] = crops
    save_image(sheet, args.out)
    with Image.open(args.out) as written:
        labelled = written.convert("RGB")
    draw = ImageDraw.Draw(labelled)
    draw.text((6, 8), "impasto: overlapping tiles, the picture's statistics", fill=(0, 0, 0))
    draw.text((CROP + 14, 8), "tiled by hand: each tile its own statistics", fill=(0, 0, 0))
    labelled.save(args.out, quality=92)
    return 0


if __name__ == "__main__":
    sys.exit(main())
