"""The command line of fast style transfer: train (with a real kill and resume), stylize
--method fast (files, folders, bad inputs) and export to ONNX (checked in onnxruntime)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import error_line, write_image
from helpers import run_cli as run
from PIL import Image
from safetensors.torch import load_file

from impasto import training
from impasto.methods import fast
from impasto.model_folder import save_model_folder
from impasto.nn import layers

SMALL = {"channels": 4, "residual_blocks": 1, "padding": "reflect"}


@pytest.fixture
def data(tmp_path):
    for i in range(4):
        write_image(tmp_path / "photos" / f"{i}.png", i)
    write_image(tmp_path / "photos" / "sub" / "x.jpg", 7, size=(50, 30))
    (tmp_path / "photos" / "bad.png").write_bytes(b"broken")
    write_image(tmp_path / "style.png", 99, size=(48, 48))
    return tmp_path


@pytest.fixture
def model(tmp_path) -> Path:
    torch.manual_seed(0)
    network = fast.TransformNet(fast.NetworkConfig(**SMALL))
    return save_model_folder(tmp_path / "model", "fast", SMALL, network.state_dict(), {})


TRAIN = ["--size", "24", "--batch", "2", "--channels", "4", "--residual-blocks", "1",
         "--backbone", "tiny", "--device", "cpu", "--preview-every", "0"]  # fmt: skip


# --------------------------------------------------------------------------- train


def test_train_writes_a_model_and_reports_skipped_files(capsys, data):
    code, _, err = run(capsys, "train", "fast", "--style", data / "style.png", "--data",
                       data / "photos", "-o", data / "m", "--steps", "3", *TRAIN,
                       "--data-note", "my own photos, CC0")  # fmt: skip
    assert code == 0, err
    metadata = json.loads((data / "m" / "metadata.json").read_text())
    assert metadata["data"]["terms"] == "my own photos, CC0"
    assert metadata["style"]["file"] == "style.png" and len(metadata["style"]["sha256"]) == 64
    assert "skipped 1 unreadable or too large file(s) of 6 (first: bad.png)" in err
    assert "wrote" in err and "images/s" in err
    assert (data / "m" / "config.json").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "--steps: 0 is below the minimum 1"),
        (["--padding", "circular"], "invalid choice"),
        (["--data", "nowhere"], "training data folder not found"),
    ],
)
def test_train_bad_options_are_one_line(capsys, data, argv, message):
    base = ["train", "fast", "--style", data / "style.png", "--data", data / "photos", "-o",
            data / "m", *TRAIN]  # fmt: skip
    code, _, err = run(capsys, *base, *argv)
    assert code == 2
    assert message in error_line(err)
    assert not (data / "m" / "config.json").exists()


def test_train_refuses_to_overwrite_a_run_without_resume(capsys, data):
    args = ["train", "fast", "--style", data / "style.png", "--data", data / "photos", "-o",
            data / "m", "--steps", "2", *TRAIN]  # fmt: skip
    assert run(capsys, *args)[0] == 0
    code, _, err = run(capsys, *args)
    assert code == 2 and "--resume" in error_line(err)


def cli_command(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "impasto", "train", "fast", "--style", str(data / "style.png"),
            "--data", str(data / "photos"), "-o", str(out), "--steps", str(steps),
            "--checkpoint-every", "5", *TRAIN, *extra]  # fmt: skip


def child_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def wait_for_checkpoint(process: subprocess.Popen, folder: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (folder / fast.CHECKPOINT).exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)


def test_killed_training_resumes_to_the_weights_of_an_uninterrupted_run(data):
    steps = 60
    env = child_env()
    killed = subprocess.Popen(cli_command(data, data / "killed", steps), env=env,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_checkpoint(killed, data / "killed")
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL  # it really was killed mid-run
    stopped_at = int(training.read_checkpoint(data / "killed")["step"])
    assert 5 <= stopped_at < steps
    assert not (data / "killed" / "config.json").exists()

    resumed = subprocess.run(cli_command(data, data / "killed", steps, "--resume"), env=env,
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run(cli_command(data, data / "straight", steps), env=env,
                              capture_output=True, text=True)  # fmt: skip
    assert straight.returncode == 0, straight.stderr
    a = load_file(str(data / "killed" / "model.safetensors"))
    b = load_file(str(data / "straight" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "sigterm"])  # fmt: skip
def test_ctrl_c_or_sigterm_saves_a_checkpoint_and_exits_with_the_signals_code(data, stop, code):
    process = subprocess.Popen(cli_command(data, data / "m", 100_000), env=child_env(),
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_checkpoint(process, data / "m")
    process.send_signal(stop)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert "checkpoint saved" in err and "--resume" in err
    assert "Traceback" not in err
    step = int(training.read_checkpoint(data / "m")["step"])
    assert 5 <= step < 100_000


# --------------------------------------------------------------------------- stylize


def test_stylize_one_file(capsys, tmp_path, model):
    content = write_image(tmp_path / "c.png", 1, size=(37, 29))
    code, _, err = run(capsys, "stylize", "--method", "fast", "--model", model, content, "-o",
                       tmp_path / "out.jpg")  # fmt: skip
    assert code == 0, err
    with Image.open(tmp_path / "out.jpg") as image:
        assert image.size == (37, 29)
    assert "fast, model model on cpu" in err


def test_stylize_a_folder_into_a_folder_skipping_bad_files(capsys, tmp_path, model):
    for i in range(3):
        write_image(tmp_path / "in" / f"{i}.png", i, size=(32, 24))
    write_image(tmp_path / "in" / "deep" / "odd.jpg", 5, size=(20, 44))
    (tmp_path / "in" / "bad.png").write_bytes(b"junk")
    code, _, err = run(capsys, "stylize", "--method", "fast", "--model", model, tmp_path / "in",
                       "-o", tmp_path / "out", "--batch", "2")  # fmt: skip
    assert code == 0, err
    written = sorted(p.relative_to(tmp_path / "out").as_posix()
                     for p in (tmp_path / "out").rglob("*.*"))  # fmt: skip
    assert written == ["0.png", "1.png", "2.png", "deep/odd.jpg"]
    assert "skipped 1 bad file(s): bad.png" in err


def test_batched_and_single_images_give_the_same_result(tmp_path, model):
    loaded = fast.load_model(model)
    stylizer = fast.Stylizer(loaded, "cpu")
    torch.manual_seed(2)
    images = torch.rand(3, 3, 24, 32)
    together = stylizer(images)
    alone = torch.cat([stylizer(images[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "needs a model (--model"),
        (["--model", "missing-model"], "model not found"),
        (["--model", "MODEL", "--style-weight", "5"], "--style-weight: not an option of"),
        (["--model", "MODEL", "--precision", "fp16"], "fp16 needs a GPU"),
        (["--model", "MODEL", "--preserve-color", "sepia"], "invalid choice: 'sepia'"),
    ],
)  # fmt: skip
def test_stylize_fast_bad_options_are_one_line(capsys, tmp_path, model, extra, message):
    content = write_image(tmp_path / "c.png", 1)
    extra = [str(model) if item == "MODEL" else item for item in extra]
    code, _, err = run(capsys, "stylize", "--method", "fast", *extra, content, "-o",
                       tmp_path / "out.png")  # fmt: skip
    assert code == 2
    assert message in error_line(err)
    assert not (tmp_path / "out.png").exists()


def test_stylize_fast_bad_single_file_is_one_line(capsys, tmp_path, model):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"junk")
    code, _, err = run(capsys, "stylize", "--method", "fast", "--model", model, bad, "-o",
                       tmp_path / "out.png")  # fmt: skip
    assert code == 2 and "bad.png" in error_line(err)


def test_stylize_fast_several_inputs_need_a_folder(capsys, tmp_path, model):
    write_image(tmp_path / "in" / "a.png", 1)
    b = write_image(tmp_path / "b.png", 2)
    code, _, err = run(
        capsys,
        "stylize",
        "--method",
        "fast",
        "--model",
        model,
        tmp_path / "in",
        b,
        "-o",
        tmp_path / "out.png",
    )
    assert code == 2 and "need an output folder" in error_line(err)


def test_a_style_image_given_to_fast_by_mistake_is_named_as_such(capsys, tmp_path, model):
    photo, painting = write_image(tmp_path / "a.png", 1), write_image(tmp_path / "b.png", 2)
    code, _, err = run(
        capsys, "stylize", "--model", model, photo, painting, "-o", tmp_path / "o.png"
    )
    line = error_line(err)
    assert code == 2 and "takes no style image: the style is in the model" in line
    assert "need an output folder" not in line and not (tmp_path / "o.png").exists()


def test_model_without_method_means_fast(capsys, tmp_path, model):
    content = write_image(tmp_path / "c.png", 1, size=(24, 20))
    code, _, err = run(capsys, "stylize", "--model", model, content, "-o", tmp_path / "out.png")
    assert code == 0, err
    assert "— fast, model model on cpu" in err and err.count("\n") == 1  # nothing else said
    assert Image.open(tmp_path / "out.png").size == (24, 20)
    code, _, err = run(
        capsys,
        "stylize",
        "--method",
        "gatys",
        "--model",
        model,
        content,
        write_image(tmp_path / "s.png", 2),
        "-o",
        tmp_path / "g.png",
    )
    assert code == 2 and "--model: not an option of --method gatys" in error_line(err)


def test_a_folder_run_says_the_time_per_image_and_the_images_per_second(capsys, tmp_path, model):
    for i in range(3):
        write_image(tmp_path / "in" / f"{i}.png", i, size=(24, 20))
    code, _, err = run(
        capsys, "stylize", "--model", model, tmp_path / "in", "-o", tmp_path / "out", "--quiet"
    )
    assert code == 0, err
    match = re.search(
        r"\(3 images\) in ([\d.]+) s: ([\d.e+-]+) s per image, ([\d.e+-]+) images/s", err
    )
    assert match, err
    seconds, each, rate = map(float, match.groups())
    assert each == pytest.approx(seconds / 3, rel=0.2, abs=0.05)
    assert rate == pytest.approx(1 / each, rel=0.01)


@pytest.mark.parametrize(
    "choice, pil_format", [("jpg", "JPEG"), ("webp", "WEBP"), ("tif", "TIFF"), ("png", "PNG")]
)
def test_format_sets_the_format_of_a_folders_outputs(capsys, tmp_path, model, choice, pil_format):
    write_image(tmp_path / "in" / "a.png", 1, size=(24, 20))
    write_image(tmp_path / "in" / "sub" / "b.jpg", 2, size=(24, 20))
    code, _, err = run(
        capsys,
        "stylize",
        "--model",
        model,
        tmp_path / "in",
        "-o",
        tmp_path / "out",
        "--format",
        choice,
    )
    assert code == 0, err
    written = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*")
    )
    assert written == [f"a.{choice}", f"sub/b.{choice}"]
    for name in written:
        with Image.open(tmp_path / "out" / name) as image:
            assert image.format == pil_format


def test_format_that_contradicts_the_output_file_is_one_line(capsys, tmp_path, model):
    content = write_image(tmp_path / "c.png", 1)
    code, _, err = run(
        capsys, "stylize", "--model", model, content, "-o", tmp_path / "out.png", "--format", "jpg"
    )
    assert code == 2 and "--format jpg does not match the output file" in error_line(err)
    code, _, err = run(
        capsys, "stylize", "--model", model, content, "-o", tmp_path / "o.png", "--format", "gif"
    )
    assert code == 2 and "invalid choice: 'gif'" in error_line(err)


def test_gatys_still_needs_a_style(capsys, tmp_path):
    content = write_image(tmp_path / "c.png", 1)
    code, _, err = run(capsys, "stylize", content, "-o", tmp_path / "out.png")
    assert code == 2 and "STYLE" in error_line(err)


def test_python_api_fast(tmp_path, model):
    import impasto

    content = write_image(tmp_path / "c.png", 3, size=(30, 20))
    result = impasto.stylize(content, method="fast", model=model, preserve_color="luminance")
    assert result.image.shape == (1, 3, 20, 30)
    with pytest.raises(impasto.InputError, match="takes no style images"):
        impasto.stylize(content, content, method="fast", model=model)
    with pytest.raises(impasto.InputError, match="unknown option"):
        impasto.stylize(content, method="fast", model=model, style_weight=3)


# --------------------------------------------------------------------------- export


def test_onnx_export_matches_pytorch_in_onnxruntime(capsys, tmp_path, model):
    import onnxruntime  # in the dev extra: a missing runtime must fail this test, not skip it

    code, _, err = run(capsys, "export", model, "--format", "onnx", "-o", tmp_path / "m.onnx")
    assert code == 0, err
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"),
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    network = fast.load_model(model).network
    torch.manual_seed(3)
    for shape in [(1, 3, 64, 64), (1, 3, 37, 50), (2, 3, 48, 20)]:  # dynamic batch, H, W
        x = torch.rand(*shape)
        (ours,) = session.run(None, {"image": x.numpy()})
        with torch.no_grad():
            expected = network(x).numpy()
        assert ours.shape == shape
        np.testing.assert_allclose(ours, expected, atol=1e-4)  # stated tolerance: 1e-4


def test_exporting_a_network_in_use_leaves_it_as_it_was(tmp_path, model):
    """A Stylizer's network (channels_last, inference kernels, bf16 here) exports, and the
    Stylizer keeps working unchanged: export works on a float32 NCHW copy."""
    from impasto.export import export_onnx

    loaded = fast.load_model(model)
    stylizer = fast.Stylizer(loaded, "cpu", "bf16")
    layers.set_kernels(stylizer.network, "batch_norm", "layout", 8)
    x = torch.rand(1, 3, 40, 24)
    before = stylizer(x)
    export_onnx(stylizer.network, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").stat().st_size > 0
    parameter = next(stylizer.network.parameters())
    assert parameter.dtype == torch.bfloat16
    assert {m.pad_kernel for m in stylizer.network.modules()
            if isinstance(m, layers.PaddedConv2d)} == {"layout"}  # fmt: skip
    assert torch.equal(stylizer(x), before)


@pytest.mark.parametrize(
    "output, message", [("m.pt", "must end in .onnx"), ("nowhere/m.onnx", "does not exist")]
)
def test_export_bad_output_is_one_line(capsys, tmp_path, model, output, message):
    code, _, err = run(capsys, "export", model, "-o", tmp_path / output)
    assert code == 2 and message in error_line(err)


@pytest.mark.parametrize("stop, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_before_training_begins_saves_nothing_and_says_so(data, capsys, monkeypatch, stop,
                                                                 code):  # fmt: skip
    # The signal arrives while the photos are read: no checkpoint exists, none is promised.
    from impasto import training

    def stop_at_once(self, progress):
        self.signal = stop

        def callback(event):
            return False

        return callback

    monkeypatch.setattr(training.StopOnSignals, "wrap", stop_at_once)
    got, _, err = run(capsys, "train", "fast", "--style", data / "style.png", "--data",
                      data / "photos", "-o", data / "m", "--steps", "3", *TRAIN)  # fmt: skip
    assert got == code, err
    assert "stopped before training began; nothing was saved" in err
    assert "checkpoint saved" not in err and "--resume" not in err
    assert not (data / "m" / "training" / "checkpoint.pt").exists()
