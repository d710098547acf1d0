"""Tests for the command line: exit codes, one-line errors, outputs, progress, downloads.

Stylising runs use the random ``tiny`` backbone at 40 px with two steps (well under a second
each). Most tests call ``impasto.cli.main`` in-process; two run the real entry points.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import config, weights
from impasto.cli import args, terminal
from impasto.cli import main as cli
from impasto.errors import InputError
from impasto.methods import gatys

FAST = ["--backbone", "tiny", "--size", "40", "--steps", "2", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def pics(tmp_path):
    """A 50x40 content image and two 32x32 style images (random colours, fixed seed)."""
    rng = np.random.default_rng(0)
    paths = {}
    for name, (width, height) in {
        "content": (50, 40),
        "style": (32, 32),
        "style2": (32, 32),
    }.items():
        path = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        paths[name] = path
    paths["out"] = tmp_path / "out.png"
    return paths


@pytest.fixture
def no_heavy_work(monkeypatch):
    """Make reaching the backbone or the method fail: errors must be found before that."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the CLI went on to heavy work despite a bad input")

    monkeypatch.setattr("impasto.pipeline.prepare", forbidden)
    monkeypatch.setattr("impasto.pipeline.resolve_backbone_name", forbidden)
    monkeypatch.setattr("impasto.pipeline.load_backbone", forbidden)


def run(capsys, *argv):
    code = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str, prefix: str = "impasto: error: ") -> str:
    """The single non-empty stderr line, checked to start with ``prefix``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in err
    return lines[0]


def stylize_args(pics, *extra, content=None, styles=None, out=None):
    styles = styles if styles is not None else [pics["style"]]
    return ["stylize", content or pics["content"], *styles, "-o", out or pics["out"], *FAST, *extra]


def assert_usage_error(capsys, pics, argv, *needles):
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    line = error_line(err)
    for needle in needles:
        assert needle in line, line
    assert not pics["out"].exists()
    return line


# --------------------------------------------------------------------------- bad input files


def _write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _truncated_png(tmp_path: Path) -> Path:
    full = tmp_path / "whole.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    data = full.read_bytes()
    return _write_bytes(tmp_path, "truncated.png", data[: len(data) // 2])


BAD_FILES = {
    "missing": lambda tmp: tmp / "missing.png",
    "directory": lambda tmp: (tmp / "folder.png").mkdir() or tmp / "folder.png",
    "text": lambda tmp: _write_bytes(tmp, "x.png", b"this is not an image\n"),
    "truncated": _truncated_png,
    "random-jpg": lambda tmp: _write_bytes(tmp, "noise.jpg", os.urandom(2048)),
}


@pytest.mark.parametrize("kind", BAD_FILES)
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_image_file_is_one_line_before_any_heavy_work(
    capsys, pics, tmp_path, no_heavy_work, kind, role
):
    bad = BAD_FILES[kind](tmp_path)
    if role == "content":
        argv = stylize_args(pics, content=bad)
    else:
        argv = stylize_args(pics, styles=[pics["style"], bad])
    line = assert_usage_error(capsys, pics, argv, bad.name)
    if kind == "directory":  # a folder of content is a batch; this one holds no image
        assert ("directory" if role == "style" else "no images") in line


def test_image_over_max_pixels(capsys, pics, no_heavy_work):
    assert_usage_error(
        capsys, pics, stylize_args(pics, "--max-pixels", "1000"), "content.png", "pixels"
    )


# --------------------------------------------------------------------------- bad output paths


def test_unknown_output_extension(capsys, pics, no_heavy_work):
    out = pics["out"].with_suffix(".gif")
    assert_usage_error(capsys, pics, stylize_args(pics, out=out), ".gif")
    assert not out.exists()


def test_output_equal_to_content_leaves_content_alone(capsys, pics, no_heavy_work):
    before = pics["content"].read_bytes()
    assert_usage_error(
        capsys, pics, stylize_args(pics, out=pics["content"]), "content.png", "overwrite"
    )
    assert pics["content"].read_bytes() == before


def test_output_equal_to_a_style_is_refused(capsys, pics, no_heavy_work):
    spelled = pics["style"].parent / "." / pics["style"].name
    assert_usage_error(capsys, pics, stylize_args(pics, out=spelled), "overwrite")


def test_output_in_missing_folder(capsys, pics, tmp_path, no_heavy_work):
    out = tmp_path / "no-such-folder" / "out.png"
    assert_usage_error(capsys, pics, stylize_args(pics, out=out), "no-such-folder")
    assert not out.parent.exists()


def test_output_is_a_directory(capsys, pics, tmp_path, no_heavy_work):
    out = tmp_path / "taken.png"
    out.mkdir()
    assert_usage_error(capsys, pics, stylize_args(pics, out=out), "taken.png", "directory")


# --------------------------------------------------------------------------- bad option values


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--size", "0"], ["--size", "0"]),
        (["--size", "9000"], ["--size", "9000"]),
        (["--steps", "0"], ["--steps"]),
        (["--steps", "-1"], ["--steps"]),
        (["--steps", "two"], ["--steps", "two"]),
        (["--style-weight", "-1"], ["--style-weight"]),
        (["--style-weight", "nan"], ["--style-weight", "nan"]),
        (["--content-weight", "lots"], ["--content-weight", "lots"]),
        (["--style-scale", "0"], ["--style-scale"]),
        (["--learning-rate", "1000"], ["--learning-rate"]),
        (["--scales", "0"], ["--scales"]),
        (["--seed", "-3"], ["--seed"]),
        (["--save-every", "-1"], ["--save-every"]),
        (["--preserve-color", "sepia"], ["--preserve-color", "sepia"]),
        (["--backbone", "nope"], ["--backbone", "nope"]),
        (["--optimizer", "sgd"], ["--optimizer", "sgd"]),
        (["--method", "magic"], ["--method", "magic"]),
        (["--frobnicate"], ["--frobnicate"]),
        (["--style"], ["--style"]),  # no abbreviations: --style is not --style-weight
        (["--max-pixels", "0"], ["--max-pixels"]),
        (["--style-blend", "0.5", "0.5"], ["--style-blend", "2", "1 style"]),
        (["--style-layers", "relu1_1:heavy"], ["--style-layers", "heavy"]),
        (["--style-layers", "relu1_1:-1"], ["--style-layers"]),
        (["--style-layers", "relu1_1", "relu1_1:2"], ["--style-layers", "relu1_1"]),
    ],
)
def test_bad_option_value_is_one_line_naming_the_option(
    capsys, pics, no_heavy_work, extra, needles
):
    assert_usage_error(capsys, pics, stylize_args(pics, *extra), *needles)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu(capsys, pics, no_heavy_work):
    assert_usage_error(capsys, pics, stylize_args(pics, "--device", "cuda"), "--device", "cuda")


def test_missing_weights_file(capsys, pics, tmp_path, no_heavy_work):
    missing = tmp_path / "vgg-local.pth"
    assert_usage_error(
        capsys, pics, stylize_args(pics, "--weights", missing), "--weights", "vgg-local.pth"
    )


def test_unknown_style_layer_names_the_layer(capsys, pics):
    assert_usage_error(capsys, pics, stylize_args(pics, "--style-layers", "relu9_9"), "relu9_9")


def test_unknown_content_layer_names_the_layer(capsys, pics):
    assert_usage_error(capsys, pics, stylize_args(pics, "--content-layers", "conv7_7"), "conv7_7")


def test_missing_output_option(capsys, pics):
    code, _, err = run(capsys, "stylize", pics["content"], pics["style"])
    assert code == 2
    assert "-o/--output" in error_line(err)


def test_no_command_prints_the_commands_then_one_error_line(capsys):
    # as argparse does for a missing argument: usage on stderr, exit 2 (a script that forgot
    # the command fails); here the usage comes with every command and its line of help
    code, out, err = run(capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage: impasto")
    assert lines[-1] == "impasto: error: the following arguments are required: COMMAND"
    assert sum(line.startswith("impasto: error") for line in lines) == 1
    for command in cli.COMMANDS:
        name = cli.command_name(command)
        assert re.search(rf"^    {name}\b", err, re.MULTILINE), name
    assert "stylise images with any method" in err and "Traceback" not in err


def test_unknown_command(capsys):
    code, _, err = run(capsys, "paint")
    assert code == 2
    assert "paint" in error_line(err)


# --------------------------------------------------------------------------- valid runs


def test_stylize_writes_png_of_the_requested_size(capsys, pics):
    code, out, err = run(capsys, *stylize_args(pics))
    assert code == 0, err
    with Image.open(pics["out"]) as image:
        assert image.format == "PNG"
        assert image.size == (40, 32)  # 50x40 content, long side 40
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"wrote {pics['out']} (40x32) in ")
    assert last.endswith("tiny on cpu")
    assert out == ""
    assert [p.name for p in pics["out"].parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("suffix", "pil_format"), [(".jpg", "JPEG"), (".webp", "WEBP"), (".tif", "TIFF")]
)
def test_other_output_formats(capsys, pics, suffix, pil_format):
    out = pics["out"].with_suffix(suffix)
    code, _, err = run(capsys, *stylize_args(pics, out=out))
    assert code == 0, err
    with Image.open(out) as image:
        assert image.format == pil_format
        assert image.size == (40, 32)


def test_two_styles_with_blend(capsys, pics):
    argv = stylize_args(pics, "--style-blend", "0.7", "0.3", styles=[pics["style"], pics["style2"]])
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert pics["out"].is_file()


def test_custom_layers_and_local_weights(capsys, pics, tmp_path):
    from impasto.backbones.tiny import TinyBackbone

    local = tmp_path / "tiny.pt"
    torch.save(TinyBackbone(seed=3).state_dict(), local)
    argv = stylize_args(
        pics,
        "--weights",
        local,
        "--content-layers",
        "relu2_1",
        "--style-layers",
        "relu1_1:0.5",
        "relu2_1",
    )
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert pics["out"].is_file()


def test_save_every_writes_intermediate_images(capsys, pics):
    code, _, err = run(capsys, *stylize_args(pics, "--save-every", "1"))
    assert code == 0, err
    folder = pics["out"].parent
    for step in (1, 2):
        with Image.open(folder / f"out.step{step:04d}.png") as image:
            assert image.size == (40, 32)
    assert not [p for p in folder.iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize("mode", ["luminance", "histogram"])
def test_preserve_color(capsys, pics, mode):
    code, _, err = run(capsys, *stylize_args(pics, "--preserve-color", mode))
    assert code == 0, err
    with Image.open(pics["out"]) as image:
        assert image.size == (40, 32)


def test_adam_noise_init_and_flags(capsys, pics):
    argv = stylize_args(
        pics,
        "--optimizer",
        "adam",
        "--init",
        "noise",
        "--learning-rate",
        "0.05",
        "--scales",
        "2",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--seed",
        "4",
    )
    code, _, err = run(capsys, *argv)
    assert code == 0, err


def test_progress_lines_when_stderr_is_not_a_terminal(capsys, pics):
    argv = [a for a in stylize_args(pics) if a != "--quiet"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert "scale 1/1 (40 px): step 2/2" in err
    assert "style " in err and "content " in err and "total " in err
    assert err.strip().splitlines()[-1].startswith("wrote ")


def test_progress_bar_and_notices_on_a_terminal(capsys, pics, monkeypatch):
    from impasto import backbones

    real = backbones.resolve_backbone_name

    def with_notice(name, *, weights=None, notify=None, probe=None):
        notify("Using tiny: a notice from the backbone resolver")
        return real(name, weights=weights, notify=notify, probe=probe)

    monkeypatch.setattr(backbones, "resolve_backbone_name", with_notice)
    monkeypatch.setattr(terminal.Terminal, "interactive", property(lambda self: True))
    argv = [a for a in stylize_args(pics, "--save-every", "2") if a != "--quiet"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert "Using tiny: a notice from the backbone resolver" in err
    assert "scale 1/1 (40 px)" in err
    assert "wrote " in err
    assert (pics["out"].parent / "out.step0002.png").is_file()


# --------------------------------------------------------------------------- odd valid images


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def _gradient(width=40, height=32) -> np.ndarray:
    x = np.linspace(0, 255, width)[None, :]
    y = np.linspace(0, 255, height)[:, None]
    return np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8)


def _cmyk(tmp):
    return _save(Image.fromarray(_gradient()).convert("CMYK"), tmp / "cmyk.jpg")


def _gray16(tmp):
    values = (np.linspace(0, 65535, 40)[None, :] * np.ones((32, 1))).astype(np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    return _save(image, tmp / "gray16.png")


def _gray(tmp):
    return _save(Image.fromarray(_gradient()).convert("L"), tmp / "gray.png")


def _palette(tmp):
    return _save(Image.fromarray(_gradient()).convert("P"), tmp / "palette.png")


def _exif_rotated(tmp):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return _save(Image.fromarray(_gradient()), tmp / "rotated.jpg", exif=exif)


@pytest.mark.parametrize(
    ("make", "size"),
    [
        (_cmyk, (40, 32)),
        (_gray16, (40, 32)),
        (_gray, (40, 32)),
        (_palette, (40, 32)),
        (_exif_rotated, (32, 40)),
    ],
    ids=["cmyk-jpeg", "gray16-png", "gray-png", "palette-png", "exif-rotated-jpeg"],
)
def test_odd_content_images(capsys, pics, tmp_path, make, size):
    content = make(tmp_path)
    code, _, err = run(capsys, *stylize_args(pics, content=content))
    assert code == 0, err
    with Image.open(pics["out"]) as image:
        assert image.size == size


def test_transparent_content_keeps_its_alpha(capsys, pics, tmp_path):
    rgba = np.dstack([_gradient(), np.full((32, 40), 255, np.uint8)])
    rgba[:, :12, 3] = 0  # the left 12 columns are fully transparent
    content = _save(Image.fromarray(rgba, "RGBA"), tmp_path / "cutout.png")
    code, _, err = run(capsys, *stylize_args(pics, content=content))
    assert code == 0, err
    with Image.open(pics["out"]) as image:
        assert image.mode == "RGBA"
        alpha = np.asarray(image.getchannel("A"))
    assert alpha.shape == (32, 40)
    assert (alpha[:, :10] == 0).all()
    assert (alpha[:, 14:] == 255).all()


# --------------------------------------------------------------------------- debug, interrupt


def test_debug_lets_the_exception_through(capsys, pics, tmp_path):
    missing = tmp_path / "missing.png"
    with pytest.raises(InputError, match="missing.png"):
        cli.main(["--debug", *map(str, stylize_args(pics, content=missing))])


def test_keyboard_interrupt_exits_130_without_output(capsys, pics, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gatys, "stylize", interrupted)
    code, _, err = run(capsys, *stylize_args(pics))
    assert code == 130
    assert error_line(err, prefix="impasto: interrupted") == "impasto: interrupted"
    assert not pics["out"].exists()


def test_interrupt_while_writing_a_preview_leaves_no_partial_file(capsys, pics, monkeypatch):
    real_save = Image.Image.save
    calls = []

    def save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second preview, in the middle of writing it
            raise KeyboardInterrupt
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    code, _, err = run(capsys, *stylize_args(pics, "--save-every", "1"))
    assert code == 130, err
    folder = pics["out"].parent
    # The finished preview and the image so far (kept on the stop) are whole; the preview
    # being written when Ctrl-C came is gone, and so is any temporary file.
    names = sorted(p.name for p in folder.iterdir() if "out" in p.name)
    assert names == ["out.partial.png", "out.step0001.png"]
    for name in names:
        with Image.open(folder / name) as image:
            image.load()
    assert "kept the image so far" in err
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_unexpected_exception_is_one_internal_error_line(capsys, pics, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom\nwith a second line")

    monkeypatch.setattr(gatys, "stylize", broken)
    code, _, err = run(capsys, *stylize_args(pics))
    assert code == 1
    line = error_line(err, prefix="impasto: internal error: ")
    assert line == (
        "impasto: internal error: RuntimeError: boom with a second line "
        "(run with --debug for the traceback)"
    )
    assert not pics["out"].exists()


# --------------------------------------------------------------------------- parser


def test_flags_follow_the_config_dataclass(pics):
    args = cli.build_parser(["stylize"]).parse_args(
        ["stylize", str(pics["content"]), str(pics["style"]), "-o", str(pics["out"])]
    )
    for field in dataclasses.fields(gatys.GatysConfig):
        if field.metadata["cli"]:
            # Unset flags are absent: the chosen method's config applies its own defaults.
            assert not hasattr(args, field.name), field.name
    args = cli.build_parser(["stylize"]).parse_args(
        ["stylize", "c.png", "s.png", "-o", "o.png", "--size", "64", "--precision", "bf16",
         "--style-weight", "3e4", "--compile", "--style-layers", "a", "b:0.5"]
    )  # fmt: skip
    assert args.size == 64 and args.precision == "bf16"
    assert args.style_weight == 3e4 and args.compile is True
    assert args.style_layers == {"a": 1.0, "b": 0.5}
    assert not hasattr(args, "style_blend") and not hasattr(args, "content_layers")


def test_stylize_flags_are_the_chosen_methods_only(capsys, pics):
    # gatys has no fp16 (it optimises under bf16 autocast at most); fast has no --steps
    assert_usage_error(capsys, pics, stylize_args(pics, "--precision", "fp16"), "fp16")
    code, _, err = run(capsys, "stylize", "--method", "fast", "--model", "vangogh-bedroom",
                       pics["content"], "-o", pics["out"], "--steps", "5")  # fmt: skip
    assert code == 2
    assert "--steps: not an option of --method fast (an option of: gatys, diffusion)" in err
    _, out, _ = run(capsys, "stylize", "--method", "fast", "--help")
    assert "--model" in out and "--steps" not in out and "--style-weight" not in out
    _, out, _ = run(capsys, "stylize", "--method", "gatys", "--help")
    assert "--steps" in out and "--model MODEL" not in out and "fp16" not in out


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "stylize", "--help")
    assert code == 0
    for flag in (
        "--size",
        "--style-weight",
        "--preserve-color",
        "--style-blend",
        "--compile",
        "--save-every",
        "--weights",
        "--max-pixels",
        "--quiet",
    ):
        assert flag in out
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == "impasto 0.1.0"


def flat(text: str) -> str:
    """Help text with argparse's line wrapping undone."""
    return " ".join(text.split())


def test_stylize_help_without_a_method_says_each_methods_default_and_values(capsys):
    from impasto.model_folder import shipped_models

    code, out, _ = run(capsys, "stylize", "--help")
    assert code == 0
    help_text = flat(out)
    # every method's options, each once, under the methods that take it
    for group in ("options of every method", "options of gatys and fast", "options of fast"):
        assert group in help_text
    assert help_text.count("--size N ") == 1 and "--steps N" in help_text
    assert (
        "(default: gatys: 512; fast, adain, wct, photo and color: the input's size; diffusion: the "
        "family's: 1024 or 512)" in help_text
    )
    # what auto means, and which values each method takes
    assert "gatys {auto,fp32,bf16}: auto: bf16 autocast on CUDA" in help_text
    assert "fast {auto,fp32,bf16,fp16}: auto: fp16 channels_last on CUDA" in help_text
    # --compile: Gatys's advice is for CUDA, fast's holds on the CPU too
    assert "gatys: torch.compile the feature network (pays off on CUDA" in help_text
    assert "fast: torch.compile the network, on the CPU as on a GPU" in help_text
    models = shipped_models("fast")
    assert models and f"shipped model: {', '.join(models)}" in help_text


ONE_METHOD_HELP = {
    "gatys": (["(default: 512)", "--precision {auto,fp32,bf16} auto: bf16"], ["fp16", "--model"]),
    "fast": (
        [
            "(default: the input's size)",
            "--precision {auto,fp32,bf16,fp16} auto: fp16",
            "vangogh-bedroom, vangogh-bedroom-rt",
            "on the CPU as on a GPU",
        ],
        ["bf16 autocast", "--steps", "512", "pays off on CUDA"],
    ),
    "color": (["(default: the input's size)", "--strength X"], ["--precision", "512"]),
}


@pytest.mark.parametrize("method", ONE_METHOD_HELP)
def test_stylize_help_of_one_method_tells_its_own_defaults(capsys, method):
    present, absent = ONE_METHOD_HELP[method]
    _, out, _ = run(capsys, "stylize", "--method", method, "--help")
    options = flat(out.split("options of --method", 1)[1])  # the method's own options
    for text in present:
        assert text in options, text
    for text in absent:
        assert text not in options, text


@pytest.mark.parametrize("columns", range(50, 141, 5))
def test_help_lines_never_break_inside_a_name(capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))  # argparse's own wrapping breaks at 9 of these
    _, out, _ = run(capsys, "stylize", "--method", "fast", "--help")
    assert "vangogh-bedroom-rt" in out and not re.search(r"[a-z]-\n", out)


@dataclasses.dataclass
class _Wide:
    size: int = config.option(512, "long side", min=16)
    precision: str = config.option("auto", "auto: bf16", choices=("auto", "bf16"))
    steps: int = config.option(200, "steps")


@dataclasses.dataclass
class _Narrow:
    size: int | None = config.option(None, "long side", default_text="the input's size")
    precision: str = config.option("auto", "auto: fp16", choices=("auto", "fp16"))


def test_merged_flags_say_per_method_what_differs_and_accept_every_value():
    parser = args.Parser(prog="t")
    args.add_methods_flags(parser, {"wide": _Wide, "narrow": _Narrow})
    helps = {a.option_strings[0]: a.help for a in parser._actions if a.option_strings}
    assert helps["--size"] == "long side (default: wide: 512; narrow: the input's size)"
    assert helps["--precision"] == (
        "wide {auto,bf16}: auto: bf16. narrow {auto,fp16}: auto: fp16. (default: auto)"
    )
    assert helps["--steps"] == "steps (default: 200)"
    assert parser.parse_args(["--precision", "fp16"]).precision == "fp16"
    assert parser.parse_args(["--precision", "bf16"]).precision == "bf16"
    assert "options of every method" in parser.format_help()
    assert "options of wide" in parser.format_help()

    @dataclasses.dataclass
    class Clash:
        size: str = config.option("big", "a word, not a number")

    with pytest.raises(TypeError, match="size"):
        args.add_methods_flags(args.Parser(prog="t"), {"wide": _Wide, "clash": Clash})


# --------------------------------------------------------------------------- backbones


def test_backbones_lists_names_licences_and_auto(capsys, monkeypatch):
    from impasto.backbones import BACKBONES

    monkeypatch.delenv("COLUMNS", raising=False)  # no width: one line per row, for scripts
    code, out, err = run(capsys, "backbones")
    assert code == 0, err
    for name in ("vgg19", "efficientnet-lite0", "tiny"):
        assert name in out
        assert BACKBONES[name].license in out
    tiny_row = next(line for line in out.splitlines() if line.startswith("tiny "))
    assert "random" in tiny_row
    vgg_row = next(line for line in out.splitlines() if line.startswith("vgg19 "))
    assert " no " in vgg_row  # the test cache is empty
    lines = out.strip().splitlines()
    auto = next(i for i, line in enumerate(lines) if line.startswith("auto -> "))
    assert lines[auto].startswith("auto -> efficientnet-lite0")
    assert lines[auto + 2].startswith("diffusion weights")  # then the diffusion repositories


def test_backbones_fits_a_narrow_terminal(capsys, monkeypatch):
    from impasto.backbones import BACKBONES

    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(capsys, "backbones")
    assert code == 0, err
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    for name, entry in BACKBONES.items():
        assert name in lines  # a block per backbone, its name alone on the first line
        assert entry.license in flat(out) and flat(entry.description) in flat(out)
    assert "weights here  random" in out  # tiny's
    assert flat(out).split("auto -> ")[1].startswith("efficientnet-lite0")


# --------------------------------------------------------------------------- download


def test_download_unknown_name(capsys):
    code, _, err = run(capsys, "download", "nope")
    assert code == 2
    line = error_line(err)
    assert "nope" in line and "vgg19" in line


@pytest.mark.parametrize("name", ["tiny", "efficientnet-lite0"])
def test_download_of_weights_that_need_none(capsys, name):
    code, out, _ = run(capsys, "download", name)
    assert code == 0
    assert "nothing to download" in out or "needs no download" in out


def test_download_offline_is_one_line_and_leaves_cache_empty(capsys, monkeypatch, isolated_home):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    code, out, err = run(capsys, "download", "vgg19")
    assert code == 2
    line = error_line(err)
    assert "offline" in line.lower()
    assert list(isolated_home.rglob("*")) == []
    # download has no --weights: the hint says where a copy from elsewhere goes instead
    assert "--weights" not in line
    assert str(weights.weights_dir() / weights.VGG19.filename) in line


def test_download_network_failure_hint_suits_download(capsys, monkeypatch, small_vgg):
    def unreachable(request, timeout=None):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    code, _, err = run(capsys, "download", "vgg19")
    line = error_line(err)
    assert code == 2 and "Name or service not known" in line
    assert "--weights" not in line and str(weights.weights_dir()) in line
    # stylize keeps its own option in the same hint
    with pytest.raises(weights.WeightsError, match="pass --weights PATH"):
        weights.download(small_vgg[0])


PAYLOAD = bytes(range(256)) * 20


class FakeResponse:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0
        self.headers = {"Content-Length": str(len(data))}
        self.status = 200

    def read(self, n: int = -1) -> bytes:
        n = 1000 if n < 0 else min(n, 1000)
        block = self.data[self.pos : self.pos + n]
        self.pos += len(block)
        return block

    def close(self) -> None:
        pass


@pytest.fixture
def small_vgg(monkeypatch):
    """Make 'vgg19' a 5 KB file served from memory, so download runs without a network."""
    spec = dataclasses.replace(
        weights.VGG19,
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        size=len(PAYLOAD),
        filename="small.pth",
    )
    monkeypatch.setattr(weights, "VGG19", spec)
    monkeypatch.setattr("impasto.backbones.vgg.WEIGHTS", spec)  # bound there at import
    monkeypatch.delenv("IMPASTO_OFFLINE", raising=False)
    requests = []

    def urlopen(request, timeout=None):
        requests.append(request.full_url)
        return FakeResponse(PAYLOAD)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return spec, requests


@pytest.mark.parametrize("interactive", [False, True])
def test_download_stores_then_reports_cached(capsys, monkeypatch, small_vgg, interactive):
    monkeypatch.setattr(terminal.Terminal, "interactive", property(lambda self: interactive))
    spec, requests = small_vgg
    code, out, err = run(capsys, "download", "vgg19")
    assert code == 0, err
    stored = weights.weights_dir() / "small.pth"
    assert stored.read_bytes() == PAYLOAD
    assert str(stored) in out
    assert "downloading vgg19" in err
    assert requests == [spec.url]

    code, out, _ = run(capsys, "download", "vgg19")
    assert code == 0
    assert "already cached" in out and str(stored) in out
    assert len(requests) == 1


def test_download_replaces_a_damaged_cached_file(capsys, small_vgg):
    damaged = weights.weights_dir() / "small.pth"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(bytes(len(PAYLOAD)))  # right size, wrong content
    code, out, err = run(capsys, "download", "vgg19")
    assert code == 0, err
    assert "damaged" in err
    assert damaged.read_bytes() == PAYLOAD


# --------------------------------------------------------------------------- real entry points


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "IMPASTO_HOME": str(home), "IMPASTO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_python_dash_m_help(isolated_home):
    done = subprocess.run(
        [sys.executable, "-m", "impasto", "--help"],
        capture_output=True,
        text=True,
        env=_env(isolated_home),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for command in ("stylize", "download", "backbones"):
        assert command in done.stdout


def test_console_script_missing_file(pics, tmp_path, isolated_home):
    script = shutil.which("impasto", path=str(Path(sys.executable).parent))
    assert script is not None, "the impasto console script is not installed next to python"
    missing = tmp_path / "missing.png"
    done = subprocess.run(
        [script, *map(str, stylize_args(pics, content=missing))],
        capture_output=True,
        text=True,
        env=_env(isolated_home),
        timeout=120,
    )
    assert done.returncode == 2
    assert "missing.png" in error_line(done.stderr)
    assert not pics["out"].exists()


def test_stylize_downloads_vgg19_with_progress_before_the_work(capsys, pics, small_vgg):
    spec, requests = small_vgg
    argv = [a for a in stylize_args(pics) if a != "--quiet"]
    argv[argv.index("--backbone") + 1] = "auto"
    code, _, err = run(capsys, *argv)
    # The fake file is not a real VGG-19 state dict: loading it fails after the download.
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("downloading vgg19 weights")
    assert lines[-1].startswith("impasto: error: ") and "small.pth" in lines[-1]
    assert requests[-1] == spec.url and (weights.weights_dir() / "small.pth").is_file()
    assert not pics["out"].exists()


def test_stylize_vgg19_offline_without_cache(capsys, pics, monkeypatch):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    argv = stylize_args(pics)
    argv[argv.index("--backbone") + 1] = "vgg19"
    assert_usage_error(capsys, pics, argv, "IMPASTO_OFFLINE", "--weights")


def test_default_backbone_offline_falls_back_to_efficientnet(capsys, pics, monkeypatch):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    argv = stylize_args(pics, "--steps", "1")
    argv[argv.index("--backbone") + 1] = "auto"
    code, _, err = run(capsys, *argv)
    assert "Using efficientnet-lite0" in err  # the fallback is said in one plain line
    assert code == 0, err
    assert err.strip().splitlines()[-1].endswith("efficientnet-lite0 on cpu")


# --------------------------------------------------------------------------- folders, review fixes


def _photo_folder(tmp_path, pics, alpha_in_sub=False) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.open(pics["content"]).save(folder / "a.png")
    picture = Image.open(pics["content"]).convert("RGBA")
    if alpha_in_sub:
        pixels = np.asarray(picture).copy()
        pixels[:, :10, 3] = 0
        picture = Image.fromarray(pixels, "RGBA")
    picture.save(folder / "sub" / "b.png")
    return folder


def test_a_folder_with_save_every_writes_each_result_and_its_previews(capsys, pics, tmp_path):
    folder = _photo_folder(tmp_path, pics, alpha_in_sub=True)
    out = tmp_path / "painted"  # does not exist yet, nor does its sub-folder
    argv = ["stylize", folder, pics["style"], "-o", out, *FAST, "--steps", "4", "--save-every", "2"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    for name in ("a", "sub/b"):
        assert (out / f"{name}.png").is_file()
        assert (out / f"{name}.step0002.png").is_file() and (out / f"{name}.step0004.png").is_file()
    with Image.open(out / "sub" / "b.step0002.png") as preview:  # that input's alpha
        assert preview.mode == "RGBA" and preview.getchannel("A").getextrema()[0] == 0
    with Image.open(out / "a.step0002.png") as preview:
        assert preview.mode == "RGB"


def test_plain_progress_lines_follow_every_input_of_a_folder(capsys, pics, tmp_path):
    folder = _photo_folder(tmp_path, pics)
    argv = ["stylize", folder, pics["style"], "-o", tmp_path / "out", *FAST, "--steps", "10"]
    argv = [a for a in argv if a != "--quiet"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert err.count("step 10/10") == 2, err  # the last step of each input is shown
    assert "[1/2]" in err and "[2/2]" in err


@pytest.mark.parametrize(
    "argv", [["--help"], ["--version"], ["recommend"], ["recommend", "--realtime", "--quality"]]
)
def test_quick_commands_do_not_import_torch(argv):
    code = (
        "import sys\n"
        "from impasto.cli.main import main\n"
        f"main({argv!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_a_method_whose_extra_is_missing_is_one_line_with_the_install_command(
    capsys, pics, monkeypatch
):
    import dataclasses

    from impasto.methods import registry

    row = dataclasses.replace(registry.METHODS["color"], extra="video", requires=("no_such_mod",))
    monkeypatch.setitem(registry.METHODS, "color", row)
    for argv in (
        ["stylize", "--method", "color", "--help"],
        ["stylize", "--method", "color", pics["content"], pics["style"], "-o", pics["out"]],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2 and error_line(err).endswith("pip install 'impasto[video]'"), err
        assert not pics["out"].exists()


def test_training_a_method_whose_extra_is_missing_is_one_line(capsys, pics, monkeypatch):
    import dataclasses

    from impasto.methods import registry

    row = dataclasses.replace(registry.METHODS["fast"], extra="video", requires=("no_such_mod",))
    monkeypatch.setitem(registry.METHODS, "fast", row)
    folder = pics["out"].parent
    argv = ["train", "fast", "--style", pics["style"], "--data", folder, "-o", folder / "model"]
    code, _, err = run(capsys, *argv)
    assert code == 2 and error_line(err).endswith("pip install 'impasto[video]'"), err


def test_options_may_stand_between_content_and_style(capsys, pics):
    argv = ["stylize", pics["content"], "-o", pics["out"], pics["style"], *FAST]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert pics["out"].is_file()


def test_two_inputs_that_would_write_one_file_are_refused(capsys, pics, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.open(pics["content"]).save(folder / "x.png")
    Image.open(pics["content"]).save(folder / "x.bmp")  # .bmp results are written as .png
    out = tmp_path / "out"
    code, _, err = run(capsys, "stylize", folder, pics["style"], "-o", out, *FAST)
    assert code == 2 and "would both be written to" in error_line(err)
    assert not out.exists()
