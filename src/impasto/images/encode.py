"""Image files out: atomic writes of 8-bit PNG/JPEG/WebP and 16-bit TIFF, and 8-bit previews.

An image comes in as float32 sRGB (1, 3, H, W) or (3, H, W) in [0, 1], with an optional alpha
matte (1, 1, H, W), (1, H, W) or (H, W) in [0, 1].
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..files import atomic_write, resolved

__all__ = ["OUTPUT_FORMATS", "check_output_path", "save_image", "to_pil"]

OUTPUT_FORMATS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
"""File extensions save_image can write (matched case-insensitively)."""


def _output_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        problem = f"unknown extension '{path.suffix}'" if path.suffix else "no file extension"
        raise InputError(
            f"cannot write '{path}': {problem}; use one of {', '.join(OUTPUT_FORMATS)}"
        )
    return suffix


def _check_parent(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"cannot write '{path}': folder '{parent}' does not exist")
    if path.is_dir():
        raise InputError(f"cannot write '{path}': it is a directory")


def check_output_path(
    path: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = ()
) -> Path:
    """Validate an output path before long work starts; return it as a Path.

    Checks the extension (one of OUTPUT_FORMATS), that the folder exists and is writable,
    that the path is not a directory, and that it is not one of ``inputs`` (any spelling).
    """
    path = Path(path).expanduser()
    _output_format(path)
    _check_parent(path)
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"cannot write '{path}': folder '{path.parent}' is not writable")
    target = resolved(path)
    for item in inputs:
        source = Path(item).expanduser()
        same = resolved(source) == target
        if not same and path.exists() and source.exists():
            try:
                same = os.path.samefile(path, source)  # hard links, case-insensitive disks
            except OSError:
                same = False
        if same:
            raise InputError(f"output '{path}' would overwrite an input image")
    return path


def save_image(
    rgb: torch.Tensor,
    path: str | os.PathLike[str],
    alpha: torch.Tensor | None = None,
    quality: int = 95,
) -> Path:
    """Write rgb (1, 3, H, W) or (3, H, W) in [0, 1] to ``path``; return the path.

    The format follows the extension (OUTPUT_FORMATS). PNG and WebP keep ``alpha``
    ((1, 1, H, W), (1, H, W) or (H, W)); JPEG composites over white; TIFF is written as
    16 bits per channel (with 16-bit unassociated alpha). ``quality`` (1-100) is used by
    JPEG and WebP. Values are clamped to [0, 1] (NaN -> 0) and rounded. The file is written
    to a temporary file in the same folder and renamed into place, so no partial file remains.
    """
    path = Path(path).expanduser()
    fmt = _output_format(path)
    _check_parent(path)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InputError(f"quality must be a whole number from 1 to 100, got {quality!r}")
    colour, matte = _colour_and_matte(rgb, alpha)

    if fmt in (".tif", ".tiff"):
        pixels = colour if matte is None else np.concatenate([colour, matte], axis=2)
        data = _quantise(pixels, 65535, np.dtype("<u2"))

        def write(handle: IO[bytes]) -> None:
            _write_tiff16(handle, data)

    else:
        if fmt in (".jpg", ".jpeg") and matte is not None:
            colour = colour * matte + (1.0 - matte)  # JPEG has no alpha: composite over white
            matte = None
        pixels = colour if matte is None else np.concatenate([colour, matte], axis=2)
        image = Image.fromarray(_quantise(pixels, 255, np.dtype(np.uint8)))
        options: dict[str, object] = {}
        if fmt == ".png":
            pil_format = "PNG"
        elif fmt == ".webp":
            pil_format, options = "WEBP", {"quality": quality}
        else:
            pil_format, options = "JPEG", {"quality": quality}

        def write(handle: IO[bytes]) -> None:
            image.save(handle, format=pil_format, **options)

    atomic_write(path, write)
    return path


def _colour_and_matte(
    rgb: torch.Tensor, alpha: torch.Tensor | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) colour and (H, W, 1) alpha arrays; ValueError if their sizes differ."""
    colour = _as_hwc(rgb, channels=3, what="rgb")
    if alpha is None:
        return colour, None
    matte = _as_hwc(alpha, channels=1, what="alpha")
    if matte.shape[:2] != colour.shape[:2]:
        raise ValueError(
            f"alpha size {tuple(matte.shape[:2])} does not match rgb size {tuple(colour.shape[:2])}"
        )
    return colour, matte


def _as_hwc(tensor: torch.Tensor, channels: int, what: str) -> np.ndarray:
    """(1, C, H, W), (C, H, W) or, for one channel, (H, W) tensor -> (H, W, C) float32 array."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(tensor).__name__}")
    t = tensor.detach()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() == 2 and channels == 1:
        t = t[None]
    if t.dim() != 3 or t.shape[0] != channels:
        raise ValueError(
            f"{what} must have shape (1, {channels}, H, W) or ({channels}, H, W), "
            f"got {tuple(tensor.shape)}"
        )
    return t.to(device="cpu", dtype=torch.float32).permute(1, 2, 0).numpy()


def _quantise(values: np.ndarray, top: int, dtype: np.dtype) -> np.ndarray:
    """round(clamp(x, 0, 1) * top) as ``dtype``; NaN counts as 0."""
    clean = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)
    return np.ascontiguousarray(np.rint(clean.astype(np.float64) * top).astype(dtype))


def _write_tiff16(handle: IO[bytes], pixels: np.ndarray) -> None:
    """Baseline uncompressed little-endian TIFF, one strip, 16-bit RGB or RGBA (H, W, 3|4).

    Layout: 8-byte header, one IFD, values too long for an IFD entry, then the pixels.
    """
    height, width, samples = pixels.shape
    data = pixels.astype("<u2", copy=False).tobytes()
    short, long_, rational = 3, 4, 5
    dpi_72 = struct.pack("<II", 72, 1)
    # (tag, field type, count, little-endian value bytes); StripOffsets is patched below.
    entries = [
        (256, long_, 1, struct.pack("<I", width)),  # ImageWidth
        (257, long_, 1, struct.pack("<I", height)),  # ImageLength
        (258, short, samples, struct.pack(f"<{samples}H", *[16] * samples)),  # BitsPerSample
        (259, short, 1, struct.pack("<H", 1)),  # Compression: none
        (262, short, 1, struct.pack("<H", 2)),  # PhotometricInterpretation: RGB
        (273, long_, 1, b""),  # StripOffsets
        (277, short, 1, struct.pack("<H", samples)),  # SamplesPerPixel
        (278, long_, 1, struct.pack("<I", height)),  # RowsPerStrip: a single strip
        (279, long_, 1, struct.pack("<I", len(data))),  # StripByteCounts
        (282, rational, 1, dpi_72),  # XResolution
        (283, rational, 1, dpi_72),  # YResolution
        (284, short, 1, struct.pack("<H", 1)),  # PlanarConfiguration: interleaved
        (296, short, 1, struct.pack("<H", 2)),  # ResolutionUnit: inch
    ]
    if samples == 4:
        entries.append((338, short, 1, struct.pack("<H", 2)))  # ExtraSamples: unassociated alpha

    ifd_offset = 8
    extra_offset = ifd_offset + 2 + 12 * len(entries) + 4
    extra = b""
    fields = {}
    for tag, _kind, _count, value in entries:
        if len(value) > 4:  # stored after the IFD, the entry holds its offset
            fields[tag] = struct.pack("<I", extra_offset + len(extra))
            extra += value + b"\0" * (len(value) % 2)  # keep word alignment
        else:
            fields[tag] = value.ljust(4, b"\0")
    strip_offset = extra_offset + len(extra)
    if strip_offset + len(data) > 0xFFFFFFFF:
        raise InputError("image too large for a TIFF file (over 4 GiB; BigTIFF is not supported)")
    fields[273] = struct.pack("<I", strip_offset)

    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, _value in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + fields[tag]
    ifd += struct.pack("<I", 0)  # no next IFD

    handle.write(b"II*\0" + struct.pack("<I", ifd_offset))
    handle.write(ifd)
    handle.write(extra)
    handle.write(data)


def to_pil(rgb: torch.Tensor, alpha: torch.Tensor | None = None) -> Image.Image:
    """8-bit PIL image for previews: RGB, or RGBA when ``alpha`` is given.

    rgb: (1, 3, H, W) or (3, H, W) in [0, 1]; alpha: (1, 1, H, W), (1, H, W) or (H, W).
    """
    colour, matte = _colour_and_matte(rgb, alpha)
    if matte is not None:
        colour = np.concatenate([colour, matte], axis=2)
    return Image.fromarray(_quantise(colour, 255, np.dtype(np.uint8)))
