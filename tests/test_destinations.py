"""Where outputs go: a read-only folder, a full disk or a folder in the way is one line and exit
code 2 *before* the slow work of ``train`` and ``export``; a disk that fills during the work is
one line and leaves no partial file; and the temporary files of killed writers (named with their
pid) are swept, never a live writer's and never a file of another name.

Read-only folders are made by refusing file creation in ``os.open``/``os.mkdir`` (what the OS
would do), so the tests also run as root; a chmod 0o555 variant runs where chmod can stop a
write (not as root). A full disk is a free-space figure of 1 MB (``shutil.disk_usage``) before
the work, and a file handle whose writes fail with ENOSPC during it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import error_line, write_image
from helpers import run_cli as run

from impasto import files, training
from impasto.errors import InputError
from impasto.files import (
    atomic_path,
    atomic_write,
    check_writable,
    make_folders,
    sweep_stale_temps,
)
from impasto.methods import fast
from impasto.model_folder import save_model_folder
from impasto.photos import PhotoSet

SMALL = {"channels": 4, "residual_blocks": 1, "padding": "reflect"}
TRAIN = (
    "--size 24 --batch 2 --channels 4 --residual-blocks 1 --backbone tiny --device cpu "
    "--preview-every 0 --quiet"
).split()


SLOW_WORK = "the slow work started before the destination was checked"
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX files (pids, fifos, symlinks)")


def leftovers(folder: Path) -> list[str]:
    """Temporary files anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


@pytest.fixture
def data(tmp_path):
    for i in range(3):
        write_image(tmp_path / "photos" / f"{i}.png", i)
    write_image(tmp_path / "style.png", 99, size=(48, 48))
    return tmp_path


def train_argv(data: Path, out: Path, *extra) -> list:
    inputs = ["--style", data / "style.png", "--data", data / "photos"]
    return ["train", "fast", *inputs, "-o", out, *TRAIN, *extra]


@pytest.fixture
def model(tmp_path) -> Path:
    torch.manual_seed(0)
    network = fast.TransformNet(fast.NetworkConfig(**SMALL))
    return save_model_folder(tmp_path / "model", "fast", SMALL, network.state_dict(), {})


@pytest.fixture
def no_slow_work(monkeypatch):
    """Reading the photos, loading the loss network or exporting fails the test: the
    destination must be refused before any of them."""

    def refuse(*args, **kwargs):
        raise AssertionError(SLOW_WORK)

    monkeypatch.setattr(PhotoSet, "load", staticmethod(refuse))
    monkeypatch.setattr("impasto.pipeline.load_backbone", refuse)
    monkeypatch.setattr(torch.onnx, "export", refuse)


def refuse_creation_under(monkeypatch, folder: Path) -> None:
    """Make ``folder`` read-only the way the OS does: creating a file or folder in it (or below
    it) fails with EROFS. Works as root, where chmod stops nothing."""
    folder = folder.resolve()
    real_open, real_mkdir = os.open, os.mkdir

    def inside(path) -> bool:
        return Path(os.path.abspath(os.fspath(path))).resolve().is_relative_to(folder)

    def guarded_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)


@pytest.fixture(params=["refused", "chmod"])
def read_only(request, monkeypatch):
    """A function making a folder read-only: by refusing creation (always), or by chmod 0o555
    (skipped where chmod does not stop writes: as root)."""
    made = []

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if request.param == "refused":
            refuse_creation_under(monkeypatch, folder)
            return folder
        folder.chmod(0o555)
        made.append(folder)
        try:
            (folder / "probe").write_bytes(b"")
        except PermissionError:
            return folder
        (folder / "probe").unlink()
        pytest.skip(
            "chmod 0o555 does not stop this user (root) from writing; the 'refused' "
            "variant covers read-only folders here"
        )

    yield make
    for folder in made:
        folder.chmod(0o755)


def fill_every_disk(monkeypatch) -> None:
    """Every disk has 1 MB free."""
    real = shutil.disk_usage

    def nearly_full(path):
        usage = real(path)
        return type(usage)(usage.total, usage.total - 1_000_000, 1_000_000)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)


@pytest.fixture
def full_disk(monkeypatch):
    fill_every_disk(monkeypatch)


def failing_open(prefix: str, after: int = 100):
    """``open`` whose handles to files named ``prefix...`` fail with ENOSPC once ``after``
    bytes are written, like a disk that fills during the write."""

    class Full:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            if self.written + len(data) > after:
                self.handle.write(bytes(data)[: max(0, after - self.written)])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written += len(data)
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def fake_open(path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)
        return Full(handle) if Path(path).name.startswith(prefix) else handle

    return fake_open


# --------------------------------------------------------------------------- train


@pytest.mark.parametrize("where", ["ro", "ro/new/model"])
def test_train_into_a_read_only_folder_is_one_line_before_any_work(
    capsys, data, read_only, no_slow_work, where
):
    read_only(data / "ro")
    code, _, err = run(capsys, *train_argv(data, data / where, "--steps", "2"))
    assert code == 2, err
    assert "not writable" in error_line(err) and str(data / "ro") in err
    assert list((data / "ro").iterdir()) == []


def test_train_into_a_read_only_training_folder_is_one_line_before_any_work(
    capsys, data, monkeypatch, no_slow_work
):
    (data / "m" / "training").mkdir(parents=True)  # a model folder whose training/ is read-only
    refuse_creation_under(monkeypatch, data / "m" / "training")
    code, _, err = run(capsys, *train_argv(data, data / "m", "--steps", "2"))
    assert code == 2, err
    assert "training" in error_line(err) and "not writable" in err


def test_train_onto_a_full_disk_is_one_line_before_any_work(capsys, data, full_disk, no_slow_work):
    code, _, err = run(capsys, *train_argv(data, data / "m", "--steps", "2"))
    assert code == 2, err
    assert "the disk is full" in error_line(err) and "1.0 MB free" in err
    assert not (data / "m").exists()


def test_a_disk_filling_during_a_checkpoint_is_one_line_and_no_partial_file(
    capsys, data, monkeypatch, one_thread
):
    # torch's own writer would say "RuntimeError: [enforce fail at inline_container.cc]".
    monkeypatch.setattr(training, "open", failing_open(".checkpoint.pt."), raising=False)
    code, _, err = run(capsys, *train_argv(data, data / "m", "--steps", "2"))
    assert code == 2, err
    line = error_line(err)
    assert "No space left on device" in line and "checkpoint.pt" in line
    assert not (data / "m" / "training" / "checkpoint.pt").exists()
    assert not (data / "m" / "config.json").exists() and leftovers(data / "m") == []


def test_a_disk_filling_during_the_model_write_is_one_line_and_resume_finishes_it(
    capsys, data, monkeypatch, one_thread
):
    # safetensors' own writer would say "SafetensorError: Error while serializing: I/O error".
    with monkeypatch.context() as patch:
        patch.setattr(files, "open", failing_open(".model.safetensors."), raising=False)
        code, _, err = run(capsys, *train_argv(data, data / "m", "--steps", "2"))
    assert code == 2, err
    assert "No space left on device" in error_line(err) and "model.safetensors" in err
    names = sorted(p.name for p in (data / "m").iterdir())
    assert names == ["training"] and leftovers(data / "m") == []  # no half a model
    # Space was freed: the same command with --resume writes the model.
    code, _, err = run(capsys, *train_argv(data, data / "m", "--steps", "2", "--resume"))
    assert code == 0, err
    assert fast.load_model(data / "m").metadata["steps_done"] == 2


def test_a_checkpoint_folder_that_cannot_be_created_is_an_input_error(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    refuse_creation_under(monkeypatch, tmp_path / "m")
    with pytest.raises(InputError, match="cannot create folder .*training.*Read-only"):
        training.save_checkpoint(tmp_path / "m", {"step": 1})


# --------------------------------------------------------------------------- export


@pytest.mark.parametrize("case", ["a folder", "full disk"])
def test_export_to_a_folder_or_a_full_disk_is_one_line_before_any_work(
    capsys, tmp_path, model, monkeypatch, no_slow_work, case
):
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    if case == "a folder":
        out.mkdir()
    else:
        fill_every_disk(monkeypatch)
    code, _, err = run(capsys, "export", model, "--format", "onnx", "-o", out)
    assert code == 2, err
    expected = "it is a folder" if case == "a folder" else "the disk is full"
    assert expected in error_line(err)
    assert [p.name for p in out.parent.iterdir()] == (["m.onnx"] if case == "a folder" else [])


def test_export_into_a_read_only_folder_is_one_line_before_any_work(
    capsys, tmp_path, model, read_only, no_slow_work
):
    folder = read_only(tmp_path / "ro")
    code, _, err = run(capsys, "export", model, "--format", "onnx", "-o", folder / "m.onnx")
    assert code == 2, err
    assert "not writable" in error_line(err)
    assert list(folder.iterdir()) == []


def test_the_export_library_call_checks_its_destination_before_exporting(tmp_path, no_slow_work):
    from impasto.export import export_onnx

    (tmp_path / "m.onnx").mkdir()
    network = fast.TransformNet(fast.NetworkConfig(**SMALL))
    with pytest.raises(InputError, match="it is a folder"):
        export_onnx(network, tmp_path / "m.onnx")


# --------------------------------------------------------------------------- check_writable


@posix_only
def test_check_writable_refuses_what_is_not_a_writable_file_place(tmp_path):
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "file").write_text("x")
    for path, message in [
        (tmp_path / "folder", "it is a folder"),
        (tmp_path / "pipe", "not a regular file"),
        (tmp_path / "missing" / "out.onnx", "does not exist"),
        (tmp_path / "file" / "out.onnx", "is not a folder"),
    ]:
        with pytest.raises(InputError, match=message):
            check_writable(path)
    assert check_writable(tmp_path / "file") == tmp_path / "file"  # replacing a file is fine


def test_check_writable_creates_nothing_and_leaves_nothing(tmp_path):
    target = tmp_path / "a" / "b" / "model" / "config.json"
    assert check_writable(target, parents=True) == target
    assert list(tmp_path.iterdir()) == []  # no folder made, no probe left
    check_writable(tmp_path / "out.onnx")
    assert list(tmp_path.iterdir()) == []


def test_check_writable_asks_for_free_space_only_when_told(tmp_path, full_disk):
    with pytest.raises(InputError, match="the disk is full"):
        check_writable(tmp_path / "out.onnx")
    check_writable(tmp_path / "out.onnx", min_free=0)
    check_writable(tmp_path / "out.onnx", min_free=500_000)


def test_make_folders_turns_os_errors_into_one_line(tmp_path, monkeypatch):
    refuse_creation_under(monkeypatch, tmp_path)
    with pytest.raises(InputError, match="cannot create folder .*Read-only file system"):
        make_folders(tmp_path / "a" / "b")


def test_an_os_error_with_only_an_errno_is_said_in_words(tmp_path):
    def write(handle):
        handle.write(b"partial")
        raise OSError(errno.ENOSPC)  # str() of this error is "28"

    with pytest.raises(InputError, match="'.*out.bin': No space left on device$"):
        atomic_write(tmp_path / "out.bin", write)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- stale temp files


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", ""])
        child.wait()
        try:
            os.kill(child.pid, 0)
        except ProcessLookupError:
            return child.pid
    pytest.fail("no dead pid found (pids reused at once)")


@posix_only
def test_temporary_names_carry_the_writers_pid(tmp_path):
    with atomic_path(tmp_path / "out.bin") as temp:
        name, pid, random, suffix = temp.name.rsplit(".", 3)
        assert name == ".out.bin" and pid == str(os.getpid()) and suffix == "tmp"
        assert len(random) == 8


def plant(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in names]
    for path in paths:
        path.write_bytes(b"half a file")
    return paths


@posix_only
def test_a_new_write_sweeps_only_its_targets_temp_files_of_dead_writers(tmp_path, dead_pid):
    alive = os.getppid()  # pytest's parent: alive, and not us
    stale = plant(
        tmp_path, f".out.bin.{dead_pid}.abc_1234.tmp", f".out.bin.{dead_pid}.zz9zz9zz.tmp"
    )
    kept = plant(
        tmp_path,
        f".out.bin.{alive}.abcdefgh.tmp",  # a live writer's
        f".other.bin.{dead_pid}.abcdefgh.tmp",  # another target's (its own write sweeps it)
        ".out.bin.abcdefgh.tmp",  # no pid: the old naming, or not ours
        f"out.bin.{dead_pid}.abcdefgh.tmp",  # no leading dot
        f".out.bin.{dead_pid}.abcdefgh.tmp.bak",
        f".out.bin.{dead_pid}.ABCDEFGH.tmp",  # not tempfile's alphabet
        f".out.bin.{dead_pid}.abcdefg.tmp",  # seven characters
        ".out.bin.0.abcdefgh.tmp",  # pid 0 would be our own process group
        "out.bin.notes",
    )
    (tmp_path / f".out.bin.{dead_pid}.folder00.tmp").mkdir()  # a folder, not a temp file
    (tmp_path / f".out.bin.{dead_pid}.symlink0.tmp").symlink_to(tmp_path / "out.bin.notes")
    atomic_write(tmp_path / "out.bin", lambda handle: handle.write(b"new"))
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in kept)
    assert (tmp_path / f".out.bin.{dead_pid}.folder00.tmp").is_dir()
    assert (tmp_path / f".out.bin.{dead_pid}.symlink0.tmp").is_symlink()
    assert (tmp_path / "out.bin").read_bytes() == b"new"


@posix_only
def test_a_temp_file_with_our_pid_is_stale_only_when_older_than_this_process(tmp_path):
    # A container restarted after kill -9 often runs impasto under the same pid as before.
    ours = f".out.bin.{os.getpid()}.abcdefgh.tmp"
    earlier = f".out.bin.{os.getpid()}.earlier0.tmp"
    plant(tmp_path, ours, earlier)
    a_day_ago = time.time() - 24 * 3600  # long before this test process started
    os.utime(tmp_path / earlier, (a_day_ago, a_day_ago))
    assert sweep_stale_temps(tmp_path, "out.bin") == [tmp_path / earlier]
    assert (tmp_path / ours).exists()


@posix_only
def test_a_sweep_without_a_name_takes_every_dead_writers_temp_and_other_suffixes(
    tmp_path, dead_pid
):
    stale = plant(tmp_path, f".a.png.{dead_pid}.abcdefgh.tmp", f".b.{dead_pid}.abcdefgh.tmp")
    part = plant(tmp_path, f".w.pth.{dead_pid}.abcdefgh.part")
    assert sorted(sweep_stale_temps(tmp_path)) == sorted(stale)
    assert part[0].exists()
    assert sweep_stale_temps(tmp_path, "w.pth", suffix=".part") == part
    assert sweep_stale_temps(tmp_path / "missing") == []


@posix_only
def test_training_sweeps_a_killed_runs_temp_files_when_it_resumes(tmp_path, dead_pid, one_thread):
    torch.manual_seed(3)
    style = torch.rand(1, 3, 40, 40)
    for i in range(2):
        write_image(tmp_path / "photos" / f"{i}.png", i)
    photos = PhotoSet.load(tmp_path / "photos", 24)
    tiny = {"size": 24, "batch": 2, "channels": 4, "residual_blocks": 1, "backbone": "tiny"}
    config = fast.FastTrainConfig(**tiny, steps=1, device="cpu", preview_every=1)
    folder = tmp_path / "m"
    fast.train(style, photos, folder, config)
    stale = [
        *plant(folder, f".model.safetensors.{dead_pid}.abcdefgh.tmp"),
        *plant(folder / "training", f".checkpoint.pt.{dead_pid}.abcdefgh.tmp"),
        *plant(folder / "training" / "previews", f".step-0000009.png.{dead_pid}.abcdefgh.tmp"),
    ]
    kept = plant(folder / "training", f".checkpoint.pt.{os.getppid()}.abcdefgh.tmp", "notes.tmp")
    config.steps = 2
    fast.train(style, photos, folder, config, resume=True)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in kept)
    assert json.loads((folder / "metadata.json").read_text())["steps_done"] == 2


@posix_only
def test_the_sweep_never_follows_a_link_out_of_the_folder(tmp_path, dead_pid):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / f".x.{dead_pid}.abcdefgh.tmp").symlink_to(outside / "precious")
    assert sweep_stale_temps(inside) == []
    assert (outside / "precious").read_text() == "keep"
    assert stat.S_ISLNK(os.lstat(inside / f".x.{dead_pid}.abcdefgh.tmp").st_mode)
