"""A folder of photos for training: found recursively, decoded once, cropped reproducibly.

Every batch is a pure function of (seed, step): the epoch's order is a permutation drawn from
(seed, epoch) and each crop's position and flip from (seed, step). A run resumed at step k
therefore sees exactly the batches an uninterrupted run would, with no random state to save.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import ImpastoError, InputError
from .images import load_image, pixel_cap, resize_to

PHOTO_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def find_photos(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive, by extension, hidden files skipped), sorted by
    their path relative to ``folder`` so the order is the same on every machine."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"training data folder not found: {root}")
    found = [
        path
        for path in root.rglob("*")
        if path.suffix.lower() in PHOTO_EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.is_file()
    ]
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def _mix(*numbers: int) -> int:
    """A 63-bit seed from integers (stable across runs and machines, unlike hash())."""
    digest = hashlib.sha256(",".join(map(str, numbers)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class PhotoSet:
    """Decoded training photos, each resized so its short side is ``size`` (uint8, 3 x H x W).

    ``skipped`` lists the files that could not be read (never fatal unless none can).
    """

    folder: Path
    size: int
    photos: list[torch.Tensor]
    names: list[str]
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        size: int,
        max_pixels: int | None = None,
        on_photo: Callable[[int, int], None] | None = None,
    ) -> PhotoSet:
        """Decode every photo under ``folder``; ``on_photo(done, total)`` reports progress."""

        root = Path(folder)
        paths = find_photos(root)
        if not paths:
            raise InputError(f"no photos ({', '.join(PHOTO_EXTENSIONS)}) found under {root}")
        photos, names, skipped = [], [], []
        cap = pixel_cap(max_pixels)
        for index, path in enumerate(paths, start=1):
            try:
                rgb = load_image(path, max_pixels=cap).rgb
                # The cap holds after the resize too: a 1 x 20000 photo must not become
                # 256 x 5,120,000 pixels.
                photo = _short_side(rgb, size, cap)
            except ImpastoError:
                skipped.append(path.relative_to(root).as_posix())
            else:
                photos.append(photo)
                names.append(path.relative_to(root).as_posix())
            if on_photo is not None:
                on_photo(index, len(paths))
        if not photos:
            raise InputError(f"none of the {len(paths)} image files under {root} could be read")
        return cls(root, size, photos, names, skipped)

    def description(self) -> dict:
        """What the model was trained on, for its metadata (names hashed, not listed)."""
        listing = "\n".join(self.names).encode()
        return {
            "folder": self.folder.name,
            "photos": len(self.photos),
            "skipped": len(self.skipped),
            "names_sha256": hashlib.sha256(listing).hexdigest(),
            "short_side": self.size,
        }

    def batch(self, step: int, batch: int, crop: int, seed: int) -> torch.Tensor:
        """The ``step``-th batch (0-based): (batch, 3, crop, crop) float32 in [0, 1]."""
        count = len(self.photos)
        orders: dict[int, torch.Tensor] = {}  # a batch spans one epoch, at most a few
        images = []
        for slot in range(batch):
            position = step * batch + slot
            epoch, index = divmod(position, count)
            if epoch not in orders:
                generator = torch.Generator().manual_seed(_mix(seed, epoch))
                orders[epoch] = torch.randperm(count, generator=generator)
            photo = self.photos[int(orders[epoch][index])]
            generator = torch.Generator().manual_seed(_mix(seed, step, slot))
            height, width = photo.shape[-2:]
            top = int(torch.randint(0, height - crop + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - crop + 1, (1,), generator=generator))
            piece = photo[:, top : top + crop, left : left + crop]
            if bool(torch.rand(1, generator=generator) < 0.5):
                piece = piece.flip(-1)
            images.append(piece)
        return torch.stack(images).float() / 255.0


def _short_side(rgb: torch.Tensor, size: int, cap: int) -> torch.Tensor:
    """(1, 3, H, W) float -> (3, h, w) uint8 with min(h, w) == size (antialiased); InputError
    when h * w would pass ``cap`` pixels (found before anything is allocated)."""
    height, width = rgb.shape[-2:]
    scale = size / min(height, width)
    new = (max(size, round(height * scale)), max(size, round(width * scale)))
    if new[0] * new[1] > cap:
        raise InputError(f"{width}x{height} at a short side of {size} is over {cap:,} pixels")
    return (resize_to(rgb, *new)[0] * 255).round().to(torch.uint8)
