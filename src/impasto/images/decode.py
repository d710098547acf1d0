"""Image files in: a file becomes sRGB float32 (1, 3, H, W) in [0, 1] plus an optional alpha.

Handles EXIF orientation, ICC profile -> sRGB, alpha, and guards against decompression bombs.

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

import contextlib
import io
import os
import re
import stat
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import InputError
from .png_rows import png_data_shortfall

try:  # LittleCMS support is optional in Pillow builds.
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None

__all__ = ["DEFAULT_MAX_PIXELS", "MAX_PIXELS_ENV", "LoadedImage", "load_image", "pixel_cap"]

DEFAULT_MAX_PIXELS: int = 64_000_000
"""Largest width * height load_image accepts; env IMPASTO_MAX_PIXELS overrides it."""

MAX_PIXELS_ENV = "IMPASTO_MAX_PIXELS"

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


def pixel_cap(max_pixels: int | None) -> int:
    """The pixel cap in force: ``max_pixels``, else env IMPASTO_MAX_PIXELS, else the default."""
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
    cap = pixel_cap(max_pixels)
    name = str(path)
    if path.is_dir():
        raise InputError(f"cannot read image '{name}': it is a directory")
    try:
        # Non-blocking, so a FIFO or a device cannot hang the open; only regular files are read.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"cannot read image '{name}': file not found") from None
    except PermissionError:
        raise InputError(f"cannot read image '{name}': permission denied") from None
    except OSError as err:  # e.g. a symlink loop
        raise InputError(f"cannot read image '{name}': {err.strerror or err}") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise InputError(f"cannot read image '{name}': not a regular file (a pipe or a device?)")
    with open(descriptor, "rb") as handle:
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
        warnings.simplefilter("ignore")  # Pillow's notes on odd files: not the user's business
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
            if image.format == "PNG" and (shortfall := png_data_shortfall(handle)) is not None:
                image.close()
                raise InputError(
                    f"cannot read image '{name}': truncated image (its pixel data ends after "
                    f"{shortfall[0]:,} of the {shortfall[1]:,} bytes its header promises)"
                )
            with _stderr_captured(image.format == "TIFF") as libtiff_said:
                try:
                    image.load()  # first frame
                except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
                    raise InputError(_too_large_message(name, _pixels_in(err), cap)) from None
                except Exception as err:
                    why = libtiff_said() or _describe(err)
                    raise InputError(
                        f"cannot read image '{name}': corrupt or truncated image ({why})"
                    ) from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not make a readable image unusable
        oriented = None
    return oriented if oriented is not None else image


@contextlib.contextmanager
def _stderr_captured(active: bool) -> Iterator[Callable[[], str]]:
    """While active, catch what C code writes to file descriptor 2 (libtiff prints its warnings
    and errors there, past Python) and yield a function returning the first line caught so far.

    Process-wide while it lasts: another thread's stderr output in that window is dropped.
    """
    if not active:
        yield lambda: ""
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:

        def first_line() -> str:
            sink.seek(0)
            text = sink.read(4096).decode("utf-8", "replace").strip()
            line = text.splitlines()[0].strip() if text else ""
            return re.sub(r"^\S+\.tiff?: ", "", line)  # libtiff names Pillow's stand-in file

        os.dup2(sink.fileno(), 2)
        try:
            yield first_line
        finally:
            os.dup2(saved, 2)
            os.close(saved)


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
