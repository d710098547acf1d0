"""What an upload is, decided by decoding it, never by its name; caps in bytes and pixels.

An upload streams to a temporary file in the uploads folder, stopping at the byte cap; then it
must decode as an image (impasto.images, with the pixel cap) or, with the video extra, probe as
a video (each frame under the pixel cap). It is kept under a generated name; the name the user
gave is only shown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError
from ..images import load_image, pixel_cap
from .store import Store, new_id

DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024
CHUNK = 1 << 20
IMAGE_TYPES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"GIF8", "image/gif", ".gif"),
    (b"BM", "image/bmp", ".bmp"),
    (b"II*\x00", "image/tiff", ".tif"),
    (b"MM\x00*", "image/tiff", ".tif"),
)
"""Leading bytes of the formats browsers show, for the type the studio serves a file as."""


SAMPLES: dict[str, str] = {
    "washington_monument.jpg": "photo",
    "vangogh_bedroom_in_arles.jpg": "painting",
}
"""The bundled sample pair (impasto/assets, see SOURCES.md there) and the role of each."""
SAMPLE_PREFIX = "sample:"


def sample_path(name: str) -> Path | None:
    """The bundled sample ``name``; None for any other name (no path is ever built from it)."""
    if name not in SAMPLES:
        return None
    return Path(__file__).resolve().parent.parent / "assets" / name


def describe_samples() -> list[dict]:
    return [{"id": SAMPLE_PREFIX + name, "name": name, "role": role,
             "url": f"/api/samples/{name}"} for name, role in SAMPLES.items()]  # fmt: skip


def input_file(store: Store, ref: str) -> tuple[Path, str, str]:
    """The file, kind (image or video) and shown name of an input reference: an upload's id
    or ``sample:NAME``; InputError for anything else."""
    if ref.startswith(SAMPLE_PREFIX):
        path = sample_path(ref[len(SAMPLE_PREFIX) :])
        if path is not None:
            return path, "image", path.name
    else:
        upload = find(store, ref)
        if upload is not None and upload.path.is_file():
            return upload.path, upload.kind, upload.name
    raise InputError(f"no upload '{ref[:40]}': upload the file again")


class UploadRefused(InputError):
    """An upload the studio does not keep; ``status``: the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upload:
    id: str
    kind: str  # image | video
    name: str
    path: Path
    width: int
    height: int

    def describe(self) -> dict:
        return {"id": self.id, "kind": self.kind, "name": self.name, "width": self.width,
                "height": self.height, "url": f"/api/uploads/{self.id}"}  # fmt: skip


def media_type(path: Path) -> str:
    """The type to serve a stored file as, from its first bytes (not its name)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    for magic, kind, _suffix in IMAGE_TYPES:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    return "application/octet-stream"


def receive(store: Store, stream: BinaryIO, name: str, *, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
            max_pixels: int | None = None, video_allowed: bool = False) -> Upload:  # fmt: skip
    """Keep the file read from ``stream`` if it decodes; UploadRefused (413: too large, 415:
    neither an image nor a video, 400: empty) otherwise, leaving nothing behind."""
    folder = store.folder / "uploads"
    folder.mkdir(exist_ok=True)
    upload_id = new_id("u")
    partial = folder / f".{upload_id}.part"
    try:
        size = _copy_capped(stream, partial, max_bytes)
        if size == 0:
            raise UploadRefused(f"'{_shown(name)}' is empty", 400)
        kind, width, height = _decoded(partial, name, max_pixels, video_allowed)
        path = folder / f"{upload_id}{_suffix(partial, kind)}"
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    store.add_upload(upload_id, kind, _shown(name), path.name, width, height, size)
    return Upload(upload_id, kind, _shown(name), path, width, height)


def find(store: Store, upload_id: str) -> Upload | None:
    """An upload by its id; None for an unknown id (or one that is not an upload id at all)."""
    row = store.upload(upload_id)
    if row is None:
        return None
    path = store.folder / "uploads" / row["file"]
    return Upload(row["id"], row["kind"], row["name"], path, row["width"], row["height"])


def _shown(name: str) -> str:
    """The user's file name as shown: its last part, printable, at most 120 characters."""
    base = Path(name.replace("\\", "/")).name or "upload"
    return "".join(ch for ch in base if ch.isprintable())[:120] or "upload"


def _copy_capped(stream: BinaryIO, target: Path, max_bytes: int) -> int:
    size = 0
    with open(target, "wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise UploadRefused(
                    f"the upload is larger than the studio's limit of {max_bytes:,} bytes", 413
                )
            out.write(chunk)
    return size


def _decoded(path: Path, name: str, max_pixels: int | None, video_allowed: bool):
    shown = _shown(name)
    cap = pixel_cap(max_pixels)
    try:
        image = load_image(path, max_pixels=cap)
        return "image", int(image.rgb.shape[-1]), int(image.rgb.shape[-2])
    except InputError as error:
        if "exceeds the limit of" in str(error):
            raise UploadRefused(f"'{shown}' is too large: more than {cap:,} pixels", 413) from None
        image_problem = str(error)
    if video_allowed:
        from .. import video

        try:
            info = video.probe(path)
        except InputError:
            pass
        else:
            if info.width * info.height > cap:
                raise UploadRefused(
                    f"'{shown}' is too large: frames of more than {cap:,} pixels", 413
                )
            return "video", info.width, info.height
    what = "an image or a video" if video_allowed else "an image"
    reason = image_problem.split(": ", 1)[-1] if ": " in image_problem else image_problem
    raise UploadRefused(f"'{shown}' is not {what} the studio can read ({reason})", 415)


def _suffix(path: Path, kind: str) -> str:
    served = media_type(path)
    for _magic, kind_name, suffix in IMAGE_TYPES:
        if kind_name == served:
            return suffix
    return {
        "image/webp": ".webp",
        "video/mp4": ".mp4",
        "video/webm": ".mkv",
        "video/x-msvideo": ".avi",
    }.get(served, ".video" if kind == "video" else ".image")
