"""Where model weights come from: URL + sha256 + licence, the cache folder, offline mode, loading.

Every download is streamed into a hidden ``.part`` file next to its final place, hashed while it
is written, checked against the expected size and sha256, and only then renamed into the cache
with :func:`os.replace` (atomic), so the cache never holds a partial or unverified file.
A cached file is checked against its sha256 before its first use (:func:`verified_path`): it
may have been damaged on disk or put there by hand. The digest is remembered in
``weights_dir() / VERIFIED_RECORD`` with the file's size, mtime and inode, so a 575 MB file is
hashed once, not on every run; a file that changes is hashed again. A file that does not match
is never used and never deleted here: the error names it and says how to replace it.
The library never prints: progress goes to an optional ``progress(bytes_done, bytes_total)``
callback, and every problem a user can fix raises :class:`~impasto.errors.WeightsError`.

``torch`` and ``safetensors`` are imported only when a file is loaded, so the CLI can list,
check and download weights without paying for importing torch.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import platformdirs

from impasto import __version__
from impasto.errors import InputError, WeightsError

from .files import atomic_write, sha256_of, sweep_stale_temps, temp_file_for
from .weight_files import is_torchscript_archive, load_state_dict

__all__ = [
    "VERIFIED_RECORD",
    "VGG19",
    "ProgressCallback",
    "WeightSpec",
    "cached_path",
    "download",
    "ensure",
    "file_sha256",
    "home_dir",
    "is_offline",
    "known_mismatch",
    "is_torchscript_archive",
    "load_state_dict",
    "reachable",
    "sha256_of",
    "verified_path",
    "verify",
    "weights_dir",
]

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(bytes_done, bytes_total)`` after each chunk of a download."""

_TRUE_VALUES = ("1", "true", "yes", "on")
_CHUNK = 1 << 20  # 1 MiB: few callbacks for a 550 MB file, small memory footprint
VERIFIED_RECORD = ".verified.json"
"""File in weights_dir() remembering the sha256 of each cached file by its size, mtime, inode."""

# Errors from urlopen() or response.read() that mean "the network or the server failed"; anything
# else (a bug, the test suite's network guard, a progress callback raising Cancelled) propagates
# unchanged after cleanup. URLError, HTTPError, TimeoutError and ssl.SSLError are OSErrors.
_NETWORK_ERRORS = (OSError, http.client.HTTPException, ValueError)


@dataclass(frozen=True)
class WeightSpec:
    """One downloadable weights file: where it lives, what it must hash to, and its licence."""

    name: str  # short name used by the CLI, e.g. "vgg19"
    url: str
    sha256: str  # full 64-hex digest of the file
    size: int  # bytes; for progress and a cheap cache check
    filename: str  # name inside weights_dir()
    license: str
    source: str  # human-readable provenance


VGG19 = WeightSpec(
    name="vgg19",
    url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
    size=574_673_361,
    filename="vgg19-dcbb9e9d.pth",
    license="BSD-3-Clause (torchvision model weights)",
    source="torchvision ImageNet VGG-19 weights (Simonyan & Zisserman 2014)",
)

CLIP_VIT_B32 = WeightSpec(
    name="clip-vit-b32",
    url="https://openaipublic.azureedge.net/clip/models/"
    "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    size=353_976_522,
    filename="ViT-B-32.pt",
    license="MIT (OpenAI CLIP)",
    source="OpenAI CLIP ViT-B/32 (Radford et al. 2021), TorchScript archive; used by the "
    "clip_* metrics only",
)


def home_dir() -> Path:
    """The impasto data folder: ``$IMPASTO_HOME`` if set, else the user's cache dir. Not created."""
    env = os.environ.get("IMPASTO_HOME", "").strip()
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("impasto"))


def weights_dir() -> Path:
    """The folder holding downloaded weights (``home_dir() / "weights"``). Not created here."""
    return home_dir() / "weights"


def is_offline() -> bool:
    """True when ``IMPASTO_OFFLINE`` is 1/true/yes/on (any case): never touch the network."""
    return os.environ.get("IMPASTO_OFFLINE", "").strip().lower() in _TRUE_VALUES


def cached_path(spec: WeightSpec) -> Path | None:
    """The cached file for ``spec`` if it exists with the expected size, else None.

    Size only, no hashing: whether the file is *usable* is :func:`verified_path`'s answer.
    """
    path = weights_dir() / spec.filename
    try:
        if path.is_file() and path.stat().st_size == spec.size:
            return path
    except OSError:
        pass
    return None


def verified_path(spec: WeightSpec) -> Path | None:
    """The cached file for ``spec`` when its size and sha256 match; None when no file of that size
    is cached. The sha256 is computed once per file and remembered (see :func:`file_sha256`).

    Raises WeightsError (one line: the file, the mismatch, the fix) when the file does not match;
    such a file is never used, and never deleted here.
    """
    path = cached_path(spec)
    if path is None:
        return None
    if file_sha256(path) != spec.sha256.lower():
        raise WeightsError(
            f"{path} does not match the expected sha256 of the {spec.name} weights (damaged or "
            f"another file): delete it, or run `impasto download {spec.name}` to replace it"
        )
    return path


def known_mismatch(spec: WeightSpec) -> bool:
    """True when the remembered sha256 of ``spec``'s cached file is not ``spec.sha256``. Never
    hashes: for quick looks (``impasto recommend``); anything loaded goes through verified_path."""
    path = cached_path(spec)
    if path is None:
        return False
    digest = file_sha256(path, hash_now=False)
    return digest is not None and digest != spec.sha256.lower()


def file_sha256(path: str | os.PathLike[str], *, hash_now: bool = True) -> str | None:
    """The hex sha256 of ``path``. For a file in weights_dir() the digest is remembered in
    VERIFIED_RECORD with the file's size, mtime and inode, and hashed again only when one of
    them changed. ``hash_now=False``: the remembered digest or None, never reading the file.
    Raises WeightsError when the file cannot be read."""
    path = Path(path)
    stamp = _stamp(path) if _in_weights_dir(path) else None
    if stamp is not None:
        entry = _read_record(path.parent).get(path.name)
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and all(entry.get(key) == value for key, value in stamp.items())
        ):
            return entry["sha256"]
    if not hash_now:
        return None
    try:
        digest = sha256_of(path)
    except OSError as error:
        raise WeightsError(f"cannot read weights file {path}: {error.strerror or error}") from error
    if stamp is not None and _stamp(path) == stamp:  # not changed while it was being read
        _remember(path, stamp, digest)
    return digest


def _in_weights_dir(path: Path) -> bool:
    try:
        return path.parent.resolve() == weights_dir().resolve()
    except (OSError, RuntimeError):
        return False


def _stamp(path: Path) -> dict[str, int] | None:
    """What identifies one version of a file cheaply; None when it cannot be seen."""
    try:
        status = path.stat()
    except OSError:
        return None
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "inode": status.st_ino}


def _read_record(folder: Path) -> dict:
    try:
        record = json.loads((folder / VERIFIED_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, unreadable or garbled: everything is hashed again
        return {}
    return record if isinstance(record, dict) else {}


def _remember(path: Path, stamp: dict[str, int], digest: str) -> None:
    """Add ``path``'s digest to the record (atomic rewrite; entries of gone files dropped)."""
    folder = path.parent
    record = {
        name: entry for name, entry in _read_record(folder).items() if (folder / name).is_file()
    }
    record[path.name] = {**stamp, "sha256": digest}
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    try:
        atomic_write(folder / VERIFIED_RECORD, lambda handle: handle.write(text.encode()))
    except (OSError, InputError):  # a read-only cache: the file is hashed again next time
        pass


def verify(path: str | os.PathLike[str], spec: WeightSpec) -> None:
    """Raise WeightsError unless the file's sha256 (see file_sha256) equals ``spec.sha256``."""
    path = Path(path)
    got = file_sha256(path)
    if got != spec.sha256.lower():
        raise WeightsError(
            f"checksum mismatch for {path.name} ({spec.name}): "
            f"expected sha256 {spec.sha256}, got {got}"
        )


def _describe(error: BaseException, timeout: float) -> str:
    """A short human reason for a network failure."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        if isinstance(reason, TimeoutError):
            return f"timed out after {timeout:g} s"
        return str(reason) or type(reason).__name__
    return str(error) or type(error).__name__


def download(
    spec: WeightSpec,
    *,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
    urlopen: Callable | None = None,
    local_flag: str | None = "--weights",
) -> Path:
    """Download ``spec`` into the cache, verify size and sha256, and return its path.

    ``urlopen`` is injectable for tests (default :func:`urllib.request.urlopen`) and is called
    as ``urlopen(request, timeout=timeout)``. On any failure or interrupt the partial file is
    removed; network errors become WeightsError, anything else (e.g. KeyboardInterrupt, an
    exception raised by ``progress``) is re-raised unchanged. ``local_flag``: the caller's option
    for a local copy, which errors suggest (None: it has none; they say where a copy goes).
    """
    hint = _local_copy_hint(spec, local_flag)
    if is_offline():
        raise WeightsError(
            f"cannot download {spec.name} weights: IMPASTO_OFFLINE is set: unset it, or {hint}"
        )
    opener = urllib.request.urlopen if urlopen is None else urlopen
    target_dir = weights_dir()
    target = target_dir / spec.filename
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(target_dir, spec.filename, suffix=".part")  # left by a killed download
        tmp = temp_file_for(target, suffix=".part")
    except OSError as error:
        raise WeightsError(f"cannot write into weights folder {target_dir}: {error}") from error

    try:
        try:
            with open(tmp, "wb") as out:
                done, digest = _fetch(spec, out, opener, timeout, progress, hint)
        except OSError as error:  # network errors are already WeightsError: this is the disk
            raise WeightsError(f"cannot write {tmp}: {error}") from error
        if done != spec.size:
            raise WeightsError(
                f"size mismatch for {spec.filename} from {spec.url}: "
                f"expected {spec.size} bytes, got {done}; the download was discarded"
            )
        if digest != spec.sha256.lower():
            raise WeightsError(
                f"checksum mismatch for {spec.filename} from {spec.url}: "
                f"expected sha256 {spec.sha256}, got {digest}; the download was discarded"
            )
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a cache may be shared between users
            os.replace(tmp, target)  # atomic: concurrent downloads of the same file are safe
        except OSError as error:
            raise WeightsError(f"cannot move the download into {target}: {error}") from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stamp = _stamp(target)
    if stamp is not None and stamp["size"] == spec.size:
        _remember(target, stamp, digest)  # hashed while downloading: no need to read it again
    return target


def _fetch(
    spec: WeightSpec,
    out: BinaryIO,
    opener: Callable,
    timeout: float,
    progress: ProgressCallback | None,
    hint: str,
) -> tuple[int, str]:
    """Stream ``spec.url`` into ``out``; return (bytes written, sha256 hex).

    Only failures of the connection or the server become WeightsError here; an exception raised
    by ``progress`` (e.g. Cancelled) or a KeyboardInterrupt passes through unchanged.
    """
    request = urllib.request.Request(spec.url, headers={"User-Agent": f"impasto/{__version__}"})
    try:
        response = opener(request, timeout=timeout)
    except _NETWORK_ERRORS as error:
        raise _network_error(spec, error, timeout, hint) from error
    digest = hashlib.sha256()
    done = 0
    try:
        length = str(response.headers.get("Content-Length") or "").strip()
        total = int(length) if length.isdigit() else spec.size
        if total != spec.size:
            # Fail before fetching hundreds of MB that cannot match.
            raise WeightsError(
                f"size mismatch for {spec.filename} from {spec.url}: server reports {total} "
                f"bytes, expected {spec.size}; the URL may be wrong or the file replaced"
            )
        if progress is not None:
            progress(0, total)
        while True:
            try:
                block = response.read(_CHUNK)
            except _NETWORK_ERRORS as error:
                raise _network_error(spec, error, timeout, hint) from error
            if not block:
                break
            done += len(block)
            if done > spec.size:
                raise WeightsError(
                    f"size mismatch for {spec.filename} from {spec.url}: received more than "
                    f"the expected {spec.size} bytes; the download was discarded"
                )
            digest.update(block)
            out.write(block)
            if progress is not None:
                progress(done, total)
    finally:
        if hasattr(response, "close"):
            response.close()
    return done, digest.hexdigest()


def _network_error(spec: WeightSpec, error: Exception, timeout: float, hint: str) -> WeightsError:
    """The one-line WeightsError for a failed connection or read."""
    return WeightsError(
        f"could not download {spec.name} weights from {spec.url}: "
        f"{_describe(error, timeout)}; download them elsewhere and {hint}"
    )


def _local_copy_hint(spec: WeightSpec, local_flag: str | None) -> str:
    """The caller's option for a local copy, or (none, e.g. impasto download) the cache path."""
    if local_flag is not None:
        return f"pass {local_flag} PATH"
    return f"copy {spec.filename} to {weights_dir() / spec.filename} (its sha256 is checked)"


def ensure(
    spec: WeightSpec,
    *,
    progress: ProgressCallback | None = None,
    allow_download: bool = True,
    local_flag: str | None = "--weights",
) -> Path:
    """Return the cached file for ``spec`` once its sha256 matched (see verified_path), else
    download it first when allowed and online. A cached file that does not match raises
    WeightsError: it is neither used nor silently replaced. ``local_flag``: as for download."""
    path = verified_path(spec)
    if path is not None:
        return path
    if is_offline() or not allow_download:
        if is_offline():
            why = "IMPASTO_OFFLINE is set"
            how = f"set IMPASTO_OFFLINE=0, check the network and run `impasto download {spec.name}`"
        else:
            why = "downloading is disabled"
            how = f"run `impasto download {spec.name}`"
        raise WeightsError(
            f"{spec.name} weights are not in the cache ({weights_dir() / spec.filename}) "
            f"and {why}: {how}, or {_local_copy_hint(spec, local_flag)}"
        )
    return download(spec, progress=progress, local_flag=local_flag)


def reachable(spec: WeightSpec, timeout: float = 3.0, urlopen: Callable | None = None) -> bool:
    """True if a HEAD request to ``spec.url`` succeeds within ``timeout``; False when offline."""
    if is_offline():
        return False
    opener = urllib.request.urlopen if urlopen is None else urlopen
    request = urllib.request.Request(
        spec.url, method="HEAD", headers={"User-Agent": f"impasto/{__version__}"}
    )
    try:
        response = opener(request, timeout=timeout)
        try:
            status = getattr(response, "status", 200)
            return status is None or 200 <= int(status) < 400
        finally:
            if hasattr(response, "close"):
                response.close()
    except Exception:
        return False


def downloadable() -> dict[str, WeightSpec]:
    """Name -> spec of every file ``impasto download NAME`` fetches."""
    return {spec.name: spec for spec in (VGG19, CLIP_VIT_B32)}
