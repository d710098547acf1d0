"""Seed inputs for the fuzz targets, made by code (no binary files in the repository).

Images: a few tiny pictures in every format and pixel mode the loader handles (PNG in each
colour type, JPEG with EXIF orientation, GIF, BMP, TIFF with each compression, WebP, PPM, TGA,
an ICC profile). Model folders: a tiny but valid fast-style model (two channels, one residual
block), packed as one byte string by :func:`pack_folder`.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

FOLDER_FILES = ("config.json", "metadata.json", "model.safetensors")
SEPARATOR = b"\n--impasto-fuzz-file--\n"


def pack_folder(files: dict[str, bytes]) -> bytes:
    """The three files of a model folder as one input: their bytes joined by SEPARATOR."""
    return SEPARATOR.join(files.get(name, b"") for name in FOLDER_FILES)


def unpack_folder(data: bytes) -> dict[str, bytes]:
    """The inverse of pack_folder; a part lost to mutation is an empty file."""
    parts = data.split(SEPARATOR)
    return {name: part for name, part in zip(FOLDER_FILES, parts, strict=False)}


def image_seeds() -> list[bytes]:
    """Small valid images, one per format and mode the loader has a code path for."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray((rng.random((9, 13, 3)) * 255).astype("uint8"))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray((rng.random((9, 13)) * 255).astype("uint8")))
    images: list[bytes] = []

    def save(image: Image.Image, fmt: str, **options) -> None:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        images.append(buffer.getvalue())

    for mode in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"):
        save(rgba.convert(mode) if mode != "I;16" else rgb.convert("I").convert("I;16"), "PNG")
    palette = rgb.convert("P")
    save(palette, "PNG", transparency=0)
    save(rgb.convert("L"), "PNG", transparency=7)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    save(rgb, "PNG", icc_profile=srgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    save(rgb, "JPEG", quality=80, exif=exif.tobytes())
    save(rgb.convert("CMYK"), "JPEG")
    save(rgb, "GIF", save_all=True, append_images=[rgb.rotate(90)])
    save(rgb, "BMP")
    for compression in (None, "tiff_lzw", "tiff_adobe_deflate", "packbits", "jpeg"):
        save(rgb, "TIFF", compression=compression)
    save(rgba, "TIFF")
    save(rgb.convert("F"), "TIFF")
    save(rgb, "WEBP", quality=50)
    save(rgb, "PPM")
    save(rgba, "TGA")
    return images


def model_seeds() -> list[bytes]:
    """A tiny valid fast-style model folder (and one with empty metadata), packed."""
    import torch

    from impasto.model_folder import save_model_folder
    from impasto.nn.transform_net import NetworkConfig, TransformNet

    network = NetworkConfig(channels=2, residual_blocks=1, edge_kernel=3)
    torch.manual_seed(0)
    state = TransformNet(network).state_dict()
    with tempfile.TemporaryDirectory() as folder:
        metadata = {"method": "fast", "style": {"file": "a.jpg", "width": 4, "height": 4},
                    "backbone": "tiny", "training": {"steps": 1}, "license": "CC0-1.0"}  # fmt: skip
        save_model_folder(Path(folder) / "m", "fast", network.__dict__, state, metadata)
        files = {name: (Path(folder) / "m" / name).read_bytes() for name in FOLDER_FILES}
    bare = dict(files, **{"metadata.json": b"{}"})
    return [pack_folder(files), pack_folder(bare)]


def json_seed_texts() -> list[str]:
    """JSON fragments the structure-aware mutator splices in: type confusions and extremes."""
    return [json.dumps(value) for value in (
        None, True, 0, -1, 2**63, 1e308, "", "x" * 64, [], {}, [[[]]], {"a": {}}, 3.5,
        "reflect", "fast", 9, 256, 257, 32, 33,
    )] + ["Infinity", "-Infinity", "NaN", "[" * 2000 + "]" * 2000]  # fmt: skip
