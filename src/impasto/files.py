"""Files written safely and hashed: the one atomic writer and the one file hash of the project.

Every output (images, reports, trained models, exported networks) is written to a temporary
file in its target folder and renamed onto the target only when it is complete, so an error
or Ctrl-C never leaves a partial file behind and never destroys the previous one.

- :func:`atomic_write` for writers that take an open binary handle.
- :func:`atomic_path` for writers that need a file *name* (safetensors' ``save_file``,
  ``torch.save`` to a path, an ONNX program's ``save``).
- :func:`check_writable` before slow work: is the target a file that can be written now (not a
  folder, a folder that takes a new file, a few MB free)? Found before the work, not after.
- :func:`sweep_stale_temps` for the temporary files of writers that died (kill -9, power loss):
  temporary names carry the writer's pid, ``.<name>.<pid>.<random>.tmp``, so a file whose
  writer is gone can be told from one being written. :func:`atomic_path` sweeps its target's.
- :func:`sha256_of` for the hex sha256 of a file.

Standard library only: importing this module imports neither torch nor Pillow.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import InputError

__all__ = [
    "atomic_path",
    "atomic_write",
    "check_writable",
    "make_folders",
    "os_reason",
    "sha256_of",
    "sweep_stale_temps",
    "temp_file_for",
]

_READ_CHUNK = 1 << 20  # 1 MiB: few reads for a large weights file, small memory footprint
MIN_FREE_BYTES = 8 << 20
"""What :func:`check_writable` asks to be free by default: enough to tell a full disk from one
with room, not a promise that a large output fits."""
PROBE_NAME = "impasto-probe"
"""Temporary files of the writability probe are ``.impasto-probe.<pid>.<random>.tmp``."""
_STARTED = time.time()  # files this process writes are newer than this
_CLOCK_SLACK = 2.0  # seconds: coarse file times (FAT: 2 s) must not make our own file look old
_RANDOM_PART = "[a-z0-9_]{8}"  # tempfile's names: 8 of "abcdefghijklmnopqrstuvwxyz0123456789_"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file already exists (empty, named ``.<name>.<pid>.<random>.tmp``, see
    :func:`temp_file_for`); the writer may overwrite or replace it. Temporary files of ``path``
    left by writers that died are removed first (:func:`sweep_stale_temps`). After the block
    the file is fsynced, given the normal file mode (0666 minus the umask) and renamed into
    place, and the folder is fsynced. On any exception (KeyboardInterrupt included) the
    temporary file is removed and the error re-raised; OS errors become InputError naming
    ``path``.

    >>> with atomic_path("model.safetensors") as temp:
    ...     save_file(tensors, temp)
    """
    path = Path(path)
    parent = path.parent
    sweep_stale_temps(parent, path.name)
    try:
        temp = temp_file_for(path)
    except OSError as err:
        raise InputError(f"cannot write '{path}': {os_reason(err)}") from None
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
            raise InputError(f"cannot write '{path}': {os_reason(err)}") from err
        raise
    _fsync_directory(parent)


def temp_file_for(path: str | os.PathLike[str], suffix: str = ".tmp") -> Path:
    """Create an empty temporary file next to ``path``, ``.<name>.<pid>.<random><suffix>``
    (mode 0600), and return its path. The pid is this process's: :func:`sweep_stale_temps`
    removes the file once that process is gone. Raises OSError."""
    path = Path(path)
    prefix = f".{path.name}.{os.getpid()}."
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    os.close(fd)
    return Path(name)


def sweep_stale_temps(
    folder: str | os.PathLike[str], name: str | None = None, suffix: str = ".tmp"
) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writer died; return the removed paths.

    Only regular files named as :func:`temp_file_for` names them (``.<name>.<pid>.<random>``
    and ``suffix``; of target ``name`` only, when given) whose pid is no live process are
    removed: never a live writer's file (another process's or this one's), never a file of any
    other name. A file with this process's pid is stale only when older than this process (a
    container restarted after kill -9 often gets the same pid); a pid reused by an unrelated
    process keeps its file (harmless: a later sweep removes it). Pids are those of this
    machine (and pid namespace): a folder shared with writers elsewhere (network disks,
    containers) should not be swept while they write.
    Failures (an unreadable folder, a file gone meanwhile) are ignored: sweeping is tidying.
    On Windows nothing is swept (``os.kill(pid, 0)`` would end the process there).
    """
    if os.name == "nt":
        return []
    pid_part = "(?P<pid>[0-9]{1,10})"
    pattern = re.compile(rf"\.(?P<name>.+)\.{pid_part}\.{_RANDOM_PART}{re.escape(suffix)}")
    start = None if name is None else f".{name}."
    try:
        entries = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for entry in entries:
        if start is not None and not entry.startswith(start):
            continue  # cheap: a folder of many outputs is listed at every write
        match = pattern.fullmatch(entry)
        if match is None or (name is not None and match["name"] != name):
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and _process_alive(pid):
            continue
        candidate = Path(folder, entry)
        try:
            info = os.lstat(candidate)
            if not stat.S_ISREG(info.st_mode):
                continue  # a folder or a link that merely looks like a temporary file
            if pid == os.getpid() and info.st_mtime >= _STARTED - _CLOCK_SLACK:
                continue  # ours, being written; older ones: an earlier process with our pid
            os.unlink(candidate)
        except OSError:
            continue
        removed.append(candidate)
    return removed


def check_writable(
    path: str | os.PathLike[str],
    *,
    parents: bool = False,
    min_free: int = MIN_FREE_BYTES,
    what: str | None = None,
) -> Path:
    """Raise InputError unless a file can be written at ``path`` now; return ``path`` as a Path.

    For front ends and long jobs to call before the slow work, not after it. ``path`` must not
    be a folder or any other non-file (a rename onto a device would replace the device); its
    folder must exist (``parents``: the nearest existing ancestor must be a folder, as the
    writer creates the rest) and take a new file: one is created and removed, which finds
    read-only disks, permissions, ACLs and inode exhaustion alike. The disk must have
    ``min_free`` bytes free (0: not checked). Creates no folder. ``what`` names the target in
    the messages (default: ``'<path>'``).
    """
    path = Path(path)
    what = what or f"'{path}'"
    try:
        folder = _folder_of(path, parents, what)
    except OSError as err:  # e.g. a folder on the way that may not be searched
        raise InputError(f"cannot write {what}: {os_reason(err)}") from None
    sweep_stale_temps(folder, PROBE_NAME)
    try:
        probe = temp_file_for(folder / PROBE_NAME)
        os.unlink(probe)
    except OSError as err:
        raise InputError(
            f"cannot write {what}: '{folder}' is not writable ({os_reason(err)})"
        ) from None
    if min_free > 0:
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            free = None  # unknown: the write itself will tell
        if free is not None and free < min_free:
            raise InputError(
                f"cannot write {what}: the disk is full ({free / 1e6:.1f} MB free in "
                f"'{folder}'; at least {min_free / 1e6:.0f} MB needed)"
            )
    return path


def _folder_of(path: Path, parents: bool, what: str) -> Path:
    """The existing folder a new file at ``path`` goes in (with ``parents``: its nearest
    existing ancestor), after the checks of :func:`check_writable` that only look; may raise
    OSError."""
    if path.is_dir():
        raise InputError(f"cannot write {what}: it is a folder")
    if path.exists() and not path.is_file():
        raise InputError(f"cannot write {what}: it exists and is not a regular file")
    folder = path.parent
    if parents:
        folder = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    if not folder.exists():
        raise InputError(f"cannot write {what}: folder '{folder}' does not exist")
    if not folder.is_dir():
        raise InputError(f"cannot write {what}: '{folder}' is not a folder")
    return folder


def make_folders(folder: str | os.PathLike[str]) -> Path:
    """``Path(folder).mkdir(parents=True, exist_ok=True)``, OS errors (a read-only or full
    disk, a file in the way) as InputError naming the folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create folder '{folder}': {os_reason(err)}") from err
    return folder


def os_reason(error: OSError) -> str:
    """The words of an OS error ("No space left on device"), also for one raised with only
    an errno (``OSError(errno.ENOSPC)`` has no strerror; ``str()`` would say "28")."""
    if error.strerror:
        return error.strerror
    code = error.errno
    if code is None and len(error.args) == 1 and isinstance(error.args[0], int):
        code = error.args[0]
    if code:
        try:
            return os.strerror(code)
        except ValueError:  # not an errno this platform knows
            pass
    return str(error) or type(error).__name__


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


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` may be a live process (when unsure: yes, so its files are kept)."""
    if pid <= 0:
        return True  # 0 would signal our own process group
    try:
        os.kill(pid, 0)  # signal 0: checks existence and permission, sends nothing
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: another user's live process
        return True
    return True


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
