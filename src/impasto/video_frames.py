"""A clip's frames as images: folders of numbered frames, and PyAV frames <-> tensors.

A frame folder is the other way to bring a clip in (frames exported by an editor, a flow
data set) or out (``frame_000000.png`` ...). Files are ordered by the numbers in their names
(natural order: ``frame_2`` before ``frame_10``), not by plain string order.

:func:`frame_to_rgb` and :func:`frame_from_rgb` convert between PyAV's video frames and
impasto's float32 RGB tensors for :mod:`impasto.video` (which imports PyAV, the optional
``video`` extra, before it calls them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from .errors import InputError
from .photos import PHOTO_EXTENSIONS

__all__ = [
    "FRAME_EXTENSIONS",
    "check_frame_sizes",
    "frame_from_rgb",
    "frame_name",
    "frame_to_rgb",
    "list_frames",
]

FRAME_EXTENSIONS: tuple[str, ...] = PHOTO_EXTENSIONS
"""The image files impasto reads, and so the files a frame folder may hold."""

_NUMBER = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that compares the runs of digits in ``name`` as numbers: ``frame_2`` < ``frame_10``.

    ``re.split`` with a group alternates text and digits, so items at the same place always
    have the same type; the name itself breaks ties (``f01`` and ``f1``).
    """
    parts = _NUMBER.split(name)
    return (
        tuple(int(part) if index % 2 else part.lower() for index, part in enumerate(parts)),
        name,
    )


def list_frames(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files (FRAME_EXTENSIONS, any case) directly inside ``folder``, hidden files
    skipped, in natural order of their names. InputError when the folder is missing or holds
    no frame."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "not found"
        raise InputError(f"frame folder '{folder}' {what}")
    try:
        entries = list(folder.iterdir())
    except OSError as error:
        raise InputError(
            f"cannot read frame folder '{folder}': {error.strerror or error}"
        ) from None
    frames = [
        path
        for path in entries
        if path.suffix.lower() in FRAME_EXTENSIONS
        and not path.name.startswith(".")
        and path.is_file()
    ]
    if not frames:
        raise InputError(
            f"frame folder '{folder}' has no frames ({', '.join(FRAME_EXTENSIONS)} files)"
        )
    return sorted(frames, key=lambda path: natural_key(path.name))


def check_frame_sizes(paths: Sequence[str | os.PathLike[str]]) -> tuple[int, int]:
    """Raise InputError unless every frame in ``paths`` has the size of the first one; return
    that size as (width, height), as displayed (EXIF orientation applied).

    Each frame is decoded with :func:`impasto.images.load_image` (the only reader of image
    files), so this reads the whole folder once; it stops at the first mismatch.
    """
    from .images import load_image

    if not paths:
        raise InputError("no frames to check")
    first = Path(paths[0])
    size = _size(load_image(first).rgb)
    for path in paths[1:]:
        other = _size(load_image(path).rgb)
        if other != size:
            raise InputError(
                f"frame folder '{first.parent}' has frames of different sizes: "
                f"{first.name} is {size[0]}x{size[1]}, {Path(path).name} is {other[0]}x{other[1]}"
            )
    return size


def frame_name(index: int, digits: int = 6, ext: str = ".png") -> str:
    """The file name of frame ``index`` in a frame folder impasto writes: ``frame_000123.png``.
    Numbers beyond ``digits`` digits keep all their digits (and still sort naturally)."""
    if index < 0:
        raise InputError(f"frame index must be 0 or more, got {index}")
    if not ext.startswith("."):
        ext = "." + ext
    return f"frame_{index:0{digits}d}{ext}"


def frame_to_rgb(frame) -> torch.Tensor:
    """A decoded PyAV ``VideoFrame`` as float32 (3, H, W) in [0, 1], in the colours a player
    shows: converted by the frame's own colour tags, untagged HD (720 lines up) as BT.709
    like players do (swscale would assume BT.601)."""
    untagged_hd = frame.colorspace == 2 and frame.height >= 720  # 2: AVCOL_SPC_UNSPECIFIED
    pixels = frame.to_ndarray(format="rgb24", src_colorspace="ITU709" if untagged_hd else None)
    return torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255.0).contiguous()


def frame_from_rgb(rgb: torch.Tensor, width: int, height: int, matrix: str = "ITU709"):
    """A yuv420p PyAV ``VideoFrame`` (YUV ``matrix``, "ITU709" or "ITU601"; limited range, what
    players expect) of ``rgb``, float (3, h, w) in [0, 1], padded to ``width`` x ``height`` by
    repeating its last column and row."""
    import av

    pixels = rgb.detach().to("cpu", torch.float32).clamp(0, 1).mul(255).round()
    pad = (0, width - pixels.shape[-1], 0, height - pixels.shape[-2])
    if any(pad):
        pixels = torch.nn.functional.pad(pixels[None], pad, mode="replicate")[0]
    array = pixels.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return av.VideoFrame.from_ndarray(array, format="rgb24").reformat(
        format="yuv420p", src_color_range="JPEG", dst_colorspace=matrix, dst_color_range="MPEG"
    )


def _size(rgb) -> tuple[int, int]:
    return int(rgb.shape[-1]), int(rgb.shape[-2])
