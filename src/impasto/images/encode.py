"""Image files out: atomic writes of 8-bit PNG/JPEG/WebP and 16-bit TIFF, and 8-bit previews.

An image comes in as float32 sRGB (1, 3, H, W) or (3, H, W) in [0, 1], with an optional alpha
matte (1, 1, H, W), (1, H, W) or (H, W) in [0, 1].

Every file carries the sRGB ICC profile (so colour-managed viewers show the values as meant)
and, when given, a metadata record (JSON, ASCII) where the format has room for text:

- PNG: an iTXt chunk with the key ``impasto`` (METADATA_KEY);
- JPEG and WebP: the EXIF UserComment (0x9286 in the Exif IFD), ``ASCII\0\0\0`` + the text,
  where other image tools put generation settings too;
- TIFF: the ImageDescription tag (270).

``read_metadata`` reads that text back from any of them; ``from_pil`` is ``to_pil``'s inverse.
"""

from __future__ import annotations

import functools
import json
import os
import struct
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from ..errors import InputError
from ..files import atomic_write, resolved

try:  # LittleCMS support is optional in Pillow builds: without it no profile is embedded.
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None

__all__ = [
    "METADATA_KEY",
    "OUTPUT_FORMATS",
    "check_output_path",
    "from_pil",
    "read_metadata",
    "save_image",
    "srgb_profile",
    "to_pil",
]

METADATA_KEY = "impasto"
"""The PNG text key of the metadata record."""
EXIF_IFD, USER_COMMENT, IMAGE_DESCRIPTION = 0x8769, 0x9286, 270
ASCII_PREFIX = b"ASCII\0\0\0"  # EXIF UserComment's character-code header
EXIF_ROOM = 65_000  # a JPEG APP1 segment holds at most 65533 bytes, EXIF header included

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
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write rgb (1, 3, H, W) or (3, H, W) in [0, 1] to ``path``; return the path.

    The format follows the extension (OUTPUT_FORMATS). PNG and WebP keep ``alpha``
    ((1, 1, H, W), (1, H, W) or (H, W)); JPEG composites over white; TIFF is written as
    16 bits per channel (with 16-bit unassociated alpha). ``quality`` (1-100) is used by
    JPEG and WebP. Values are clamped to [0, 1] (NaN -> 0) and rounded. The file is written
    to a temporary file in the same folder and renamed into place, so no partial file remains.
    The sRGB ICC profile is embedded; ``metadata`` (JSON-serialisable, e.g. an
    impasto.provenance record) is embedded as text (see the module docstring).
    """
    path = Path(path).expanduser()
    fmt = _output_format(path)
    _check_parent(path)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InputError(f"quality must be a whole number from 1 to 100, got {quality!r}")
    colour, matte = _colour_and_matte(rgb, alpha)
    text = _metadata_text(metadata)
    profile = srgb_profile()

    if fmt in (".tif", ".tiff"):
        pixels = colour if matte is None else np.concatenate([colour, matte], axis=2)
        data = _quantise(pixels, 65535, np.dtype("<u2"))

        def write(handle: IO[bytes]) -> None:
            _write_tiff16(handle, data, description=text, icc=profile)

    else:
        if fmt in (".jpg", ".jpeg") and matte is not None:
            colour = colour * matte + (1.0 - matte)  # JPEG has no alpha: composite over white
            matte = None
        pixels = colour if matte is None else np.concatenate([colour, matte], axis=2)
        image = Image.fromarray(_quantise(pixels, 255, np.dtype(np.uint8)))
        options: dict[str, object] = {"icc_profile": profile} if profile else {}
        if fmt == ".png":
            pil_format = "PNG"
            if text is not None:
                info = PngImagePlugin.PngInfo()
                info.add_itxt(METADATA_KEY, text)
                options["pnginfo"] = info
        else:
            pil_format = "WEBP" if fmt == ".webp" else "JPEG"
            options["quality"] = quality
            if text is not None:
                options["exif"] = _exif_with_comment(text, path)

        def write(handle: IO[bytes]) -> None:
            image.save(handle, format=pil_format, **options)

    atomic_write(path, write)
    return path


@functools.cache
def srgb_profile() -> bytes | None:
    """The sRGB ICC profile (LittleCMS's built-in), or None when Pillow has no LittleCMS.

    Its creation date (header bytes 24-35) is set to a fixed one, so the same image gives the
    same file, byte for byte, whenever it is written."""
    if ImageCms is None:  # pragma: no cover - depends on the Pillow build
        return None
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[24:36] = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)
    if any(profile[84:100]):  # a profile ID: the MD5 of the profile, some fields zeroed
        import hashlib

        zeroed = bytearray(profile)
        zeroed[44:48] = zeroed[64:68] = bytes(4)
        zeroed[84:100] = bytes(16)
        profile[84:100] = hashlib.md5(zeroed).digest()
    return bytes(profile)


def _metadata_text(metadata: Mapping[str, Any] | None) -> str | None:
    """``metadata`` as compact ASCII JSON (EXIF and TIFF text is 7-bit), or None."""
    if metadata is None:
        return None
    try:
        return json.dumps(metadata, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise InputError(f"metadata must be JSON-serialisable: {error}") from None


def _exif_with_comment(text: str, path: Path) -> bytes:
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = ASCII_PREFIX + text.encode("ascii")
    data = exif.tobytes()
    if len(data) > EXIF_ROOM:
        raise InputError(
            f"cannot write '{path}': its metadata ({len(data)} bytes) does not fit in EXIF "
            f"(at most {EXIF_ROOM}); write a .png or .tif instead"
        )
    return data


def read_metadata(path: str | os.PathLike[str]) -> str | None:
    """The metadata text ``save_image`` embedded in ``path`` (PNG iTXt/tEXt ``impasto``, EXIF
    UserComment, TIFF ImageDescription), or None when there is none. Reads only the header,
    never the pixels; InputError when the file is not an image Pillow can open."""
    path = Path(path).expanduser()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a large image: nothing is decoded here
            with Image.open(path) as image:
                text = image.info.get(METADATA_KEY)
                if isinstance(text, str):
                    return text
                if image.format == "TIFF":
                    description = image.tag_v2.get(IMAGE_DESCRIPTION)
                    return description if isinstance(description, str) else None
                comment = image.getexif().get_ifd(EXIF_IFD).get(USER_COMMENT)
    except Image.DecompressionBombError:
        return None  # a file this large was not written by impasto
    except (OSError, ValueError, SyntaxError) as error:
        raise InputError(f"cannot read '{path}': {error}") from None
    if isinstance(comment, bytes) and comment.startswith(ASCII_PREFIX):
        return comment[len(ASCII_PREFIX) :].decode("ascii", errors="replace")
    return comment if isinstance(comment, str) else None


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


QUANTISE_ROWS = 256  # rows converted at a time: a print-size picture needs no float64 copy


def _quantise(values: np.ndarray, top: int, dtype: np.dtype) -> np.ndarray:
    """round(clamp(x, 0, 1) * top) as ``dtype``; NaN counts as 0. In bands of QUANTISE_ROWS
    rows, so the float64 working copies stay small whatever the picture's size."""
    out = np.empty(values.shape, dtype=dtype)
    for top_row in range(0, values.shape[0], QUANTISE_ROWS):
        band = values[top_row : top_row + QUANTISE_ROWS]
        clean = np.clip(np.nan_to_num(band, nan=0.0), 0.0, 1.0)
        out[top_row : top_row + QUANTISE_ROWS] = np.rint(clean.astype(np.float64) * top)
    return out


def _write_tiff16(
    handle: IO[bytes],
    pixels: np.ndarray,
    description: str | None = None,
    icc: bytes | None = None,
) -> None:
    """Baseline uncompressed little-endian TIFF, one strip, 16-bit RGB or RGBA (H, W, 3|4),
    with an optional ImageDescription (ASCII) and ICC profile (InterColorProfile).

    Layout: 8-byte header, one IFD, values too long for an IFD entry, then the pixels.
    """
    height, width, samples = pixels.shape
    data = pixels.astype("<u2", copy=False).tobytes()
    ascii_, short, long_, rational, undefined = 2, 3, 4, 5, 7
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
    if description is not None:
        text = description.encode("ascii") + b"\0"
        entries.append((270, ascii_, len(text), text))  # ImageDescription
    if icc:
        entries.append((34675, undefined, len(icc), icc))  # InterColorProfile
    entries.sort(key=lambda entry: entry[0])  # TIFF wants the entries in tag order

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


def from_pil(image: Image.Image) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A PIL image as rgb (1, 3, H, W) float32 in [0, 1] and alpha (1, 1, H, W), or None when
    it has no alpha or is fully opaque: ``to_pil``'s inverse. Any mode; 16-bit grey keeps its
    precision. The values are taken as sRGB: an embedded ICC profile is not applied (pass the
    file's path instead, and impasto.load_image converts it)."""
    if not isinstance(image, Image.Image):
        raise InputError(f"expected a PIL image, got {type(image).__name__}")
    alpha = None
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        top = 1.0 if image.mode == "F" else 65535.0
        grey = np.nan_to_num(np.asarray(image, dtype=np.float64) / top, nan=0.0)
        colour = np.repeat(np.clip(grey, 0.0, 1.0)[:, :, None], 3, axis=2)
    else:
        has_alpha = "A" in image.mode or "a" in image.mode or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        values = np.asarray(image, dtype=np.float64) / 255.0
        colour = values[:, :, :3]
        if has_alpha and bool((values[:, :, 3] < 1.0).any()):
            alpha = torch.from_numpy(values[:, :, 3].astype(np.float32))[None, None]
    rgb = torch.from_numpy(np.ascontiguousarray(colour.transpose(2, 0, 1), dtype=np.float32))
    return rgb[None].contiguous(), alpha
