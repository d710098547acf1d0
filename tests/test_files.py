"""Tests for impasto.files: atomic writes (by handle and by path) and the file hash."""

import hashlib
import os
import subprocess
import sys

import pytest

from impasto import files, weights
from impasto.errors import InputError
from impasto.files import atomic_path, atomic_write, sha256_of


def names_in(folder):
    return sorted(p.name for p in folder.iterdir())


def normal_mode():
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


# --------------------------------------------------------------------------- atomic_write


def test_atomic_write_writes_the_bytes_and_nothing_else(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write(target, lambda handle: handle.write(b"hello"))
    assert target.read_bytes() == b"hello"
    assert names_in(tmp_path) == ["out.bin"]
    assert target.stat().st_mode & 0o777 == normal_mode()


def test_atomic_write_replaces_an_existing_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"a much longer previous content")
    atomic_write(str(target), lambda handle: handle.write(b"new"))
    assert target.read_bytes() == b"new"
    assert names_in(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("error", [ValueError("bad data"), KeyboardInterrupt()])
def test_atomic_write_leaves_no_partial_file_when_the_writer_raises(tmp_path, error):
    def write(handle):
        handle.write(b"partial")
        raise error

    with pytest.raises(type(error)):
        atomic_write(tmp_path / "out.bin", write)
    assert names_in(tmp_path) == []


@pytest.mark.parametrize("error", [ValueError("bad data"), KeyboardInterrupt()])
def test_atomic_write_keeps_the_previous_file_when_the_writer_raises(tmp_path, error):
    target = tmp_path / "out.bin"
    target.write_bytes(b"previous")

    def write(handle):
        handle.write(b"partial")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, write)
    assert target.read_bytes() == b"previous"
    assert names_in(tmp_path) == ["out.bin"]


def test_atomic_write_turns_a_writer_os_error_into_input_error(tmp_path):
    def write(handle):
        handle.write(b"II*\0")
        raise OSError(28, "No space left on device")

    with pytest.raises(InputError, match="No space left") as info:
        atomic_write(tmp_path / "out.bin", write)
    assert "out.bin" in str(info.value)
    assert names_in(tmp_path) == []


def test_atomic_write_into_a_missing_folder_is_an_input_error(tmp_path):
    target = tmp_path / "missing" / "out.bin"
    with pytest.raises(InputError) as info:
        atomic_write(target, lambda handle: handle.write(b"x"))
    assert str(target) in str(info.value)
    assert names_in(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="folders cannot be fsynced on Windows")
def test_atomic_write_syncs_the_data_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(source, destination):
        events.append(("replace", os.stat(source).st_ino))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write(tmp_path / "out.bin", lambda handle: handle.write(b"data"))
    renamed = next(index for index, event in enumerate(events) if event[0] == "replace")
    file_inode = events[renamed][1]
    assert ("fsync", file_inode) in events[:renamed]
    assert ("fsync", tmp_path.stat().st_ino) in events[renamed + 1 :]


# --------------------------------------------------------------------------- atomic_path


def test_atomic_path_yields_a_fresh_name_in_the_same_folder(tmp_path):
    target = tmp_path / "model.safetensors"
    with atomic_path(target) as temp:
        assert temp.parent == tmp_path
        assert temp != target and temp.exists()
        assert not target.exists()  # nothing appears before the block succeeds
        temp.write_bytes(b"weights")
    assert target.read_bytes() == b"weights"
    assert names_in(tmp_path) == ["model.safetensors"]
    assert target.stat().st_mode & 0o777 == normal_mode()


def test_atomic_path_accepts_a_writer_that_recreates_the_file(tmp_path):
    # Writers such as torch.save may delete and recreate the file, here with a private mode.
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    with atomic_path(str(target)) as temp:
        os.unlink(temp)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"new model")
        os.close(fd)
    assert target.read_bytes() == b"new model"
    assert target.stat().st_mode & 0o777 == normal_mode()
    assert names_in(tmp_path) == ["model.pt"]


@pytest.mark.parametrize("error", [RuntimeError("export failed"), KeyboardInterrupt()])
def test_atomic_path_removes_the_temp_file_and_keeps_the_old_one_on_error(tmp_path, error):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")
    with pytest.raises(type(error)):
        with atomic_path(target) as temp:
            temp.write_bytes(b"partial")
            raise error
    assert target.read_bytes() == b"previous"
    assert names_in(tmp_path) == ["model.onnx"]


def test_atomic_path_turns_an_os_error_into_input_error(tmp_path):
    target = tmp_path / "model.onnx"
    with pytest.raises(InputError, match="Disk quota exceeded") as info:
        with atomic_path(target) as temp:
            temp.write_bytes(b"partial")
            raise OSError(122, "Disk quota exceeded")
    assert str(target) in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    assert names_in(tmp_path) == []


def test_atomic_path_into_a_missing_folder_is_an_input_error(tmp_path):
    target = tmp_path / "missing" / "model.onnx"
    ran = []
    with pytest.raises(InputError) as info:
        with atomic_path(target):
            ran.append(True)
    assert str(target) in str(info.value)
    assert ran == []  # the writer never runs


def test_atomic_path_reports_a_writer_that_removed_its_file(tmp_path):
    target = tmp_path / "model.onnx"
    with pytest.raises(InputError, match="model.onnx"):
        with atomic_path(target) as temp:
            os.unlink(temp)
    assert names_in(tmp_path) == []


# --------------------------------------------------------------------------- sha256_of


def test_sha256_of_known_vectors(tmp_path):
    # FIPS 180-2 test vector and the digest of no bytes.
    abc, empty = tmp_path / "abc", tmp_path / "empty"
    abc.write_bytes(b"abc")
    empty.write_bytes(b"")
    assert sha256_of(abc) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_of(empty) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_sha256_of_matches_hashlib_for_any_chunk(tmp_path, chunk):
    payload = bytes(range(256)) * 97 + b"tail"
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    assert sha256_of(str(path), chunk=chunk) == hashlib.sha256(payload).hexdigest()


def test_sha256_of_is_the_one_weights_uses():
    assert weights.sha256_of is files.sha256_of


def test_importing_files_imports_neither_torch_nor_pillow():
    code = (
        "import sys, impasto.files; "
        "print(sorted(m for m in ('torch', 'PIL', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
