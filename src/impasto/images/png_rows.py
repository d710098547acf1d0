"""Is a PNG's pixel data as long as its header promises?

Pillow decodes a PNG whose compressed stream ends early (a 173-byte file declaring 8000 x 7999
pixels with four rows of data) without complaint, filling the missing rows with zeros. This
module counts the bytes the IDAT stream inflates to, without keeping them, and compares that
with what the IHDR's size, bit depth, colour type and interlacing require.
"""

from __future__ import annotations

import struct
import zlib
from typing import IO

__all__ = ["expected_bytes", "png_data_shortfall"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))  # fmt: skip
_INFLATE_STEP = 1 << 20  # inflate at most 1 MiB at a time: a bomb costs time, not memory


def expected_bytes(width: int, height: int, depth: int, colour: int, interlace: int) -> int:
    """Bytes of filtered scanlines (one filter byte per row) that a PNG of this IHDR holds:
    ``depth`` bits per sample, ``colour`` the colour type, ``interlace`` 1 for Adam7."""
    bits = _CHANNELS.get(colour, 4) * depth

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if interlace != 1:
        return rows(width, height)
    return sum(
        rows(
            (width - x0 + dx - 1) // dx if width > x0 else 0,
            (height - y0 + dy - 1) // dy if height > y0 else 0,
        )  # fmt: skip
        for x0, y0, dx, dy in _ADAM7
    )


def png_data_shortfall(handle: IO[bytes]) -> tuple[int, int] | None:
    """(bytes found, bytes needed) when the file's first image has less pixel data than its
    header promises; None when it is complete or the file is not a PNG this check understands
    (Pillow reports those errors itself). Reads the handle from the start; restores its position.
    """
    position = handle.tell()
    try:
        handle.seek(0)
        if handle.read(8) != _SIGNATURE:
            return None
        header = _read_chunk(handle)
        if header is None or header[0] != b"IHDR" or len(header[1]) < 13:
            return None
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header[1][:13])
        needed = expected_bytes(width, height, depth, colour, interlace)
        found = _inflated_idat_bytes(handle, needed)
        return None if found is None or found >= needed else (found, needed)
    finally:
        handle.seek(position)


def _read_chunk(handle: IO[bytes]) -> tuple[bytes, bytes] | None:
    head = handle.read(8)
    if len(head) < 8:
        return None
    length, kind = struct.unpack(">I4s", head)
    data = handle.read(length)
    handle.read(4)  # CRC: Pillow checks it
    return (kind, data) if len(data) == length else None


def _inflated_idat_bytes(handle: IO[bytes], needed: int) -> int | None:
    """Bytes the IDAT chunks inflate to, counting no further than ``needed``; None when the
    stream is not valid zlib (Pillow's own decoder reports that)."""
    inflater = zlib.decompressobj()
    total = 0
    seen_idat = False
    while total < needed:
        chunk = _read_chunk(handle)
        if chunk is None or chunk[0] == b"IEND":
            break
        if chunk[0] != b"IDAT":
            if seen_idat:
                break  # IDAT chunks are consecutive: the image data is over
            continue
        seen_idat = True
        pending = chunk[1]
        try:
            while pending and total < needed:
                total += len(inflater.decompress(pending, _INFLATE_STEP))
                pending = inflater.unconsumed_tail
        except zlib.error:
            return None
    return total
