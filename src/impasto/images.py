"""Image files in and out: the only module that touches Pillow.

Inside the library an image is a float32 tensor of shape (B, 3, H, W) with sRGB values in
[0, 1]; an alpha matte is (B, 1, H, W) in [0, 1]. This module turns files into that form
(EXIF orientation, ICC profile -> sRGB, alpha, decompression-bomb guard) and back (atomic
writes, 8-bit PNG/JPEG/WebP, 16-bit TIFF).

Decoding notes:

- An embedded ICC profile that is not sRGB is converted to sRGB with ``PIL.ImageCms``
  (RGB, RGBA, CMYK and L images). If ImageCms is unavailable, the profile cannot be parsed,
  or it does not fit the image's colour space, the profile is silently ignored and the
  values are taken as sRGB.
- CMYK without a profile uses Pillow's naive conversion (C, M, Y, K = 0 is white).
- 16-bit grayscale (modes I;16, I;16B, I;16L, I) keeps full precision: value / 65535.
  Mode F is taken as already in [0, 1] and clamped.
- 16-bit RGB(A) PNG and TIFF files are reduced to 8 bits per channel by Pillow on decode;
  that precision is lost (values are still correct to 1/255).
- Animated images: the first frame is used.
"""

from __future__ import annotations

import io
import os
import re
import struct
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from impasto.errors import InputError

try:  # LittleCMS support is optional in Pillow builds.
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "LoadedImage",
    "check_output_path",
    "load_image",
    "resize_long_side",
    "resize_to",
    "save_image",
    "to_pil",
]

DEFAULT_MAX_PIXELS: int = 64_000_000
"""Largest width * height load_image accepts; env IMPASTO_MAX_PIXELS overrides it."""

MAX_PIXELS_ENV = "IMPASTO_MAX_PIXELS"

OUTPUT_FORMATS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
"""File extensions save_image can write (matched case-insensitively)."""

# Pillow keeps its bomb limit in a module global; we swap in our cap only while we decode.
_PILLOW_LIMIT_LOCK = threading.Lock()

_SIXTEEN_BIT_GRAY = ("I;16", "I;16B", "I;16L", "I;16N", "I")


@dataclass
class LoadedImage:
    """A decoded image file.

    rgb: float32 (1, 3, H, W) in [0, 1], sRGB, unpremultiplied; fully transparent pixels are white.
    alpha: float32 (1, 1, H, W) in [0, 1], or None when the image is fully opaque.
    path: the file it came from, as given.
    """

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    path: Path


# --------------------------------------------------------------------------- loading


def _resolve_max_pixels(max_pixels: int | None) -> int:
    if max_pixels is None:
        raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not raw:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(raw)
        except ValueError:
            raise InputError(f"{MAX_PIXELS_ENV}={raw!r} is not a whole number of pixels") from None
        source = MAX_PIXELS_ENV
    else:
        source = "max_pixels"
    if max_pixels < 1:
        raise InputError(f"{source} must be at least 1, got {max_pixels}")
    return max_pixels


def load_image(path: str | os.PathLike[str], max_pixels: int | None = None) -> LoadedImage:
    """Read an image file as sRGB float32 (1, 3, H, W) in [0, 1] plus optional alpha.

    Applies EXIF orientation and converts an embedded non-sRGB ICC profile to sRGB.
    Refuses images larger than ``max_pixels`` (width * height) before decoding any pixels;
    None means env IMPASTO_MAX_PIXELS, else DEFAULT_MAX_PIXELS.
    Raises InputError for a missing, unreadable, non-image, corrupt or too large file.
    """
    path = Path(path).expanduser()
    cap = _resolve_max_pixels(max_pixels)
    name = str(path)
    if path.is_dir():
        raise InputError(f"cannot read image '{name}': it is a directory")
    try:
        handle = open(path, "rb")  # closed by the with below
    except FileNotFoundError:
        raise InputError(f"cannot read image '{name}': file not found") from None
    except PermissionError:
        raise InputError(f"cannot read image '{name}': permission denied") from None
    except OSError as err:
        raise InputError(f"cannot read image '{name}': {err.strerror or err}") from None
    with handle:
        image = _decode_first_frame(handle, name, cap)
    rgb, alpha = _to_arrays(image, name)
    return LoadedImage(rgb=rgb, alpha=alpha, path=path)


def _decode_first_frame(handle: IO[bytes], name: str, cap: int) -> Image.Image:
    """Open, size-check, then decode the first frame, with Pillow's bomb limit set to our cap.

    Pillow's limit and the warnings filters are process-wide: the lock serialises our own
    loads, and the previous values are restored on exit. Another thread decoding with Pillow
    directly during that window sees our cap instead of its own.
    """
    with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = cap
        try:
            try:
                image = Image.open(handle)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
                raise InputError(_too_large_message(name, _pixels_in(err), cap)) from None
            except Image.UnidentifiedImageError:
                raise InputError(
                    f"cannot read image '{name}': not an image file "
                    "(or a format Pillow cannot decode)"
                ) from None
            except Exception as err:
                raise InputError(f"cannot read image '{name}': {_describe(err)}") from None
            width, height = image.size
            if width * height > cap:  # header size: nothing decoded yet
                image.close()
                raise InputError(_too_large_message(name, width * height, cap))
            try:
                image.load()  # first frame
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
                raise InputError(_too_large_message(name, _pixels_in(err), cap)) from None
            except Exception as err:
                raise InputError(
                    f"cannot read image '{name}': corrupt or truncated image ({_describe(err)})"
                ) from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not make a readable image unusable
        oriented = None
    return oriented if oriented is not None else image


def _pixels_in(bomb: BaseException) -> int | None:
    """The pixel count from Pillow's bomb message ("Image size (N pixels) ..."), if present."""
    found = re.search(r"\((\d+) pixels\)", str(bomb))
    return int(found.group(1)) if found else None


def _too_large_message(name: str, pixels: int | None, cap: int) -> str:
    size = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
    return (
        f"cannot read image '{name}': {size} exceeds the limit of {cap:,} pixels "
        f"(raise it with --max-pixels or the environment variable {MAX_PIXELS_ENV})"
    )


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _to_arrays(image: Image.Image, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Split a decoded PIL image into rgb (1, 3, H, W) and alpha (1, 1, H, W) or None."""
    mode = image.mode
    if mode in ("P", "PA", "RGBa", "RGBX"):
        # Palette transparency (tRNS or an RGBA palette) becomes a real alpha channel.
        image = image.convert("RGB" if mode == "RGBX" else "RGBA")
    elif mode == "La":
        image = image.convert("LA")
    elif mode == "1":
        image = image.convert("L")

    alpha: np.ndarray | None = None
    if image.mode in ("RGBA", "LA"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
        # convert / getchannel keep image.info, so the ICC profile still applies below.
        image = image.convert("RGB") if image.mode == "RGBA" else image.getchannel("L")
    elif "transparency" in image.info and image.mode in ("L", "RGB", *_SIXTEEN_BIT_GRAY):
        alpha = _colour_key_alpha(image, image.info["transparency"])

    image = _icc_to_srgb(image)
    colour = _colour_array(image, name)

    rgb = torch.from_numpy(np.ascontiguousarray(colour.transpose(2, 0, 1)))[None]
    if alpha is None or bool((alpha >= 1.0).all()):
        return rgb.contiguous(), None
    alpha_tensor = torch.from_numpy(np.ascontiguousarray(alpha))[None, None]
    # Colour under fully transparent pixels is arbitrary; white keeps it from bleeding in.
    rgb = torch.where(alpha_tensor == 0, torch.ones_like(rgb), rgb)
    return rgb.contiguous(), alpha_tensor.contiguous()


def _colour_key_alpha(image: Image.Image, key: object) -> np.ndarray | None:
    """Alpha from a PNG tRNS colour key: 0 where the pixel equals the key colour, else 1."""
    values = np.asarray(image)
    if values.ndim == 3:
        if not isinstance(key, tuple) or len(key) != values.shape[2]:
            return None
        transparent = np.all(values == np.asarray(key, dtype=values.dtype), axis=2)
    else:
        if not isinstance(key, int):
            return None
        transparent = values == key
    return np.where(transparent, 0.0, 1.0).astype(np.float32)


def _icc_to_srgb(image: Image.Image) -> Image.Image:
    """Convert RGB / CMYK / L with an embedded non-sRGB ICC profile to sRGB; else unchanged."""
    icc = image.info.get("icc_profile")
    if not icc or ImageCms is None or image.mode not in ("RGB", "CMYK", "L"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = source.profile.xcolor_space.strip()
        expected = {"RGB": "RGB", "CMYK": "CMYK", "L": "GRAY"}[image.mode]
        if space != expected:
            return image
        if image.mode == "RGB" and "srgb" in (source.profile.profile_description or "").lower():
            return image  # already sRGB: skip the transform and its rounding
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except Exception:  # broken or unsupported profile: use the values as they are
        return image
    return converted if converted is not None else image


def _colour_array(image: Image.Image, name: str) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from a PIL image without alpha."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_GRAY:
        gray = np.asarray(image).astype(np.float64) / 65535.0
        gray = np.clip(gray, 0.0, 1.0).astype(np.float32)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        gray = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        return np.repeat(np.clip(gray, 0.0, 1.0)[:, :, None], 3, axis=2)
    if mode == "L":
        gray = np.asarray(image, dtype=np.float32) / 255.0
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode != "RGB":
        try:
            image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...
        except Exception:
            raise InputError(
                f"cannot read image '{name}': unsupported pixel mode {mode!r}"
            ) from None
    return np.asarray(image, dtype=np.float32) / 255.0


# --------------------------------------------------------------------------- saving


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
    target = path.resolve()
    for item in inputs:
        source = Path(item).expanduser()
        same = source.resolve() == target
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

    _atomic_write(path, write)
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


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Run ``write`` on a temp file next to ``path``, fsync, then rename it onto ``path``.

    On any exception (KeyboardInterrupt included) the temp file is removed and the error
    re-raised; OS errors become InputError.
    """
    parent = path.parent
    try:
        fd, temp_name = tempfile.mkstemp(dir=parent, prefix="." + path.name + ".", suffix=".tmp")
    except OSError as err:
        raise InputError(f"cannot write '{path}': {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o666 & ~_umask())  # mkstemp makes 0600; use normal file mode
        os.replace(temp_name, path)
    except BaseException as err:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise InputError(f"cannot write '{path}': {err.strerror or err}") from err
        raise
    _fsync_directory(parent)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(folder: Path) -> None:
    """Make the rename durable where the OS allows it (POSIX); ignore failures."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- resizing


def resize_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize (B, C, H, W) to (B, C, height, width) with antialiased bicubic; clamp to [0, 1]."""
    if image.dim() != 4:
        raise ValueError(f"image must have shape (B, C, H, W), got {tuple(image.shape)}")
    if height < 1 or width < 1:
        raise InputError(f"image size must be at least 1x1 pixels, got {width}x{height}")
    if tuple(image.shape[-2:]) == (height, width):
        return image.clamp(0.0, 1.0).contiguous()
    resized = F.interpolate(
        image, size=(height, width), mode="bicubic", align_corners=False, antialias=True
    )
    return resized.clamp(0.0, 1.0).contiguous()


def resize_long_side(image: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize (B, C, H, W) so its longer side is ``long_side`` pixels, keeping the aspect ratio.

    Antialiased bicubic (so shrinking does not alias); each side is at least 1 pixel; the
    result is clamped to [0, 1].
    """
    if image.dim() != 4:
        raise ValueError(f"image must have shape (B, C, H, W), got {tuple(image.shape)}")
    if isinstance(long_side, bool) or not isinstance(long_side, int) or long_side < 1:
        raise InputError(f"image size must be a whole number of pixels >= 1, got {long_side!r}")
    height, width = image.shape[-2:]
    scale = long_side / max(height, width)
    if height >= width:
        new_height, new_width = long_side, max(1, round(width * scale))
    else:
        new_height, new_width = max(1, round(height * scale)), long_side
    return resize_to(image, new_height, new_width)


# --------------------------------------------------------------------------- previews


def to_pil(rgb: torch.Tensor, alpha: torch.Tensor | None = None) -> Image.Image:
    """8-bit PIL image for previews: RGB, or RGBA when ``alpha`` is given.

    rgb: (1, 3, H, W) or (3, H, W) in [0, 1]; alpha: (1, 1, H, W), (1, H, W) or (H, W).
    """
    colour, matte = _colour_and_matte(rgb, alpha)
    if matte is not None:
        colour = np.concatenate([colour, matte], axis=2)
    return Image.fromarray(_quantise(colour, 255, np.dtype(np.uint8)))
