"""Files written safely and hashed: the one atomic writer and the one file hash of the project.

Every output (images, reports, trained models, exported networks) is written to a temporary
file in its target folder and renamed onto the target only when it is complete, so an error
or Ctrl-C never leaves a partial file behind and never destroys the previous one.

- :func:`atomic_write` for writers that take an open binary handle.
- :func:`atomic_path` for writers that need a file *name* (safetensors' ``save_file``,
  ``torch.save`` to a path, an ONNX program's ``save``).
- :func:`sha256_of` for the hex sha256 of a file.

Standard library only: importing this module imports neither torch nor Pillow.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import InputError

__all__ = ["atomic_path", "atomic_write", "sha256_of"]

_READ_CHUNK = 1 << 20  # 1 MiB: few reads for a large weights file, small memory footprint


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file already exists (empty, named ``.<name>.<random>.tmp``); the writer may
    overwrite or replace it. After the block it is fsynced, given the normal file mode
    (0666 minus the umask) and renamed into place, and the folder is fsynced. On any exception
    (KeyboardInterrupt included) the temporary file is removed and the error re-raised;
    OS errors become InputError naming ``path``.

    >>> with atomic_path("model.safetensors") as temp:
    ...     save_file(tensors, temp)
    """
    path = Path(path)
    parent = path.parent
    try:
        fd, temp_name = tempfile.mkstemp(dir=parent, prefix="." + path.name + ".", suffix=".tmp")
    except OSError as err:
        raise InputError(f"cannot write '{path}': {err.strerror or err}") from None
    os.close(fd)
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; use normal file mode
        _fsync_file(temp)
        os.replace(temp, path)
    except BaseException as err:
        try:
            os.unlink(temp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise InputError(f"cannot write '{path}': {err.strerror or err}") from err
        raise
    _fsync_directory(parent)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Run ``write`` on a binary handle to a temp file next to ``path``, then rename it onto
    ``path``.

    The data is fsynced before the rename. On any exception (KeyboardInterrupt included) the
    temp file is removed and the error re-raised; OS errors become InputError naming ``path``.
    """
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        write(handle)


def resolved(path: str | os.PathLike[str]) -> Path:
    """``Path(path).resolve()``; a symlink loop is the user's error, named as such."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as error:  # RuntimeError: a loop, before Python 3.13
        raise InputError(f"cannot use '{path}': {error}") from None


def sha256_of(path: str | os.PathLike[str], chunk: int = _READ_CHUNK) -> str:
    """Hex sha256 digest of a file, read in ``chunk``-byte pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    """Flush the file's data to disk, whoever wrote it (fsync works per file, not per handle)."""
    # Windows fsyncs only handles open for writing; POSIX accepts a read-only one, which also
    # works when a writer left the file without write permission.
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
