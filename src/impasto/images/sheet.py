"""Contact sheets: labelled thumbnails on a grid, drawn with Pillow, returned as an image tensor.

Layout, for ``count`` cells of ``cell`` pixels on ``columns`` columns (default: up to 4;
``grid_columns(count)`` gives the grid with the fewest empty cells, near 3:2):

- an optional title on top: lines of black text wrapped to the sheet's width (e.g. the settings
  every picture shares), ``LINE_HEIGHT`` pixels each, then ``PADDING`` pixels;
- optional column headers under it: one text per column, wrapped to the cell's width (at most
  ``LABEL_LINES`` lines, the first kept), bottom-aligned over the column, then ``PADDING``
  pixels (``draw_rows``: one row per entry, e.g. a comparison's pairs, a header per column);
- each cell is a ``cell`` x ``cell`` square holding the thumbnail, scaled (Lanczos) so its
  long side is ``cell``, centred across and bottom-aligned, so every label sits right under
  its picture;
- under it, ``LABEL_LINES`` lines of ``LINE_HEIGHT`` pixels of black label text in Pillow's
  default font, each label wrapped to the cell's width; when a cell's labels take more lines,
  the first ``LABEL_LINES - 2`` and the last two are kept (in a comparison the last ones are
  the time and the scores, the ones that matter when a long setting is cut);
- ``PADDING`` pixels around and between the cells, on a white background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError
from .encode import to_pil

__all__ = [
    "LABEL_LINES",
    "LINE_HEIGHT",
    "MAX_GRID_RATIO",
    "MIN_CELL",
    "PADDING",
    "draw_rows",
    "draw_sheet",
    "grid_columns",
    "sheet_size",
]

LINE_HEIGHT = 12
"""Height of one label line in pixels."""

LABEL_LINES = 4
"""Label lines under each thumbnail."""

PADDING = 4
"""Pixels around and between the cells, and between a thumbnail and its label."""

MIN_CELL = 16
"""Smallest cell in pixels: narrower cells leave no room for label text."""

_DEFAULT_COLUMNS = 4

MAX_GRID_RATIO = 5
"""A grid has at most this many times as many columns as rows: five pictures may sit in one
row, six take two."""

_TARGET_RATIO = 1.5  # columns per row: a cell is taller than wide (its labels), so 3:2 looks square


def grid_columns(count: int) -> int:
    """The number of columns for ``count`` cells: of the grids with no more rows than columns
    and at most ``MAX_GRID_RATIO`` columns per row, the one with the fewest empty cells, then
    the one whose columns per row come nearest 3:2 (e.g. 3 -> 3, 4 -> 2, 5 -> 5, 6 -> 3,
    7 -> 4, 8 -> 4, 9 -> 3, 12 -> 4)."""
    if count < 1:
        raise ValueError(f"a contact sheet needs at least one cell, got {count}")

    def cost(columns: int) -> tuple[int, float]:
        rows = math.ceil(count / columns)
        return rows * columns - count, abs(columns / rows - _TARGET_RATIO)

    candidates = [
        columns
        for columns in range(1, count + 1)
        if math.ceil(count / columns) <= columns <= MAX_GRID_RATIO * math.ceil(count / columns)
    ]
    return min(candidates, key=cost)


def sheet_size(
    count: int,
    cell: int = 256,
    columns: int | None = None,
    title: Sequence[str] = (),
    headers: Sequence[str] = (),
) -> tuple[int, int]:
    """(width, height) in pixels of a contact sheet with ``count`` cells, ``title`` lines
    (each wrapped to the sheet's width) and column ``headers`` (each wrapped to a cell)."""
    columns = _check_layout(count, cell, columns)
    grid_rows = math.ceil(count / columns)
    width = columns * (cell + PADDING) + PADDING
    top = _title_height(title, width) + _headers_height(headers, cell)
    return width, top + grid_rows * _block_height(cell) + PADDING


def draw_sheet(
    cells: Sequence[tuple[torch.Tensor, Sequence[str]]],
    cell: int = 256,
    columns: int | None = None,
    title: Sequence[str] = (),
    headers: Sequence[str] = (),
) -> torch.Tensor:
    """Draw a grid of labelled thumbnails; return it as float32 (1, 3, H, W) in [0, 1].

    cells: ``(image, lines)`` pairs in reading order; image: (1, 3, H, W) or (3, H, W) in
    [0, 1]; lines: the label strings under it (each wrapped to the cell's width).
    cell: the long side of each thumbnail in pixels (at least MIN_CELL).
    columns: cells per row; None means up to 4 (see ``grid_columns``). title: lines above the
    grid, each wrapped to the sheet's width. headers: a text over each column, from the
    left (no more than there are columns). The sheet is ``sheet_size(len(cells), cell,
    columns, title, headers)`` (width, height) pixels.
    """
    for _image, lines in [*cells, (None, title), (None, headers)]:
        if isinstance(lines, str):
            raise TypeError(f"a cell's lines must be a list of strings, got the string {lines!r}")
    columns = _check_layout(len(cells), cell, columns)
    if len(headers) > columns:
        raise InputError(f"{len(headers)} column headers for {columns} columns")
    width, height = sheet_size(len(cells), cell, columns, title, headers)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    heading = _wrap_all(draw, title, font, width - 2 * PADDING)
    _write_lines(draw, heading, (PADDING, PADDING), font)
    header_top = _title_height(title, width) + PADDING
    header_lines = [_header_lines(draw, text, font, cell) for text in headers]
    band = max((len(lines) for lines in header_lines), default=0)
    for column, lines in enumerate(header_lines):  # bottom-aligned: right over the pictures
        left = PADDING + column * (cell + PADDING)
        _write_lines(draw, lines, (left, header_top + (band - len(lines)) * LINE_HEIGHT), font)
    grid_top = _title_height(title, width) + _headers_height(headers, cell)
    block = _block_height(cell)
    for index, (image, texts) in enumerate(cells):
        left = PADDING + (index % columns) * (cell + PADDING)
        top = grid_top + PADDING + (index // columns) * block
        _paste_thumbnail(sheet, image, (left, top), cell)
        lines = _wrap_all(draw, texts, font, cell)
        if len(lines) > LABEL_LINES:  # keep the last two (time and scores); shorten the rest
            lines = lines[: LABEL_LINES - 2] + lines[-2:]
        _write_lines(draw, lines, (left, top + cell + PADDING), font)
    pixels = np.asarray(sheet, dtype=np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).contiguous()


def draw_rows(
    rows: Sequence[Sequence[tuple[torch.Tensor, Sequence[str]]]],
    cell: int = 256,
    headers: Sequence[str] = (),
    title: Sequence[str] = (),
) -> torch.Tensor:
    """One grid row per entry of ``rows`` (e.g. a comparison's pairs: content, style, then a
    result per setting), each a list of ``(image, lines)`` cells as ``draw_sheet`` takes them,
    all of the same length; ``headers``: a text over each column. (1, 3, H, W) in [0, 1], of
    ``sheet_size(len(rows) * len(rows[0]), cell, len(rows[0]), title, headers)`` pixels."""
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    lengths = sorted({len(row) for row in rows})
    if len(lengths) > 1:
        raise ValueError(f"every row needs as many cells as the others, got {lengths}")
    cells = [item for row in rows for item in row]
    return draw_sheet(cells, cell, columns=lengths[0], title=title, headers=headers)


def _paste_thumbnail(sheet: Image.Image, image: torch.Tensor, corner: tuple[int, int], cell: int):
    """``image`` scaled so its long side is ``cell``, in the square at ``corner`` (left, top):
    centred across and bottom-aligned, so the label sits right under every picture."""
    picture = to_pil(image)
    scale = cell / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    thumb = picture.resize(size, Image.Resampling.LANCZOS)
    left, top = corner
    sheet.paste(thumb, (left + (cell - size[0]) // 2, top + cell - size[1]))


def _write_lines(draw: ImageDraw.ImageDraw, lines: Sequence[str], corner: tuple[int, int], font):
    """Black text lines, ``LINE_HEIGHT`` apart, the first at ``corner`` (left, top)."""
    left, top = corner
    for number, line in enumerate(lines):
        draw.text((left, top + number * LINE_HEIGHT), line, fill="black", font=font)


def _check_layout(count: int, cell: int, columns: int | None) -> int:
    """The number of columns; InputError for a cell or column count out of range."""
    if count < 1:
        raise ValueError(f"a contact sheet needs at least one cell, got {count}")
    if isinstance(cell, bool) or not isinstance(cell, int) or cell < MIN_CELL:
        raise InputError(f"cell must be a whole number of at least {MIN_CELL} pixels, got {cell!r}")
    if columns is None:
        return min(count, _DEFAULT_COLUMNS)
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise InputError(f"columns must be a whole number of at least 1, got {columns!r}")
    return columns


def _block_height(cell: int) -> int:
    """Height of one grid row: the thumbnail square, its label lines and the padding."""
    return cell + LINE_HEIGHT * LABEL_LINES + 2 * PADDING


def _header_lines(draw: ImageDraw.ImageDraw, text: str, font, cell: int) -> list[str]:
    """A column header wrapped to the cell's width, its first ``LABEL_LINES`` lines."""
    return _wrap(draw, text, font, cell)[:LABEL_LINES]


def _headers_height(headers: Sequence[str], cell: int) -> int:
    """Pixels the column headers take over the grid: the most lines of one and a padding."""
    if isinstance(headers, str):
        raise TypeError(f"headers must be a list of strings, got the string {headers!r}")
    if not headers:
        return 0
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = ImageFont.load_default()
    lines = max(len(_header_lines(draw, text, font, cell)) for text in headers)
    return lines * LINE_HEIGHT + PADDING if lines else 0


def _title_height(title: Sequence[str], width: int) -> int:
    """Pixels the title takes above the grid: its wrapped lines and a padding; 0 without one."""
    if isinstance(title, str):
        raise TypeError(f"a title must be a list of strings, got the string {title!r}")
    if not title:
        return 0
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = _wrap_all(draw, title, ImageFont.load_default(), width - 2 * PADDING)
    return len(lines) * LINE_HEIGHT + PADDING


def _wrap_all(draw: ImageDraw.ImageDraw, texts: Sequence[str], font, width: int) -> list[str]:
    return [line for text in texts for line in _wrap(draw, text, font, width)]


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    """Break ``text`` into lines at most ``width`` pixels wide, character by character.

    A line holds at least one character; a space where a line breaks is dropped.
    """
    lines: list[str] = []
    current = ""
    for char in text:
        if draw.textlength(current + char, font=font) > width and current:
            lines.append(current)
            current = char.lstrip()
        else:
            current += char
    if current:
        lines.append(current)
    return lines
