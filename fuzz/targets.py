"""The fuzz targets: feed one input to a loader; only impasto's own errors may come out.

Each target returns True when the loader accepted the input (and what it returned is sane),
False when it refused it with :class:`impasto.errors.ImpastoError`; any other exception is a
bug and propagates, as does an accepted input whose result breaks the loader's promises.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import torch

from impasto.errors import ImpastoError
from impasto.images import load_image
from impasto.methods.fast import FastConfig, FastRunner, load_model
from impasto.model_folder import read_method

from .seeds import unpack_folder

IMAGE_MAX_PIXELS = 1_000_000  # small cap: a fuzzer's huge headers are refused quickly

_scratch = Path(
    tempfile.mkdtemp(prefix="impasto-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
)
atexit.register(shutil.rmtree, _scratch, True)


class BrokenPromise(AssertionError):
    """A loader accepted an input but returned something it promises never to return."""


def image_target(data: bytes) -> bool:
    """load_image on ``data`` written to a file; True when it was accepted."""
    path = _scratch / "input"
    path.write_bytes(data)
    try:
        loaded = load_image(path, max_pixels=IMAGE_MAX_PIXELS)
    except ImpastoError:
        return False
    rgb, alpha = loaded.rgb, loaded.alpha
    if rgb.dtype != torch.float32 or rgb.dim() != 4 or rgb.shape[:2] != (1, 3):
        raise BrokenPromise(f"rgb has dtype {rgb.dtype} and shape {tuple(rgb.shape)}")
    if rgb.shape[2] * rgb.shape[3] > IMAGE_MAX_PIXELS or rgb.numel() == 0:
        raise BrokenPromise(f"rgb of shape {tuple(rgb.shape)} passed the pixel cap")
    if not bool(torch.isfinite(rgb).all()) or rgb.min() < 0 or rgb.max() > 1:
        raise BrokenPromise("rgb values outside [0, 1]")
    if alpha is not None and (
        alpha.shape != (1, 1, *rgb.shape[2:]) or alpha.min() < 0 or alpha.max() > 1
    ):
        raise BrokenPromise(f"alpha of shape {tuple(alpha.shape)} or values outside [0, 1]")
    return True


def model_target(data: bytes) -> bool:
    """read_method, then ``stylize --method fast`` as the library runs it (load_model, then
    the checked run on a small image), on ``data`` unpacked into a model folder; what runs
    must give finite values in [0, 1] of the input's shape. True when it ran."""
    folder = _scratch / "model"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name, content in unpack_folder(data).items():
        (folder / name).write_bytes(content)
    try:
        read_method(folder)
    except ImpastoError:
        pass
    try:
        runner = FastRunner(FastConfig(model=str(folder), device="cpu"), load_model(folder))
        out = runner.checked_run(torch.rand(1, 3, 16, 16)).image
    except ImpastoError:
        return False
    if out.shape != (1, 3, 16, 16) or not bool(torch.isfinite(out).all()):
        raise BrokenPromise(f"a model ran to shape {tuple(out.shape)} or non-finite values")
    if out.min() < 0 or out.max() > 1:
        raise BrokenPromise("a model ran to values outside [0, 1]")
    return True


TARGETS = {"image": image_target, "model": model_target}


def short_run(kind: str, count: int, seed: int = 0) -> tuple[int, list[tuple[int, BaseException]]]:
    """``count`` deterministic mutations of the seeds through the ``kind`` target: the number of
    inputs the loader accepted, and (index, exception) for every input that broke a promise."""
    from . import mutate, seeds

    seed_inputs = seeds.image_seeds() if kind == "image" else seeds.model_seeds()
    mutator = mutate.mutate_image if kind == "image" else mutate.mutate_model
    target = TARGETS[kind]
    accepted, failures = 0, []
    for index, data in enumerate(mutate.mutations(seed_inputs, count, mutator, seed)):
        try:
            accepted += bool(target(data))
        except Exception as error:  # noqa: BLE001 - every escape is a finding
            failures.append((index, error))
    return accepted, failures
