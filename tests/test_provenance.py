"""Every image impasto writes says how it was made: the record embedded in each format (and the
sRGB profile), the sidecar, `impasto info`, and `impasto stylize --from` making the same image
again, bit for bit on the CPU, for every method."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import error_line, write_image
from helpers import run_cli as run
from PIL import Image, ImageCms

import impasto
from impasto import provenance
from impasto.images import encode
from impasto.methods import fast
from impasto.model_folder import save_model_folder

GATYS = ["--backbone", "tiny", "--size", "40", "--steps", "3", "--device", "cpu"]
SMALL_NETWORK = {"channels": 4, "residual_blocks": 1, "padding": "reflect"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    return write_image(tmp_path / "c.png", 1, size=(40, 30)), write_image(tmp_path / "s.png", 2)


@pytest.fixture
def model(tmp_path) -> Path:
    torch.manual_seed(0)
    network = fast.TransformNet(fast.NetworkConfig(**SMALL_NETWORK))
    return save_model_folder(tmp_path / "model", "fast", SMALL_NETWORK, network.state_dict(), {})


# --------------------------------------------------------------------------- in the file


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_every_format_embeds_the_record_and_the_srgb_profile(tmp_path, suffix):
    record = {
        "format": provenance.FORMAT,
        "format_version": 1,
        "method": "x",
        "settings": {},
        "inputs": {"styles": []},
        "note": "café",
    }
    out = impasto.save_image(torch.rand(1, 3, 12, 16), tmp_path / f"out{suffix}", metadata=record)
    assert provenance.read_record(out) == record
    with Image.open(out) as image:  # Pillow's own readers, not impasto's
        if suffix == ".png":
            text = image.text["impasto"]
        elif suffix == ".tif":
            text = image.tag_v2[270]
        else:
            text = image.getexif().get_ifd(0x8769)[0x9286][8:].decode("ascii")
        assert json.loads(text) == record
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
    assert "sRGB" in profile.profile.profile_description


def test_an_image_without_metadata_still_carries_the_srgb_profile(tmp_path):
    out = impasto.save_image(torch.rand(1, 3, 8, 8), tmp_path / "plain.jpg")
    with Image.open(out) as image:
        assert image.info.get("icc_profile")
    assert encode.read_metadata(out) is None


def test_the_same_image_gives_the_same_bytes_at_another_time(tmp_path):
    # LittleCMS stamps a new profile with the time; the profile impasto embeds has a fixed one
    image = torch.rand(1, 3, 8, 8)
    encode.srgb_profile.cache_clear()
    first = impasto.save_image(image, tmp_path / "a.png", metadata={"k": 1})
    time.sleep(1.1)
    encode.srgb_profile.cache_clear()
    second = impasto.save_image(image, tmp_path / "b.png", metadata={"k": 1})
    assert first.read_bytes() == second.read_bytes()
    ImageCms.ImageCmsProfile(io.BytesIO(encode.srgb_profile()))  # still a valid profile


def test_the_api_records_the_method_settings_inputs_and_size(pair, tmp_path):
    content, style = pair
    result = impasto.stylize(
        content,
        style,
        method="gatys",
        seed=4,
        init="noise",
        backbone="tiny",
        size=32,
        steps=2,
        device="cpu",
    )
    out = result.save(tmp_path / "out.png", save_settings=True)
    record = provenance.read_record(out)
    assert record == result.provenance()
    assert record["method"] == "gatys" and record["seed"] == 4 and record["backbone"] == "tiny"
    assert record["settings"] == json.loads(json.dumps(dataclasses.asdict(result.config)))
    assert record["settings"]["init"] == "noise" and record["settings"]["steps"] == 2
    assert record["inputs"]["content"] == {
        "path": str(content.resolve()),
        "sha256": sha256(content),
    }
    assert record["inputs"]["styles"] == [{"path": str(style.resolve()), "sha256": sha256(style)}]
    assert record["output"] == {"width": 32, "height": 24}
    assert record["impasto_version"] == impasto.__version__
    assert json.loads((tmp_path / "out.png.json").read_text()) == record


def test_an_image_from_memory_records_no_file(capsys, tmp_path, pair):
    result = impasto.stylize(torch.rand(3, 20, 20), pair[1], method="color")
    record = result.provenance()
    assert record["inputs"]["content"] == {"path": None, "sha256": None}
    assert record["inputs"]["styles"][0]["sha256"] == sha256(pair[1])
    out = result.save(tmp_path / "mem.png")
    code, _, err = run_from(capsys, out, tmp_path / "again.png")
    assert code == 2 and "was not a file" in error_line(err)


def test_a_fast_record_names_the_model_and_the_sha256_of_its_weights(tmp_path, model, pair):
    result = impasto.stylize(pair[0], method="fast", model=model)
    record = result.provenance()
    assert record["model"]["name"] == "model" and record["model"]["shipped"] is False
    assert record["model"]["sha256"] == sha256(model / "model.safetensors")
    assert record["settings"]["model"] == str(model.resolve())
    assert record["seed"] is None
    shipped = impasto.stylize(pair[0], method="fast", model="vangogh-bedroom-rt").provenance()
    assert shipped["settings"]["model"] == "vangogh-bedroom-rt" and shipped["model"]["shipped"]


# --------------------------------------------------------------------------- impasto info


def test_info_prints_the_record_readably_and_as_json(capsys, pair, tmp_path):
    content, style = pair
    out = tmp_path / "out.png"
    assert run(capsys, "stylize", content, style, "-o", out, *GATYS, "--seed", "9")[0] == 0
    code, text, _ = run(capsys, "info", out)
    assert code == 0
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert lines["method"] == ["gatys"] and lines["seed"] == ["9"]
    assert lines["content"] == [str(content.resolve()), "sha256", sha256(content)]
    assert lines["output"] == ["40x30", "pixels"]
    assert f"impasto stylize --from {out} -o NEW" in text
    code, text, _ = run(capsys, "info", out, "--json")
    assert code == 0 and json.loads(text) == provenance.read_record(out)


def test_info_falls_back_to_the_sidecar_when_the_metadata_was_removed(capsys, pair, tmp_path):
    out = tmp_path / "out.jpg"
    assert run(capsys, "stylize", "--method", "color", *pair, "-o", out, "--save-settings")[0] == 0
    record = provenance.read_record(out)
    with Image.open(out) as image:
        image.save(tmp_path / "stripped.jpg")  # what many editors do: no EXIF kept
    (tmp_path / "stripped.jpg.json").write_bytes((tmp_path / "out.jpg.json").read_bytes())
    assert provenance.read_record(tmp_path / "stripped.jpg") == record
    code, text, _ = run(capsys, "info", tmp_path / "stripped.jpg.json", "--json")
    assert code == 0 and json.loads(text) == record


def written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: write_image(p / "x.png", 1), "holds no impasto record"),
        (lambda p: p / "missing.png", "file not found"),
        (lambda p: written(p / "x.json", '{"format": "other"}'), "holds no impasto record"),
        (lambda p: written(p / "x.txt", "hello"), "cannot read"),
    ],
    ids=["plain-image", "missing", "foreign-json", "not-an-image"],
)
def test_info_on_a_file_without_a_record_is_one_line(capsys, tmp_path, make, message):
    code, out, err = run(capsys, "info", make(tmp_path))
    assert code == 2 and message in error_line(err) and out == ""


# --------------------------------------------------------------------------- --from


def run_from(capsys, source: Path, out: Path, *extra) -> tuple[int, str, str]:
    """`impasto stylize --from SOURCE [EXTRA] -o OUT`."""
    return run(capsys, "stylize", "--from", source, *extra, "-o", out)


METHODS = {
    "gatys": [*GATYS, "--seed", "5", "--init", "noise"],  # the seed decides the start
    "fast": ["--batch", "2"],
    "color": ["--strength", "0.7", "--mode", "meancov"],
}


@pytest.mark.parametrize("method", METHODS)
def test_from_makes_the_same_image_again_bit_for_bit(capsys, pair, tmp_path, model, method):
    content, style = pair
    inputs = [content] if method == "fast" else [content, style]
    extra = [*METHODS[method], *(["--model", model] if method == "fast" else [])]
    first = tmp_path / "first.png"
    assert run(capsys, "stylize", "--method", method, *inputs, "-o", first, *extra)[0] == 0
    code, _, err = run_from(capsys, first, tmp_path / "again.png")
    assert code == 0, err
    assert np.array_equal(pixels(first), pixels(tmp_path / "again.png"))
    assert provenance.read_record(tmp_path / "again.png") == provenance.read_record(first)
    assert (tmp_path / "again.png").read_bytes() == first.read_bytes()


def test_a_gatys_rerun_with_another_seed_differs(capsys, pair, tmp_path):
    # the bit-identical check above can fail: the recorded seed is what makes it pass
    first = tmp_path / "first.png"
    assert run(capsys, "stylize", *pair, "-o", first, *METHODS["gatys"])[0] == 0
    assert run_from(capsys, first, tmp_path / "other.png", "--seed", "6")[0] == 0
    assert not np.array_equal(pixels(first), pixels(tmp_path / "other.png"))
    assert provenance.read_record(tmp_path / "other.png")["seed"] == 6


def test_flags_given_override_the_record_and_images_given_replace_the_inputs(
    capsys, pair, tmp_path
):
    content, style = pair
    first = tmp_path / "first.png"
    argv = ["stylize", "--method", "color", content, style, "-o", first, "--strength", "0.5"]
    assert run(capsys, *argv)[0] == 0
    other = write_image(tmp_path / "other.png", 7, size=(24, 24))
    code, _, err = run_from(capsys, first, tmp_path / "new.png", other, "--mode", "meancov")
    assert code == 0, err
    record = provenance.read_record(tmp_path / "new.png")
    assert record["settings"]["strength"] == 0.5 and record["settings"]["mode"] == "meancov"
    assert record["inputs"]["content"]["sha256"] == sha256(other)
    assert record["inputs"]["styles"][0]["sha256"] == sha256(style)  # the recorded style
    assert record["output"] == {"width": 24, "height": 24}


def test_from_refuses_inputs_that_changed_or_moved_and_takes_them_when_given(
    capsys, pair, tmp_path
):
    content, style = pair
    first = tmp_path / "first.png"
    assert run(capsys, "stylize", "--method", "color", content, style, "-o", first)[0] == 0
    write_image(content, 3, size=(40, 30))  # the photo was edited since
    code, _, err = run_from(capsys, first, tmp_path / "new.png")
    assert code == 2 and "has changed since (its sha256 differs)" in error_line(err)
    style.rename(tmp_path / "moved.png")
    code, _, err = run_from(capsys, first, tmp_path / "new.png", content)
    assert code == 2 and "no longer exists" in error_line(err) and "s.png" in err
    assert not (tmp_path / "new.png").exists()
    code, _, err = run_from(capsys, first, tmp_path / "new.png", content, tmp_path / "moved.png")
    assert code == 0, err


def test_from_checks_the_recorded_model(capsys, pair, tmp_path, model):
    first = tmp_path / "first.png"
    assert run(capsys, "stylize", "--model", model, pair[0], "-o", first)[0] == 0
    torch.manual_seed(1)
    network = fast.TransformNet(fast.NetworkConfig(**SMALL_NETWORK))
    save_model_folder(model, "fast", SMALL_NETWORK, network.state_dict(), {})  # retrained
    code, _, err = run_from(capsys, first, tmp_path / "new.png")
    assert code == 2 and "has changed since" in error_line(err) and "--model" in err
    code, _, err = run_from(capsys, first, tmp_path / "new.png", "--model", model)
    assert code == 0, err


def test_from_with_another_method_is_one_line(capsys, pair, tmp_path):
    first = tmp_path / "first.png"
    assert run(capsys, "stylize", "--method", "color", *pair, "-o", first)[0] == 0
    code, _, err = run_from(capsys, first, tmp_path / "new.png", "--method", "gatys")
    assert code == 2 and "was made with --method color" in error_line(err)


def test_a_folder_run_records_each_files_own_input(capsys, tmp_path, model):
    for index in range(3):
        write_image(tmp_path / "in" / f"{index}.png", index, size=(24, 20))
    argv = ["stylize", "--model", model, tmp_path / "in", "-o", tmp_path / "out", "--batch", "2"]
    assert run(capsys, *argv)[0] == 0
    for index in range(3):
        record = provenance.read_record(tmp_path / "out" / f"{index}.png")
        source = tmp_path / "in" / f"{index}.png"
        assert record["inputs"]["content"]["sha256"] == sha256(source)
        assert record["method"] == "fast" and record["settings"]["batch"] == 2


def test_a_preview_records_the_step_it_was_taken_at(capsys, pair, tmp_path):
    out = tmp_path / "out.png"
    assert run(capsys, "stylize", *pair, "-o", out, *GATYS, "--save-every", "2")[0] == 0
    record = provenance.read_record(tmp_path / "out.step0002.png")
    assert record["step"] == 2 and "step" not in provenance.read_record(out)


def test_a_record_from_before_an_option_existed_runs_as_it_was_made():
    """Gatys records written before --step-decay have no step_decay: they ran every scale with
    --steps, so they read as 1.0, not as today's default; a recorded value is kept."""
    from impasto.methods.gatys import GatysConfig

    old = {"method": "gatys", "settings": {"steps": 200, "size": 512}}
    assert GatysConfig().step_decay != 1.0
    settings = provenance.recorded_settings(old, GatysConfig, "old.png")
    assert settings["step_decay"] == 1.0 and settings["steps"] == 200
    new = {"method": "gatys", "settings": {"steps": 200, "step_decay": 0.5}}
    assert provenance.recorded_settings(new, GatysConfig, "new.png")["step_decay"] == 0.5
