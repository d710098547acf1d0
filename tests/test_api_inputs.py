"""The Python API takes what people have: paths, PIL images, numpy arrays and tensors, for the
content and every style image, with one clear InputError for anything else; results convert
to PIL, save themselves with their provenance and carry their config; every method reports
progress and can be cancelled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import write_image
from PIL import Image

import impasto
from impasto import batch, pipeline, provenance
from impasto.errors import Cancelled, InputError
from impasto.methods import fast
from impasto.methods.color import ColorConfig
from impasto.methods.gatys import GatysConfig
from impasto.model_folder import save_model_folder

SMALL_NETWORK = {"channels": 4, "residual_blocks": 1, "padding": "reflect"}


@pytest.fixture
def files(tmp_path):
    content = write_image(tmp_path / "c.png", 1, size=(30, 20))
    style = write_image(tmp_path / "s.png", 2, size=(24, 24))
    return content, style


def uint8_of(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


FORMS = {
    "path-str": lambda path, pixels: str(path),
    "PIL RGB": lambda path, pixels: Image.fromarray(pixels),
    "PIL RGBA opaque": lambda path, pixels: Image.fromarray(pixels).convert("RGBA"),
    "array uint8": lambda path, pixels: pixels,
    "array float64": lambda path, pixels: pixels / 255.0,
    "array float32 RGBA": lambda path, pixels: np.dstack(
        [pixels / np.float32(255), np.ones(pixels.shape[:2], np.float32)]
    ).astype(np.float32),
    "array uint16": lambda path, pixels: pixels.astype(np.uint16) * 257,
    "tensor (3, H, W)": lambda path, pixels: (
        torch.from_numpy(pixels.copy()).permute(2, 0, 1) / 255.0
    ),
    "tensor (1, 3, H, W)": lambda path, pixels: (
        torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].double() / 255.0
    ),
    "tensor uint8": lambda path, pixels: torch.from_numpy(pixels.copy()).permute(2, 0, 1),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_form_of_content_and_style_gives_the_result_of_the_files(files, form):
    content, style = files
    expected = impasto.stylize(content, style, method="color").image
    make = FORMS[form]
    got = impasto.stylize(
        make(content, uint8_of(content)), [make(style, uint8_of(style))], method="color"
    ).image
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= 1e-6, form


def test_grey_and_palette_images_become_rgb_and_alpha_is_kept(files):
    grey = np.random.default_rng(3).integers(0, 256, (20, 30), dtype=np.uint8)
    from_array = pipeline.as_image(grey)
    from_pil = pipeline.as_image(Image.fromarray(grey))
    assert torch.equal(from_array.rgb, from_pil.rgb)
    assert torch.equal(from_array.rgb[0, 0], torch.from_numpy(grey).float() / 255)
    assert torch.equal(from_array.rgb[0, 0], from_array.rgb[0, 2])
    four = np.array([[0, 0, 0], [255, 0, 0], [0, 128, 255], [9, 99, 199]], np.uint8)
    colours = four[np.random.default_rng(4).integers(0, 4, (20, 30))]
    palette = Image.fromarray(colours).quantize(4, dither=Image.Dither.NONE)
    assert palette.mode == "P"
    assert torch.equal(pipeline.as_image(palette).rgb, pipeline.as_image(colours).rgb)
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:, :10, 3] = 0
    for image in (rgba, Image.fromarray(rgba, "RGBA")):
        result = impasto.stylize(image, files[1], method="color")
        assert result.alpha is not None and result.alpha.shape == (1, 1, 20, 30)
        assert result.alpha[..., :10].max() == 0 and result.alpha[..., 10:].min() == 1


BAD = {
    "int": (42, "got int"),
    "None": (None, "got NoneType"),
    "bytes": (b"\x89PNG", "got bytes"),
    "dict": ({"image": 1}, "got dict"),
    "list as content": (["c.png"], "expected one image"),
    "channels first array": (np.zeros((3, 8, 8), np.uint8), "channels last"),
    "5 channels": (np.zeros((8, 8, 5), np.uint8), "H x W x 3 or H x W"),
    "int64 array": (np.zeros((8, 8, 3), np.int64), "pixel type int64"),
    "bool array": (np.zeros((8, 8, 3), bool), "pixel type bool"),
    "0-255 floats": (np.full((8, 8, 3), 200.0), "divide 0-255 values by 255"),
    "negative floats": (np.full((8, 8, 3), -0.5), "must be in [0, 1]"),
    "NaN": (torch.full((3, 8, 8), float("nan")), "NaN or infinite"),
    "batch of 2": (torch.rand(2, 3, 8, 8), "(3, H, W) or (1, 3, H, W)"),
    "4-channel tensor": (torch.rand(4, 8, 8), "(3, H, W) or (1, 3, H, W)"),
    "int tensor": (torch.zeros(3, 8, 8, dtype=torch.int32), "pixel type torch.int32"),
    "empty": (np.zeros((0, 8, 3), np.uint8), "empty"),
    "empty float tensor": (torch.zeros(3, 0, 8), "empty"),
}


@pytest.mark.parametrize("name", BAD)
def test_anything_else_is_one_input_error_naming_what_is_accepted(files, name):
    value, message = BAD[name]
    with pytest.raises(InputError, match="content") as caught:
        impasto.stylize(value, files[1], method="color")
    assert message in str(caught.value)
    assert not isinstance(caught.value, TypeError)


@pytest.mark.parametrize("styles", [42, {"a": 1}, (s for s in ["x"])], ids=["int", "dict", "gen"])
def test_styles_that_are_not_images_or_a_list_are_one_input_error(files, styles):
    with pytest.raises(InputError, match="styles: expected an image or a list"):
        impasto.stylize(files[0], styles, method="color")


def test_a_bad_style_is_named_by_its_place(files):
    with pytest.raises(InputError, match="style image 2: .*got int"):
        impasto.stylize(files[0], [files[1], 7], method="color")


def test_in_memory_images_are_held_to_the_pixel_cap(files):
    with pytest.raises(InputError, match="more than the limit of 100"):
        impasto.stylize(np.zeros((20, 30, 3), np.uint8), files[1], method="color", max_pixels=100)


# --------------------------------------------------------------------------- the result


def test_to_pil_is_the_8_bit_image_with_its_alpha(files, tmp_path):
    result = impasto.stylize(files[0], files[1], method="color")
    image = result.to_pil()
    assert image.mode == "RGB" and image.size == (30, 20)
    expected = np.rint(result.image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(image), expected)
    rgba = np.full((20, 30, 4), 255, np.uint8)
    rgba[:5, :, 3] = 0
    with_alpha = impasto.stylize(rgba, files[1], method="color").to_pil()
    assert with_alpha.mode == "RGBA" and np.asarray(with_alpha)[:5, :, 3].max() == 0


def test_save_writes_the_image_and_its_provenance_atomically(files, tmp_path):
    result = impasto.stylize(files[0], files[1], method="color", strength=0.5)
    out = result.save(tmp_path / "out.webp")
    assert out == tmp_path / "out.webp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "out.webp", "s.png"]
    record = provenance.read_record(out)
    assert record == result.provenance()
    assert record["settings"]["strength"] == 0.5 and record["method"] == "color"
    assert record["inputs"]["content"]["path"] == str(files[0].resolve())
    with pytest.raises(InputError, match="unknown extension"):
        result.save(tmp_path / "out.bmp")


def test_the_result_carries_the_config_it_ran_with(files, monkeypatch):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    gatys = impasto.stylize(*files, backbone="tiny", size=32, steps=2, device="cpu", seed=3)
    assert isinstance(gatys.config, GatysConfig)
    assert (gatys.config.size, gatys.config.steps, gatys.config.seed) == (32, 2, 3)
    assert gatys.config.backbone == "tiny"
    auto = impasto.stylize(*files, size=32, steps=1, device="cpu")
    assert auto.config.backbone != "auto"  # what auto chose
    color = impasto.stylize(*files, method="color", space="rgb")
    assert color.config == dataclasses.replace(ColorConfig(), space="rgb")


def test_a_result_of_several_images_says_how_to_save_each(files):
    result = impasto.stylize(*files, method="color")
    result.image = torch.cat([result.image, result.image])
    with pytest.raises(InputError, match="holds 2 images"):
        result.to_pil()


# --------------------------------------------------------------------------- progress


@pytest.fixture
def model(tmp_path):
    torch.manual_seed(0)
    network = fast.TransformNet(fast.NetworkConfig(**SMALL_NETWORK))
    return save_model_folder(tmp_path / "model", "fast", SMALL_NETWORK, network.state_dict(), {})


def test_fast_sends_a_step_per_batch(files, model, tmp_path):
    events = []
    impasto.stylize(files[0], method="fast", model=model, progress=events.append)
    assert [(e.kind, e.step, e.total) for e in events if e.kind == "step"] == [("step", 1, 1)]
    for index in range(3):
        write_image(tmp_path / "in" / f"{index}.png", index, size=(20, 16))
    config = pipeline.make_config("fast", {"model": str(model), "batch": 2}, 0)
    prepared = pipeline.prepare("fast", config)
    events.clear()
    jobs, _ = batch.plan([tmp_path / "in"], tmp_path / "out")
    batch.run(prepared, jobs, progress=events.append)
    assert [(e.step, e.total) for e in events if e.kind == "step"] == [(2, 2), (1, 1)]


def test_fast_is_cancelled_by_a_false_from_progress(files, model):
    def stop_at_the_step(event):
        return False if event.kind == "step" else None

    with pytest.raises(Cancelled):
        impasto.stylize(files[0], method="fast", model=model, progress=stop_at_the_step)
