"""A small line chart drawn with Pillow, returned as an image tensor: ``impasto tune --plot``
draws its curve with it (the style share, the structure share and the score of each value
tried, the chosen one marked)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 520, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 130, 30, 40  # margins around the plotting area
COLOURS = ((200, 60, 40), (40, 100, 200), (20, 20, 20), (120, 160, 60))


def draw_curve(
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    chosen: int | None = None,
    title: str = "",
    x_title: str = "",
) -> torch.Tensor:
    """A chart of ``series`` (name -> one value in [0, 1] per label) over the ``labels`` of the
    x axis, equally spaced; ``chosen``: the index of a label to mark with a vertical line.
    Returns (1, 3, HEIGHT, WIDTH) in [0, 1]."""
    picture = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    draw.rectangle((LEFT, TOP, right, bottom), outline=(160, 160, 160))
    count = max(1, len(labels) - 1)

    def x(index: int) -> float:
        return LEFT + (right - LEFT) * index / count

    def y(value: float) -> float:
        return bottom - (bottom - TOP) * min(1.0, max(0.0, value))

    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.line((LEFT, y(tick), right, y(tick)), fill=(230, 230, 230))
        draw.text((6, y(tick) - 6), f"{tick:.0%}", fill=(80, 80, 80), font=font)
    for index, label in enumerate(labels):
        draw.text((x(index) - 3 * len(label), bottom + 6), label, fill=(40, 40, 40), font=font)
    if chosen is not None:
        draw.line((x(chosen), TOP, x(chosen), bottom), fill=(150, 150, 150), width=2)
        draw.text((x(chosen) + 4, TOP + 4), "chosen", fill=(90, 90, 90), font=font)
    for number, (name, values) in enumerate(series.items()):
        colour = COLOURS[number % len(COLOURS)]
        points = [(x(i), y(v)) for i, v in enumerate(values)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
        draw.line((right + 12, TOP + 12 + 18 * number, right + 32, TOP + 12 + 18 * number),
                  fill=colour, width=2)  # fmt: skip
        draw.text((right + 38, TOP + 6 + 18 * number), name, fill=colour, font=font)
    draw.text((LEFT, 10), title, fill=(0, 0, 0), font=font)
    draw.text((LEFT, HEIGHT - 16), x_title, fill=(60, 60, 60), font=font)
    pixels = np.asarray(picture, dtype=np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous()
