"""Chaos: ``kill -9`` (SIGKILL, which no handler sees) at seeded random moments of real
``impasto`` processes. Whatever the moment, an output is absent or whole (never partial), a
killed training run resumes to the weights of an uninterrupted one, and the temporary files a
killed writer leaves (named with its pid) are swept by the next write or resume.

The moments: a seeded delay after a temporary file of the output appears (while it is being
written, which a uniform time would almost never hit), and seeded times within the run (loading
torch and the model, computing), as fractions of how long the run took to reach its write on
this machine, or a few seconds into a long one. The seed fixes the moments; the processes run
at the machine's pace. Each child has a time limit, so nothing hangs.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from impasto import training
from impasto.files import sweep_stale_temps

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGKILL and pids: POSIX only")

SEED = 1729
LIMIT = 180.0  # seconds one child may take before the test kills it and fails
TRAIN = (
    "--size 24 --batch 2 --channels 4 --residual-blocks 1 --backbone tiny --device cpu "
    "--preview-every 0 --quiet --seed 5"
).split()


def impasto(argv: list, log: Path) -> subprocess.Popen:
    """Start ``python -m impasto ARGV`` (one torch thread), its output into ``log``: a file, not
    a pipe, so a chatty child never blocks on a full pipe."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as handle:
        command = [sys.executable, "-m", "impasto", *map(str, argv)]
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)


def temps_of(target: Path) -> list[Path]:
    """The temporary files of ``target`` next to it (``.<name>.<pid>.<random>.tmp``)."""
    try:
        names = os.listdir(target.parent)
    except FileNotFoundError:
        return []
    prefix = f".{target.name}."
    return sorted(target.parent / n for n in names if n.startswith(prefix) and n.endswith(".tmp"))


def wait_for(process: subprocess.Popen, ready, log: Path, every: float = 0.001) -> float:
    """Poll ``ready()`` every ``every`` seconds until it is true or the process ends; return the
    seconds waited. Fails after LIMIT seconds (killing the process)."""
    started = time.monotonic()
    while not ready() and process.poll() is None:
        if time.monotonic() - started > LIMIT:
            process.kill()
            process.wait()
            pytest.fail(f"gave up waiting after {LIMIT} s: {log.read_text()[-2000:]}")
        time.sleep(every)
    return time.monotonic() - started


def kill_after(process: subprocess.Popen, seconds: float, log: Path) -> int:
    """SIGKILL ``process`` ``seconds`` from now and return its exit status: -SIGKILL, or 0 when
    it finished first."""
    due = time.monotonic() + seconds
    wait_for(process, lambda: time.monotonic() >= due, log, every=min(seconds / 10, 0.01))
    process.send_signal(signal.SIGKILL)  # a no-op on a process that already exited
    code = process.wait(timeout=60)
    assert code in (0, -signal.SIGKILL), f"exit {code}\n{log.read_text()[-2000:]}"
    return code


def writing(target: Path):
    """A condition for ``wait_for``: a temporary file of ``target`` exists."""
    return lambda: bool(temps_of(target))


def assert_swept(target: Path, pid: int) -> None:
    """Temporary files of ``target`` left behind are the killed writer's, and a sweep (what the
    next write does first) removes exactly them."""
    left = temps_of(target)
    assert all(f".{pid}." in path.name for path in left), left
    assert sorted(sweep_stale_temps(target.parent, target.name)) == left
    assert temps_of(target) == []


def write_photo(path: Path, seed: int, size: tuple[int, int]) -> Path:
    """A smooth random picture (noise scaled up), like a photo for the PNG encoder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    small = np.random.default_rng(seed).integers(0, 256, (size[1] // 8, size[0] // 8, 3))
    Image.fromarray(small.astype(np.uint8)).resize(size, Image.BICUBIC).save(path)
    return path


def check_image(out: Path, code: int, log: Path) -> None:
    """``out`` is absent (it was killed) or whole: the decoder reads every pixel."""
    if code == 0:
        assert out.exists(), log.read_text()
    if out.exists():
        with Image.open(out) as image:
            image.load()
            assert image.size == (480, 360)


def test_stylize_killed_at_random_moments_leaves_no_image_or_a_whole_one(tmp_path):
    rng = random.Random(SEED)
    content = write_photo(tmp_path / "content.png", 0, (480, 360))

    def stylize(index: int) -> tuple[subprocess.Popen, Path, Path]:
        out, log = tmp_path / f"out{index}.png", tmp_path / f"log{index}.txt"
        argv = ["stylize", "--method", "fast", content, "-o", out, "--model", "vangogh-bedroom"]
        return impasto(argv, log), out, log

    # 1. While the image is written.
    process, out, log = stylize(0)
    until_written = wait_for(process, writing(out), log)
    assert kill_after(process, rng.uniform(0.0, 0.03), log) == -signal.SIGKILL
    check_image(out, -signal.SIGKILL, log)
    assert_swept(out, process.pid)
    # 2, 3. Before the write: loading torch and the model, running the network.
    for index in (1, 2):
        process, out, log = stylize(index)
        code = kill_after(process, until_written * rng.uniform(0.1, 1.0), log)
        check_image(out, code, log)
        assert_swept(out, process.pid)


def test_training_killed_at_random_moments_resumes_bit_for_bit_and_sweeps_its_temp_files(
    tmp_path,
):
    rng = random.Random(SEED + 1)
    for i in range(4):
        write_photo(tmp_path / "photos" / f"{i}.png", i, (40, 32))
    write_photo(tmp_path / "style.png", 99, (48, 48))
    inputs = ["--style", tmp_path / "style.png", "--data", tmp_path / "photos"]
    settings = [*TRAIN, "--steps", "40", "--checkpoint-every", "1"]

    def train(folder: Path, log: str, *extra: str) -> subprocess.Popen:
        argv = ["train", "fast", *inputs, "-o", folder, *settings, *extra]
        return impasto(argv, tmp_path / log)

    straight = train(tmp_path / "straight", "straight.txt")  # meanwhile, on the other core
    folder = tmp_path / "killed"
    checkpoint = folder / training.CHECKPOINT

    # 1. While a checkpoint is written (once one exists, so there is something to resume).
    first = train(folder, "first.txt")
    until_trained = wait_for(first, checkpoint.exists, tmp_path / "first.txt", every=0.01)
    wait_for(first, writing(checkpoint), tmp_path / "first.txt")
    assert kill_after(first, rng.uniform(0.0, 0.002), tmp_path / "first.txt") == -signal.SIGKILL
    assert not (folder / "config.json").exists()
    left = [path for path in folder.rglob("*.tmp")]
    assert all(f".{first.pid}." in path.name for path in left), left
    # A dead writer's file where only the resume's sweep (no later write) can find it, and a
    # live writer's (this test's pid) that must stay.
    dead = folder / f".notes.txt.{first.pid}.abcdefgh.tmp"
    live = folder / f".notes.txt.{os.getpid()}.abcdefgh.tmp"
    for path in (dead, live):
        path.write_bytes(b"half a file")

    # 2. Resumed, and killed again: while starting, or while training (its 40 steps take about
    # half as long as starting).
    second = train(folder, "second.txt", "--resume")
    kill_after(second, until_trained * rng.uniform(0.3, 1.4), tmp_path / "second.txt")

    # 3. Resumed to the end.
    third = train(folder, "third.txt", "--resume")
    assert third.wait(timeout=LIMIT) == 0, (tmp_path / "third.txt").read_text()
    assert straight.wait(timeout=LIMIT) == 0, (tmp_path / "straight.txt").read_text()
    resumed = load_file(str(folder / "model.safetensors"))
    expected = load_file(str(tmp_path / "straight" / "model.safetensors"))
    assert resumed.keys() == expected.keys()
    assert all(torch.equal(resumed[key], expected[key]) for key in expected)

    assert not any(path.exists() for path in [*left, dead])
    assert live.exists()
    assert [path for path in folder.rglob("*.tmp")] == [live]


def test_export_killed_at_random_moments_leaves_no_partial_file(tmp_path):
    import onnx

    rng = random.Random(SEED + 2)
    # A few seconds into a run of about 20 (loading, tracing), then while the file is written.
    for index, delay in enumerate([rng.uniform(0.5, 4.0), rng.uniform(0.0, 0.02)]):
        out, log = tmp_path / f"m{index}.onnx", tmp_path / f"log{index}.txt"
        process = impasto(["export", "vangogh-bedroom", "--format", "onnx", "-o", out], log)
        if index == 1:
            wait_for(process, writing(out), log)
        code = kill_after(process, delay, log)
        if index == 1:
            assert code == -signal.SIGKILL, "it finished before the kill"
        if code == 0:
            assert out.exists(), log.read_text()
        if out.exists():  # whole: it parses and checks
            onnx.checker.check_model(onnx.load(str(out)))
        assert_swept(out, process.pid)
