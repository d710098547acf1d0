"""Hostile and odd input (issue "Hardening"): each case ends in one clear line, exit code 2 and
nothing written, or works. The cases the issue reported one by one; the generated corpus of
bad input is tests/test_bad_input_corpus.py, the fuzz run tests/test_fuzz.py."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import altered_model, no_hang, small_photo
from helpers import error_line as one_error_line
from PIL import Image

import impasto
from impasto.cli import main as cli
from impasto.methods.registry import METHODS
from impasto.provenance import read_record

ASSETS = Path(impasto.__file__).resolve().parent / "assets"
QUICK = {
    "gatys": ["--backbone", "tiny", "--size", "40", "--steps", "2"],
    "fast": ["--model", "vangogh-bedroom"],
    "adain": ["--size", "40"],
    "wct": ["--size", "40"],
    "photo": ["--size", "40"],
    "color": [],
    "diffusion": ["--size", "40", "--steps", "2"],
}


def run(capsys, *argv, seconds: int = 30):
    with no_hang(seconds):
        code = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.fixture
def photo(tmp_path) -> Path:
    return small_photo(tmp_path)


def stylize(method: str, content, out, style=ASSETS / "vangogh_bedroom_in_arles.jpg"):
    styles = [style] if METHODS[method].takes_styles else []
    return ["stylize", "--method", method, content, *styles, "-o", out, *QUICK[method]]


# --------------------------------------------------------------------------- not regular files


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_pipe_or_a_device_as_input_is_refused_not_waited_on(capsys, tmp_path, method, kind):
    if kind == "fifo":
        odd = tmp_path / "pipe.png"
        os.mkfifo(odd)
    else:
        odd = Path("/dev/zero")
    out = tmp_path / "out.png"
    code, err = run(capsys, *stylize(method, odd, out))
    assert code == 2 and "not a regular file" in one_error_line(err)
    assert not out.exists()


def test_a_pipe_as_style_image_is_refused(capsys, tmp_path, photo):
    odd = tmp_path / "style.png"
    os.mkfifo(odd)
    code, err = run(capsys, *stylize("color", photo, tmp_path / "out.png", style=odd))
    assert code == 2 and "not a regular file" in one_error_line(err)


@pytest.mark.parametrize("role", ["input", "output", "output folder"])
def test_a_symlink_loop_is_one_line(capsys, tmp_path, photo, role):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    content, out = photo, tmp_path / "out.png"
    if role == "input":
        content = tmp_path / "a"
    elif role == "output":
        out = tmp_path / "a"
    else:
        out = tmp_path / "a" / "out.png"
    code, err = run(capsys, *stylize("color", content, out))
    assert code == 2, err
    assert "a" in one_error_line(err)
    assert not (tmp_path / "out.png").exists()


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("command", ["stylize", "train", "compare"])
def test_a_seed_beyond_64_bits_is_one_line(capsys, tmp_path, photo, command):
    huge = str(2**64)
    style = ASSETS / "vangogh_bedroom_in_arles.jpg"
    argv = {
        "stylize": stylize("gatys", photo, tmp_path / "o.png") + ["--seed", huge],
        "train": ["train", "fast", "--style", style, "--data", photo.parent, "-o",
                  tmp_path / "m", "--seed", huge],
        "compare": ["compare", photo, style, "--grid-out", tmp_path / "s.png", "--seed", huge],
    }[command]  # fmt: skip
    code, err = run(capsys, *argv)
    assert code == 2 and "--seed" in one_error_line(err)
    assert not any(p.name in ("o.png", "m", "s.png") for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--style-weight", "1e308"], "not a finite number"),
        (["--content-weight", "1e308", "--init", "noise"], "not a finite number"),
    ],
)
def test_weights_that_overflow_the_loss_are_an_error_not_a_silent_copy(capsys, tmp_path, photo,
                                                                        extra, needle):  # fmt: skip
    out = tmp_path / "out.png"
    code, err = run(capsys, *stylize("gatys", photo, out), *extra)
    assert code == 2 and needle in one_error_line(err)
    assert not out.exists()


@pytest.mark.parametrize("method", ["gatys", "color"])
def test_style_blend_weights_with_an_infinite_sum_are_refused(capsys, tmp_path, photo, method):
    style = ASSETS / "vangogh_bedroom_in_arles.jpg"
    out = tmp_path / "out.png"
    argv = stylize(method, photo, out)
    argv.insert(argv.index("-o"), style)  # a second style image
    code, err = run(capsys, *argv, "--style-blend", "1e308", "1e308")
    assert code == 2 and "--style-blend" in one_error_line(err)
    assert not out.exists()


# --------------------------------------------------------------------------- model folders


def broken_model(tmp_path: Path, config=None, metadata=None, weights=None) -> Path:
    return altered_model(tmp_path / "model", config, metadata, weights)


def network_config(**network) -> str:
    base = {"channels": 16, "residual_blocks": 5, "padding": "reflect", "edge_kernel": 9}
    return json.dumps({"format": "impasto-model", "format_version": 1, "method": "fast",
                       "network": {**base, **network}})  # fmt: skip


DEEP = "[" * 200_000 + "]" * 200_000


@pytest.mark.parametrize(
    "kind, needle",
    [
        ("channels Infinity", "channels"),
        ("a million residual blocks", "residual_blocks"),
        ("channels as text", "channels"),
        ("config nested 200,000 deep", "nested too deeply"),
        ("metadata nested 200,000 deep", "nested too deeply"),
        ("NaN weights", "not finite"),
        ("a network far larger than its weights", "do not fit the network"),
        ("format_version as text", "'format_version' must be a whole number"),
        ("weights that overflow to NaN", "not finite numbers"),
    ],
)
def test_an_untrusted_model_folder_is_checked_before_anything_is_built(capsys, tmp_path, photo,
                                                                       kind, needle):  # fmt: skip
    def nan(state):
        return {k: torch.full_like(v, float("nan")) for k, v in state.items()}

    def overflowing(state):  # finite weights whose activations reach infinity, then NaN
        return {k: v * 1e30 if k.startswith("encoder.0") else v for k, v in state.items()}

    folder = {
        "channels Infinity": lambda: broken_model(
            tmp_path, config=network_config().replace('"channels": 16', '"channels": Infinity')
        ),
        "a million residual blocks": lambda: broken_model(
            tmp_path, config=network_config(residual_blocks=1_000_000)
        ),
        "channels as text": lambda: broken_model(tmp_path, config=network_config(channels="16")),
        "config nested 200,000 deep": lambda: broken_model(
            tmp_path, config='{"format": "impasto-model", "network": ' + DEEP + "}"
        ),
        "metadata nested 200,000 deep": lambda: broken_model(tmp_path, metadata=DEEP),
        "NaN weights": lambda: broken_model(tmp_path, weights=nan),
        "a network far larger than its weights": lambda: broken_model(
            tmp_path, config=network_config(channels=256, residual_blocks=32)
        ),
        "format_version as text": lambda: broken_model(
            tmp_path,
            config=network_config().replace('"format_version": 1', '"format_version": "1"'),
        ),
        "weights that overflow to NaN": lambda: broken_model(tmp_path, weights=overflowing),
    }[kind]()
    out = tmp_path / "out.png"
    started = time.perf_counter()
    code, err = run(capsys, "stylize", "--method", "fast", "--model", folder, photo, "-o", out)
    assert code == 2 and needle in one_error_line(err)
    assert time.perf_counter() - started < 10  # refused up front, not after building
    assert not out.exists()


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize(
    "signum, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")]
)
def test_a_stopped_stylize_keeps_the_image_so_far_beside_the_output(
    tmp_path, photo, signum, code, word
):
    out = tmp_path / "out.png"
    style = ASSETS / "vangogh_bedroom_in_arles.jpg"
    argv = [
        sys.executable,
        "-m",
        "impasto",
        "stylize",
        str(photo),
        str(style),
        "-o",
        str(out),
        "--backbone",
        "tiny",
        "--size",
        "48",
        "--steps",
        "100000",
    ]
    # A shell's background job inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: give the child the default, as a terminal's Ctrl-C finds it.
    process = subprocess.Popen(
        argv,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    line = ""
    while "scale 1/1" not in line and time.monotonic() < deadline:  # wait until it works
        line = process.stderr.readline()
    process.send_signal(signum)
    rest = process.communicate(timeout=60)[1]
    assert process.returncode == code, rest
    last = rest.strip().splitlines()[-1]
    kept = tmp_path / "out.partial.png"
    assert last.startswith(f"impasto: {word}; kept the image so far (step ") and str(kept) in last
    assert not out.exists()  # the output itself is only ever a finished image
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial.png", "photo.png"]
    record = read_record(kept)
    assert record["method"] == "gatys" and record["step"] >= 1
    assert impasto.load_image(kept).rgb.shape == (1, 3, 36, 48)  # the size asked for: --size 48


# --------------------------------------------------------------------------- odd shapes


@pytest.mark.parametrize("size", [(1, 5000), (5000, 1)])
@pytest.mark.parametrize("role", ["content", "style"])
def test_a_one_pixel_thin_image_is_refused_by_gatys_with_the_minimum(capsys, tmp_path, photo,
                                                                    size, role):  # fmt: skip
    from PIL import Image

    thin = tmp_path / "thin.png"
    Image.new("RGB", size, "red").save(thin)
    out = tmp_path / "out.png"
    argv = stylize("gatys", thin, out) if role == "content" else stylize("gatys", photo, out, thin)
    code, err = run(capsys, *argv)
    line = one_error_line(err)
    assert code == 2 and "too thin" in line and "at least 16" in line
    assert not out.exists()


@pytest.mark.parametrize("size", [(1, 5000), (5000, 1)])
def test_a_one_pixel_thin_image_is_refused_or_recoloured_by_the_other_methods(capsys, tmp_path,
                                                                             size):  # fmt: skip
    from PIL import Image

    thin = tmp_path / "thin.png"
    Image.new("RGB", size, "red").save(thin)
    code, err = run(capsys, *stylize("fast", thin, tmp_path / "f.png"))
    assert code == 2 and "at least 16 pixels" in one_error_line(err)
    code, err = run(capsys, *stylize("color", thin, tmp_path / "c.png"))  # no network: works
    assert code == 0, err
    assert impasto.load_image(tmp_path / "c.png").rgb.shape[-2:] == (size[1], size[0])


class NotATensor:
    """A class a pickle can name: loading it would run this module's code."""


def test_a_pickle_with_objects_is_refused_without_advice_to_unpickle_it(capsys, tmp_path, photo):
    evil = tmp_path / "weights.pth"
    torch.save({"layer": NotATensor()}, evil)
    out = tmp_path / "out.png"
    argv = stylize("gatys", photo, out) + ["--backbone", "vgg19", "--weights", evil]
    code, err = run(capsys, *argv)
    line = one_error_line(err)
    assert code == 2 and "pickled Python objects" in line
    assert "weights_only" not in line and "trust" not in line and "\x1b" not in line
    assert not out.exists()


def test_a_missing_clip_weights_file_is_named_as_given(capsys, tmp_path, photo):
    style = ASSETS / "vangogh_bedroom_in_arles.jpg"
    missing = tmp_path / "missing.pt"
    code, err = run(capsys, "evaluate", photo, "--content", photo, "--style", style,
                    "--metrics", "clip_style", "--clip-weights", missing)  # fmt: skip
    line = one_error_line(err)
    assert code == 2 and str(missing) in line and "file not found" in line


@pytest.mark.parametrize("opset, needle", [("0", "at least 18"), ("999", "cannot write it")])
def test_an_opset_the_exporter_cannot_write_is_one_line_and_no_file(capsys, tmp_path, opset,
                                                                    needle):  # fmt: skip
    from impasto.methods import fast
    from impasto.model_folder import save_model_folder

    network = fast.TransformNet(fast.NetworkConfig(channels=4, residual_blocks=1))
    folder = save_model_folder(tmp_path / "m", "fast", {"channels": 4, "residual_blocks": 1},
                               network.state_dict(), {})  # fmt: skip
    out = tmp_path / "m.onnx"
    code, err = run(capsys, "export", folder, "-o", out, "--opset", opset, seconds=300)
    assert code == 2 and needle in one_error_line(err)
    assert not out.exists() and not list(tmp_path.glob(".m.onnx*"))


@pytest.mark.parametrize("backbone", ["vgg19", "efficientnet-lite0", "tiny"])
def test_weights_with_a_junk_key_are_one_short_line(capsys, tmp_path, photo, backbone):
    junk = tmp_path / "junk.pth"
    torch.save({"junk": torch.zeros(1)}, junk)
    out = tmp_path / "out.png"
    code, err = run(
        capsys, *stylize("gatys", photo, out), "--backbone", backbone, "--weights", junk
    )
    line = one_error_line(err)
    assert code == 2 and f"weights do not fit backbone '{backbone}'" in line and len(line) < 300
    assert not out.exists()


@pytest.mark.parametrize(
    "checkpoint, needle",
    [
        ([1, 2, 3], "holds a list"),
        ({"model": {}, "optimizer": {}, "step": 3}, "fingerprint missing"),
        ({"model": {}, "optimizer": {}, "step": 3, "fingerprint": "{not json"}, "not JSON"),
        ({"model": {}, "optimizer": {}, "step": "3", "fingerprint": "{}"}, "not a whole number"),
    ],
)
def test_resume_from_a_malformed_checkpoint_is_one_line(capsys, tmp_path, photo, checkpoint,
                                                        needle):  # fmt: skip
    folder = tmp_path / "model"
    (folder / "training").mkdir(parents=True)
    torch.save(checkpoint, folder / "training" / "checkpoint.pt")
    style = ASSETS / "vangogh_bedroom_in_arles.jpg"
    small = ["--size", "24", "--batch", "2", "--channels", "4", "--residual-blocks", "1"]
    argv = ["train", "fast", "--style", style, "--data", photo.parent, "-o", folder, "--resume"]
    code, err = run(capsys, *argv, *small, "--backbone", "tiny", "--steps", "3", "--quiet")
    assert code == 2 and needle in one_error_line(err)
    assert not (folder / "model.safetensors").exists()


# --------------------------------------------------------------------------- image files


def png(width: int, height: int, scanlines: bytes, interlace: int = 0) -> bytes:
    """An 8-bit RGB PNG of this header whose IDAT holds ``scanlines`` (filter bytes included)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b""))  # fmt: skip


def adam7_scanlines(width: int, height: int) -> bytes:
    """Scanlines of an interlaced image of grey 0x80 pixels, found by visiting every pixel
    (not by the row arithmetic under test)."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2))  # fmt: skip
    data = b""
    for x0, y0, dx, dy in passes:
        for _ in range(y0, height, dy):
            pixels = len(range(x0, width, dx))
            if pixels:
                data += b"\x00" + b"\x80" * 3 * pixels
    return data


def test_a_png_with_less_data_than_its_header_promises_is_refused(capsys, tmp_path):
    short = tmp_path / "short.png"  # the 8000 x 7999 file with four rows of data
    short.write_bytes(png(8000, 7999, (b"\x00" + b"\x80" * 3 * 8000) * 4))
    assert short.stat().st_size < 200
    out = tmp_path / "out.png"
    code, err = run(
        capsys,
        "stylize",
        "--method",
        "color",
        short,
        ASSETS / "vangogh_bedroom_in_arles.jpg",
        "-o",
        out,
    )
    line = one_error_line(err)
    assert code == 2 and "truncated" in line and "short.png" in line
    assert not out.exists()


@pytest.mark.parametrize("width, height", [(1, 1), (3, 5), (9, 17), (16, 16), (33, 2)])
def test_complete_interlaced_pngs_load_and_one_byte_short_do_not(tmp_path, width, height):
    scanlines = adam7_scanlines(width, height)
    whole = tmp_path / "whole.png"
    whole.write_bytes(png(width, height, scanlines, interlace=1))
    loaded = impasto.load_image(whole).rgb
    assert loaded.shape == (1, 3, height, width)
    assert torch.allclose(loaded, torch.full_like(loaded, 0x80 / 255))
    cut = tmp_path / "cut.png"
    cut.write_bytes(png(width, height, scanlines[:-1], interlace=1))  # one byte short
    with pytest.raises(impasto.InputError, match="truncated"):
        impasto.load_image(cut)


def garbled_tiff(tmp_path: Path, compression: str) -> Path:
    """A TIFF whose compressed strip is overwritten with a fixed garbage pattern."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "TIFF", compression=compression)
    data = bytearray(buffer.getvalue())
    tags = Image.open(io.BytesIO(bytes(data))).tag_v2
    start, length = tags[273][0], tags[279][0]
    data[start + 2 : start + length - 2] = bytes((i * 37 + 11) % 256 for i in range(length - 4))
    path = tmp_path / f"garbled_{compression}.tif"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("compression", ["tiff_lzw", "tiff_adobe_deflate", "jpeg"])
def test_a_malformed_tiff_is_one_line_though_libtiff_prints_past_python(
    capfd, tmp_path, compression
):
    # capfd sees file descriptor 2, where libtiff writes directly (capsys would miss it)
    bad = garbled_tiff(tmp_path, compression)
    out = tmp_path / "out.png"
    with no_hang():
        code = cli.main(["stylize", "--method", "color", str(bad),
                         str(ASSETS / "vangogh_bedroom_in_arles.jpg"), "-o", str(out)])  # fmt: skip
    line = one_error_line(capfd.readouterr().err)
    assert code == 2 and "corrupt or truncated" in line and bad.name in line
    assert not out.exists()


def test_the_pixel_cap_holds_for_training_photos_after_the_resize_too(tmp_path):
    from impasto.photos import PhotoSet

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (64, 48), (90, 120, 200)).save(folder / "normal.png")
    Image.new("RGB", (2000, 1), (200, 10, 10)).save(folder / "thread.png")  # 2,000 pixels
    # At a short side of 64 the thread would become 64 x 128,000 = 8.2 million pixels.
    photos = PhotoSet.load(folder, 64, max_pixels=1_000_000)
    assert photos.names == ["normal.png"] and photos.skipped == ["thread.png"]
    assert all(p.shape[-2] * p.shape[-1] <= 1_000_000 for p in photos.photos)


def test_train_offline_without_vgg19_names_no_flag_train_does_not_have(
    capsys, tmp_path, photo, monkeypatch
):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    data = tmp_path / "photos"
    data.mkdir()
    shutil.copy(photo, data / "a.png")
    code, err = run(
        capsys,
        "train",
        "fast",
        "--style",
        ASSETS / "vangogh_bedroom_in_arles.jpg",
        "--data",
        data,
        "-o",
        tmp_path / "model",
        "--backbone",
        "vgg19",
        "--steps",
        "1",
    )
    line = one_error_line(err)
    assert code == 2 and "impasto download vgg19" in line
    assert "--weights" not in line  # stylize's option; train has none


def test_a_reader_that_leaves_early_is_not_an_internal_error():
    # `impasto recommend | head`: the pipe closes while impasto writes. Forced here by a
    # command whose output meets a closed pipe, in a child process with a real stdout pipe.
    script = (
        "import sys\n"
        "from impasto.cli import main, recommend\n"
        "def closed(args, terminal):\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "recommend.run = closed\n"
        "sys.exit(main.main(['recommend']))\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 141, child.stderr
    assert child.stderr == ""
