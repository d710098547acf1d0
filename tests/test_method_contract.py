"""The contract every method of the table keeps: a new method gets these tests by being a row.

Each test runs once per registered method, with quick options derived from its config alone
(the tiny backbone, a few steps, a small size, the CPU, the method's first shipped model), so
no test here names a method: output shape and range, alpha kept, same seed gives the same
image, progress events in order, cancelling leaves no file, the config round-trips through a
dict and through the CLI's flags, and bad settings give the project's input error.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import quick_options
from PIL import Image

import impasto
from impasto import batch, pipeline
from impasto.cli import main as cli
from impasto.config import config_from_dict, config_to_dict, flag_name
from impasto.errors import Cancelled, InputError
from impasto.images import load_image, resize_to
from impasto.methods.registry import METHODS, available_methods, load_method
from impasto.model_folder import shipped_models
from impasto.progress import EVENT_KINDS

METHOD_NAMES = available_methods()


def test_every_row_of_the_table_is_tested_here():
    # A row whose extra is missing on this machine would be left out silently: say so instead.
    assert METHOD_NAMES == tuple(METHODS), "install every extra to run the contract suite"


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_the_row_says_what_the_method_does(name):
    row, method = METHODS[name], load_method(name)
    assert method.name == name
    assert row.trains == (method.train_config_class is not None)
    assert row.exports == bool(method.export_formats)
    fields = {field.name for field in dataclasses.fields(method.config_class)}
    assert row.takes_model == ("model" in fields)
    if row.takes_model:
        assert shipped_models(name) or method.compare_options.get("model")


def picture(height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, 4, 4, generator=generator)
    smooth = torch.nn.functional.interpolate(base, size=(height, width), mode="bilinear")
    return (smooth + 0.05 * torch.rand(1, 3, height, width, generator=generator)).clamp(0, 1)


def styles_for(name: str) -> list[torch.Tensor]:
    return [picture(40, 40, seed=9)] if METHODS[name].takes_styles else []


@pytest.fixture(scope="module")
def content() -> torch.Tensor:
    return picture(36, 48, seed=1)


def run(name: str, content, **extra):
    return impasto.stylize(
        content, styles_for(name), method=name, **{**quick_options(name), **extra}
    )


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_output_is_an_rgb_image_in_range(name, content):
    result = run(name, content)
    assert result.image.ndim == 4 and result.image.shape[:2] == (1, 3)
    assert min(result.image.shape[-2:]) >= 16
    assert torch.isfinite(result.image).all()
    assert result.image.min() >= 0 and result.image.max() <= 1
    assert result.method == name and result.device == "cpu" and result.seconds > 0


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_the_contents_alpha_comes_back_at_the_output_size(name, tmp_path):
    rgba = np.zeros((36, 48, 4), dtype=np.uint8)
    rgba[..., :3] = (np.asarray(picture(36, 48, seed=4)[0].permute(1, 2, 0)) * 255).astype("uint8")
    rgba[..., 3] = 255
    rgba[:, :12, 3] = 0  # a transparent band on the left
    Image.fromarray(rgba, "RGBA").save(tmp_path / "with_alpha.png")
    result = run(name, load_image(tmp_path / "with_alpha.png"))
    assert result.alpha is not None
    assert result.alpha.shape[-2:] == result.image.shape[-2:]
    width = result.alpha.shape[-1]
    assert result.alpha[..., : width // 5].max() < 0.1
    assert result.alpha[..., -width // 2 :].min() > 0.9


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_keep_leaves_the_masked_photo_as_it_was_and_styles_the_rest(name, content, tmp_path):
    keep = np.zeros((36, 48), dtype=np.uint8)
    keep[:, :24] = 255  # keep the left half
    Image.fromarray(keep, "L").save(tmp_path / "keep.png")
    result = run(name, content, keep=str(tmp_path / "keep.png"))
    height, width = result.image.shape[-2:]
    photo = resize_to(content, height, width)
    inside, outside = slice(0, width // 2 - width // 8), slice(width - width // 4, width)
    assert (result.image[..., inside] - photo[..., inside]).abs().max() < 1e-5
    assert (result.image[..., outside] - photo[..., outside]).abs().mean() > 1e-3
    plain = run(name, content).image  # away from the edge, the rest is the method's own result
    assert torch.allclose(result.image[..., outside], plain[..., outside], atol=1e-5)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_the_same_seed_gives_the_same_image_on_the_cpu(name, content):
    assert torch.equal(run(name, content).image, run(name, content).image)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_progress_events_come_in_order_and_end_with_done(name, content):
    events = []
    run(name, content, progress=events.append)
    assert events and all(event.kind in EVENT_KINDS for event in events)
    assert events[-1].kind == "done"
    steps = [event.step for event in events if event.kind == "step"]
    assert steps == sorted(steps) and all(step >= 1 for step in steps)
    stages = [index for index, event in enumerate(events) if event.kind == "stage"]
    assert stages and stages[0] == 0  # something says what starts before any step


def events_of_a_run(name, content, tmp_path) -> list:
    source = tmp_path / "photo.png"
    impasto.save_image(content, source)
    events = []
    config = pipeline.make_config(name, quick_options(name), len(styles_for(name)))
    prepared = pipeline.prepare(name, config, styles_for(name), progress=events.append)
    batch.run(prepared, batch.plan([source], tmp_path / "first.png")[0], progress=events.append)
    return events


@pytest.mark.parametrize("name", METHOD_NAMES)
@pytest.mark.parametrize("at", ["first", "last"])
def test_cancelling_raises_and_leaves_no_output_but_the_image_so_far(name, content, tmp_path, at):
    """Cancel at the first event, or at the last one before the result is written."""
    (tmp_path / "dry").mkdir()
    kinds = [event.kind for event in events_of_a_run(name, content, tmp_path / "dry")]
    stop_at = 0 if at == "first" else kinds.index("item") - 1
    assert stop_at >= 0
    source = tmp_path / "photo.png"
    impasto.save_image(content, source)
    output = tmp_path / "out.png"
    config = pipeline.make_config(name, quick_options(name), len(styles_for(name)))
    seen = []

    def cancel(event):
        seen.append(event.kind)
        return False if len(seen) - 1 == stop_at else None

    with pytest.raises(Cancelled):
        prepared = pipeline.prepare(name, config, styles_for(name), progress=cancel)
        batch.run(prepared, batch.plan([source], output)[0], policy="stop", progress=cancel)
    assert seen == kinds[: stop_at + 1]
    assert not output.exists()
    # At most the image so far, kept beside the output (methods that optimise), and whole.
    left = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert left in (["photo.png"], ["out.partial.png", "photo.png"])
    if "out.partial.png" in left:
        assert impasto.load_image(tmp_path / "out.partial.png").rgb.isfinite().all()


def non_default_config(name: str):
    """The quick options plus a changed value of every field that has choices or a bool."""
    config_class = load_method(name).config_class
    options = quick_options(name)
    for field in dataclasses.fields(config_class):
        choices = field.metadata.get("choices")
        if field.name in options or field.name in ("device", "backbone"):
            continue
        if choices and len(choices) > 1:
            options[field.name] = next(c for c in choices if c != field.default and c != "fp16")
    return pipeline.make_config(name, options, len(styles_for(name)))


def as_flags(config) -> list[str]:
    argv = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value is None or value == field.default or not field.metadata.get("cli", True):
            continue
        flag = flag_name(field.name)
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, list):
            argv += [flag, *map(str, value)]
        elif isinstance(value, dict):
            argv += [flag, *(f"{key}:{weight}" for key, weight in value.items())]
        else:
            argv += [flag, str(value)]
    return argv


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_the_config_round_trips_through_a_dict_and_the_cli_flags(name):
    config = non_default_config(name)
    assert config_from_dict(type(config), config_to_dict(config)) == config
    inputs = ["c.png", "s.png"] if METHODS[name].takes_styles else ["c.png"]
    argv = ["stylize", "--method", name, *inputs, "-o", "o.png", *as_flags(config)]
    args = cli.build_parser(argv).parse_args(argv)
    config_class = type(config)
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(config_class)
        if hasattr(args, f.name)
    }
    assert pipeline.make_config(name, given, len(styles_for(name))) == config


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_bad_settings_are_input_errors_naming_the_option(name):
    count = len(styles_for(name))
    with pytest.raises(InputError, match="no_such_option"):
        pipeline.make_config(name, {**quick_options(name), "no_such_option": 1}, count)
    checked = 0
    for field in dataclasses.fields(load_method(name).config_class):
        meta = field.metadata
        bad = None
        if meta.get("choices"):
            bad = "not-a-choice" if isinstance(meta["choices"][0], str) else -12345
        elif meta.get("min") is not None:
            bad = meta["min"] - 1
        if bad is None:
            continue
        with pytest.raises(InputError, match=flag_name(field.name)):
            pipeline.make_config(name, {**quick_options(name), field.name: bad}, count)
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_the_wrong_number_of_style_images_is_an_input_error(name, content):
    styles = [] if METHODS[name].takes_styles else [picture(20, 20, seed=2)]
    with pytest.raises(InputError, match="style image"):
        impasto.stylize(content, styles, method=name, **quick_options(name))


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_the_cli_runs_it_and_bad_input_writes_nothing(name, tmp_path, capsys):
    photo, painting = tmp_path / "photo.png", tmp_path / "painting.png"
    impasto.save_image(picture(36, 48, seed=5), photo)
    impasto.save_image(picture(40, 40, seed=6), painting)
    inputs = [photo, painting] if METHODS[name].takes_styles else [photo]
    flags = as_flags(pipeline.make_config(name, quick_options(name), len(inputs) - 1))
    out = tmp_path / "out.png"
    code = cli.main(["stylize", "--method", name, *map(str, inputs), "-o", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 0, err
    assert load_image(out).rgb.shape[:2] == (1, 3)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    out.unlink()
    code = cli.main(
        ["stylize", "--method", name, str(broken), *map(str, inputs[1:]), "-o", str(out), *flags]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "broken.png" in err
    assert not out.exists()
