"""Helpers shared by the tests: run a command in-process, read its one error line, make
small images, the cheapest settings of each method, and turn a hang into a failure."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import impasto
from impasto.cli import main as cli
from impasto.methods.registry import METHODS, load_method
from impasto.model_folder import MODELS_DIR, shipped_models

ASSETS = Path(impasto.__file__).resolve().parent / "assets"


class Hang(BaseException):  # not caught by the CLI as an internal error
    pass


@contextmanager
def no_hang(seconds: int = 20):
    """Turn a hang into a failure instead of a stuck test suite."""

    def alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """The CLI on ``argv`` in this process: (exit code, stdout, stderr)."""
    code = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    """The one line of ``err``, which must be impasto's error line with no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("impasto: error: ") and "Traceback" not in err, err
    return lines[0]


def write_image(path: Path, seed: int, size=(40, 32)) -> Path:
    """A random RGB image of ``size`` (width, height) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def small_photo(folder: Path) -> Path:
    """The bundled photo at 64 x 48 as ``folder/photo.png``."""
    image = impasto.load_image(ASSETS / "washington_monument.jpg").rgb
    path = folder / "photo.png"
    impasto.save_image(torch.nn.functional.interpolate(image, size=(48, 64)), path)
    return path


def altered_model(folder: Path, config=None, metadata=None, weights=None, drop=()) -> Path:
    """A copy of the shipped vangogh-bedroom model at ``folder``, with ``config.json`` or
    ``metadata.json`` replaced by the given text, its weights passed through ``weights(state)``,
    and the files named in ``drop`` removed."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(MODELS_DIR / "vangogh-bedroom", folder)
    if config is not None:
        (folder / "config.json").write_text(config)
    if metadata is not None:
        (folder / "metadata.json").write_text(metadata)
    if weights is not None:
        state = load_file(folder / "model.safetensors")
        save_file(weights(state), folder / "model.safetensors")
    for name in drop:
        (folder / name).unlink()
    return folder


def quick_options(name: str) -> dict:
    """Options that make method ``name`` run in well under a second, from its config's fields."""
    fields = {field.name for field in dataclasses.fields(load_method(name).config_class)}
    wanted = {"backbone": "tiny", "steps": 3, "size": 32, "device": "cpu", "seed": 3}
    options = {key: value for key, value in wanted.items() if key in fields}
    if METHODS[name].takes_model:
        options["model"] = shipped_models(name)[0]
    return options


def add_tone(container, codec: str = "aac"):
    """A mono 48 kHz audio stream on the PyAV output ``container``, for :func:`write_tone`
    (streams must all be added before anything is muxed)."""
    audio = container.add_stream(codec, 48000)
    audio.layout = "mono"
    return audio


def write_tone(container, audio, seconds: float) -> None:
    """Encode and mux ``seconds`` of a 440 Hz sine into ``audio`` (from :func:`add_tone`)."""
    import av

    time = np.arange(round(48000 * seconds)) / 48000
    samples = (0.3 * np.sin(2 * np.pi * 440 * time)).astype(np.float32)[None]
    sound = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
    sound.sample_rate, sound.pts = 48000, 0
    container.mux(audio.encode(sound))
    container.mux(audio.encode(None))


@contextmanager
def benchmark_script(name: str):
    """benchmarks/NAME.py loaded as a module, registered in sys.modules while in use (the
    dataclasses of some scripts look their module up there)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"impasto_benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
