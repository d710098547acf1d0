"""Temporal consistency (impasto.temporal) and the frame runner (impasto.frames), at library
level: the feed-forward post-process steadies a flickering clip without ghosts, Gatys with a
prior stays near the warped previous frame as much as the strength asks, and every method runs a
clip into a folder and into a video that a stop leaves playable and ``resume`` finishes.

Clips are made here: a smooth random texture panned by a few pixels a frame, 48 x 64."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from helpers import quick_options

import impasto
from impasto import frames, pipeline, video
from impasto.errors import Cancelled, InputError
from impasto.methods.registry import METHODS, available_methods
from impasto.metrics.temporal import warping_error
from impasto.temporal import TEMPORAL_DESIGNS, Stabiliser, TemporalPrior, parse_temporal

pytest.importorskip(
    "cv2", reason="optical-flow tests need the video extra: pip install -e '.[video]'"
)
pytest.importorskip("av", reason="video tests need the video extra: pip install -e '.[video]'")

pytestmark = pytest.mark.usefixtures("one_thread")

HEIGHT, WIDTH = 48, 64


def texture(height: int, width: int, seed: int, cell: int = 8) -> torch.Tensor:
    """A smooth random RGB texture (1, 3, H, W) in [0.2, 0.8] (room for noise without clipping)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // cell + 3, width // cell + 3, generator=generator)
    fine = F.interpolate(coarse, scale_factor=cell, mode="bicubic", align_corners=False)
    return (0.2 + 0.6 * fine[..., :height, :width].clamp(0, 1)).contiguous()


def panning(count: int, step: int = 2) -> list[torch.Tensor]:
    """A camera panning right over a wide texture by ``step`` pixels a frame."""
    wide = texture(HEIGHT, WIDTH + step * count, seed=7)
    return [wide[..., step * t : step * t + WIDTH].contiguous() for t in range(count)]


def stabilised(strength: float, design: str, inputs, outputs) -> list[torch.Tensor]:
    stabiliser = Stabiliser(strength, design)
    return [stabiliser(frame, output) for frame, output in zip(inputs, outputs, strict=True)]


# --------------------------------------------------------------------------- the post-process


@pytest.mark.parametrize("design", ["carry", "blend"])
def test_the_stabiliser_halves_the_warping_error_of_outputs_with_fresh_noise(design):
    clip = panning(6)
    generator = torch.Generator().manual_seed(1)
    outputs = [frame + 0.05 * torch.randn(frame.shape, generator=generator) for frame in clip]
    raw = warping_error(outputs, clip)
    steady = warping_error(stabilised(0.6, design, clip, outputs), clip)
    assert raw.reliable_fraction > 0.8  # the flow follows the pan: the error is measured
    assert steady.output <= 0.5 * raw.output, (steady.output, raw.output)


@pytest.mark.parametrize("design", TEMPORAL_DESIGNS)
def test_every_design_halves_the_warping_error_of_a_colour_flicker(design):
    # A low-frequency flicker (each frame's colour shifted at random): the kind even lowpass,
    # which keeps each frame's fine texture, must carry.
    clip = panning(6)
    generator = torch.Generator().manual_seed(2)
    outputs = [frame + 0.08 * torch.randn(1, 3, 1, 1, generator=generator) for frame in clip]
    outputs = [output.clamp(0, 1) for output in outputs]
    raw = warping_error(outputs, clip)
    steady = warping_error(stabilised(0.6, design, clip, outputs), clip)
    assert steady.output <= 0.5 * raw.output, (steady.output, raw.output)


@pytest.mark.parametrize("design", TEMPORAL_DESIGNS)
def test_strength_zero_returns_the_outputs_unchanged(design):
    clip = panning(4)
    generator = torch.Generator().manual_seed(3)
    outputs = [torch.rand(frame.shape, generator=generator) for frame in clip]
    for got, output in zip(stabilised(0.0, design, clip, outputs), outputs, strict=True):
        assert torch.equal(got, output)


@pytest.mark.parametrize("design", TEMPORAL_DESIGNS)
def test_background_uncovered_by_a_moving_square_takes_the_new_output_not_a_ghost(design):
    """A textured square moves right 6 px a frame over a still background: the strip it leaves
    shows background never seen before, so the previous output there (the square) must not
    be carried, however strong the consistency."""
    side, top, step = 16, 16, 6
    background = texture(HEIGHT, WIDTH, seed=1)
    square = 1 - texture(side, side, seed=2, cell=4)

    def frame(t: int) -> torch.Tensor:
        image = background.clone()
        image[..., top : top + side, 8 + step * t : 8 + step * t + side] = square
        return image

    clip = [frame(t) for t in range(4)]
    outputs = stabilised(0.9, design, clip, [image.clone() for image in clip])
    for t in range(1, 4):
        strip = (..., slice(top, top + side), slice(8 + step * (t - 1), 8 + step * t))
        new, previous, got = clip[t][strip], outputs[t - 1][strip], outputs[t][strip]
        assert float((previous - new).abs().mean()) > 0.1  # a ghost would show
        assert float((got - new).abs().mean()) < 0.03, t


# --------------------------------------------------------------------------- --temporal


@pytest.mark.parametrize("text, strength", [("off", 0.0), ("OFF", 0.0), ("0", 0.0), ("0.5", 0.5)])
def test_parse_temporal_reads_off_and_strengths(text, strength):
    assert parse_temporal(text) == strength


@pytest.mark.parametrize("text", ["1", "-0.1", "abc", "nan", ""])
def test_parse_temporal_refuses_values_outside_zero_to_one_naming_the_flag(text):
    with pytest.raises(InputError, match="--temporal"):
        parse_temporal(text)


def test_an_unknown_design_names_the_choices():
    with pytest.raises(InputError, match="carry"):
        Stabiliser(0.5, "median")


# --------------------------------------------------------------------------- Gatys's prior


@pytest.fixture(scope="module")
def tiny():
    from impasto.backbones import load_backbone

    return load_backbone("tiny")


def test_gatys_with_a_prior_runs_the_last_scale_with_a_temporal_term_and_its_steps(tiny):
    from impasto.methods import gatys

    content, style = texture(HEIGHT, WIDTH, seed=1), texture(40, 40, seed=5, cell=4)
    config = gatys.GatysConfig(backbone="tiny", size=WIDTH, scales=2, steps=20, device="cpu")
    plain = gatys.stylize(content, [style], config, backbone=tiny)
    # 20 evaluations at the coarse scale, a quarter of them (at least 10) at the fine one
    assert plain.details["scale_sizes"] == [WIDTH // 2, WIDTH] and len(plain.history) == 30
    assert all("temporal" not in terms for terms in plain.history)

    reliable = torch.ones(1, 1, HEIGHT, WIDTH)
    prior = TemporalPrior(texture(HEIGHT, WIDTH, seed=9), reliable, 0.6)
    result = gatys.stylize(content, [style], config, backbone=tiny, prior=prior)
    assert result.details["scale_sizes"] == [WIDTH]
    assert len(result.history) == gatys.temporal_steps(20) < 20
    assert all("temporal" in terms for terms in result.history)
    assert result.image.shape == (1, 3, HEIGHT, WIDTH)


def test_a_higher_strength_keeps_gatys_closer_to_the_prior_on_reliable_pixels(tiny):
    from impasto.methods import gatys

    content, style = texture(HEIGHT, WIDTH, seed=1), texture(40, 40, seed=5, cell=4)
    previous = texture(HEIGHT, WIDTH, seed=9)
    reliable = torch.zeros(1, 1, HEIGHT, WIDTH)
    reliable[..., : WIDTH // 2] = 1  # the left half is trusted, the right half is new
    config = gatys.GatysConfig(backbone="tiny", size=WIDTH, steps=20, device="cpu")

    def distance(strength: float) -> float:
        prior = TemporalPrior(previous, reliable, strength)
        image = gatys.stylize(content, [style], config, backbone=tiny, prior=prior).image
        squared = (image - previous).square().mean(1, keepdim=True)
        return float((reliable * squared).sum() / reliable.sum())

    weak, strong = distance(0.2), distance(0.9)
    assert strong < 0.8 * weak, (strong, weak)


def test_checked_run_gives_the_prior_only_to_methods_that_take_one(tiny):
    content, style = texture(HEIGHT, WIDTH, seed=1), texture(40, 40, seed=5, cell=4)
    prior = TemporalPrior(texture(HEIGHT, WIDTH, seed=9), torch.ones(1, 1, HEIGHT, WIDTH), 0.5)
    options = {"backbone": "tiny", "size": WIDTH, "steps": 12, "device": "cpu"}
    runner = pipeline.prepare("gatys", pipeline.make_config("gatys", options, 1), [style])
    assert runner.takes_prior
    history = runner.checked_run(content, prior=prior).history
    assert len(history) == 10 and "temporal" in history[-1]
    colour = pipeline.prepare("color", pipeline.make_config("color", {}, 1), [style])
    assert not colour.takes_prior
    assert torch.equal(
        colour.checked_run(content, prior=prior).image, colour.checked_run(content).image
    )


# --------------------------------------------------------------------------- the frame runner

NAMES = available_methods()
FRAME_COUNT = 5


@functools.cache
def prepared_method(name: str):
    styles = [texture(40, 40, seed=5, cell=4)] if METHODS[name].takes_styles else []
    config = pipeline.make_config(name, quick_options(name), len(styles))
    return pipeline.prepare(name, config, styles)


@pytest.fixture
def frame_folder(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for index, frame in enumerate(panning(FRAME_COUNT), start=1):
        impasto.save_image(frame, folder / f"shot_{index}.png")  # natural order: 1 .. 5
    return folder


def test_the_table_is_the_one_tested_here():
    assert NAMES == tuple(METHODS), "install every extra to run each method through the runner"


@pytest.mark.parametrize("name", NAMES)
def test_every_method_writes_one_frame_per_input_frame_into_a_folder(name, frame_folder, tmp_path):
    clip = frames.open_clip(frame_folder)
    out = tmp_path / "styled"
    report = frames.stylize_clip(
        prepared_method(name), clip, frames.clip_target(out, clip), temporal=0.6, design="carry"
    )
    names = [f"shot_{index}.png" for index in range(1, FRAME_COUNT + 1)]
    assert sorted(path.name for path in out.iterdir()) == sorted(names)  # no job file left
    assert report.frames == FRAME_COUNT and report.resumed == 0
    sizes = {impasto.load_image(out / file).rgb.shape for file in names}
    assert sizes == {(1, 3, report.height, report.width)}


def stop_at_third_frame(seen: list):
    def progress(event):
        if event.kind == "item":
            seen.append(event.item)
            if len(seen) == 3:
                return False
        return None

    return progress


@pytest.mark.parametrize("name", NAMES)
def test_every_method_into_a_video_stops_playable_refuses_a_rerun_and_resumes(
    name, frame_folder, tmp_path, monkeypatch
):
    prepared = prepared_method(name)
    clip = frames.open_clip(frame_folder)
    out = tmp_path / "out.mp4"
    target = frames.clip_target(out, clip)
    partial, work = tmp_path / "out.partial.mp4", tmp_path / "out.mp4.impasto-work"
    assert (target.partial, target.work) == (partial, work)

    seen: list = []
    with pytest.raises(Cancelled):
        frames.stylize_clip(
            prepared, clip, target, temporal=0.6, progress=stop_at_third_frame(seen)
        )
    assert seen == ["shot_1", "shot_2", "shot_3"]
    assert not out.exists()
    info = video.probe(partial)
    assert info.frames == 3 and len(list(video.read_frames(partial))) == 3
    assert (work / frames.JOB_FILE).is_file()
    kept = {path.name: path.read_bytes() for path in work.glob("*.png")}
    assert sorted(kept) == ["shot_1.png", "shot_2.png", "shot_3.png"]

    with pytest.raises(InputError, match="--resume"):
        frames.stylize_clip(prepared, clip, target, temporal=0.6)
    assert {path.name: path.read_bytes() for path in work.glob("*.png")} == kept
    assert partial.is_file() and not out.exists()

    ran = []
    original = prepared.checked_run

    def counted(content, *args, **kwargs):
        ran.append(content)
        return original(content, *args, **kwargs)

    monkeypatch.setattr(prepared, "checked_run", counted)
    report = frames.stylize_clip(prepared, clip, target, temporal=0.6, resume=True)
    # Only frames 4 and 5 were stylised again: the first three came from the work folder.
    inputs = [impasto.load_image(frame_folder / f"shot_{i}.png").rgb for i in (4, 5)]
    assert len(ran) == 2 and all(torch.equal(a, b) for a, b in zip(ran, inputs, strict=True))
    assert report.frames == FRAME_COUNT and report.resumed == 3
    assert video.probe(out).frames == FRAME_COUNT
    assert not work.exists() and not partial.exists()


def test_resume_refuses_frames_made_with_other_settings(frame_folder, tmp_path):
    prepared = prepared_method("color")
    clip = frames.open_clip(frame_folder)
    target = frames.clip_target(tmp_path / "out.mp4", clip)
    with pytest.raises(Cancelled):
        frames.stylize_clip(prepared, clip, target, temporal=0.6, progress=stop_at_third_frame([]))
    with pytest.raises(InputError, match="other settings"):
        frames.stylize_clip(prepared, clip, target, temporal=0.3, resume=True)
    assert target.work.is_dir() and target.partial.is_file()
