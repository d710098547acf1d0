"""``impasto stylize`` on clips, through the command line in this process: a video with audio
in and out (rate, frame count, audio, windows), a folder of frames into a folder, bad input as
one line with nothing left behind, and an interrupted job continued with ``--resume``.

The cheap ``color`` method does the stylising: these tests are about the clip around it. Clips
are made here with PyAV directly: a textured picture panning 2 px a frame, 64 x 48 at 24 fps,
with an AAC sine track."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import add_tone, error_line, no_hang, run_cli, write_image, write_tone

import impasto
from impasto import frames, pipeline, video
from impasto.errors import Cancelled

av = pytest.importorskip("av", reason="video tests need the video extra: pip install -e '.[video]'")
pytest.importorskip(
    "cv2", reason="optical-flow tests need the video extra: pip install -e '.[video]'"
)

pytestmark = pytest.mark.usefixtures("one_thread")

WIDTH, HEIGHT, FPS, COUNT = 64, 48, Fraction(24), 12
COLOR = ["--method", "color"]


def panning_frames(count: int = COUNT, step: int = 2) -> list[np.ndarray]:
    """``count`` (H, W, 3) uint8 frames of a smooth random texture panning right."""
    generator = torch.Generator().manual_seed(7)
    coarse = torch.rand(1, 3, HEIGHT // 8 + 3, (WIDTH + step * count) // 8 + 3, generator=generator)
    wide = F.interpolate(coarse, scale_factor=8, mode="bicubic", align_corners=False).clamp(0, 1)
    pixels = (wide[0, :, :HEIGHT].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    return [np.ascontiguousarray(pixels[:, step * t : step * t + WIDTH]) for t in range(count)]


def make_clip(path: Path, *, picture: bool = True, audio_seconds: float | None = 0.5) -> Path:
    """An H.264 clip of ``panning_frames`` with a 440 Hz AAC track (``picture=False``: the
    audio only)."""
    with av.open(str(path), "w") as container:
        if picture:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.codec_context.time_base = 1 / FPS
        if audio_seconds:
            audio = add_tone(container)
        if picture:
            for index, pixels in enumerate(panning_frames()):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        if audio_seconds:
            write_tone(container, audio, audio_seconds)
    return path


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "clip.mp4")


@pytest.fixture
def style(tmp_path) -> Path:
    return write_image(tmp_path / "style.png", 99, size=(32, 32))


@pytest.fixture
def out_dir(tmp_path) -> Path:
    """An empty folder for outputs: what a command leaves there is all it wrote."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def stylize(capsys, *argv) -> tuple[int, str]:
    with no_hang(60):
        code, _, err = run_cli(capsys, "stylize", *argv)
    return code, err


def decoded(path: Path) -> list[torch.Tensor]:
    return [frame.rgb for frame in video.read_frames(path)]


def difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


# --------------------------------------------------------------------------- the flags


def test_the_clip_flags_copy_the_librarys_tables():
    # cli/stylize_clip.py keeps copies so that the parser imports neither torch nor PyAV.
    from impasto.cli import stylize_clip
    from impasto.temporal import DEFAULT_STRENGTH, TEMPORAL_DESIGNS

    assert stylize_clip.VIDEO_EXTENSIONS == video.VIDEO_EXTENSIONS
    assert sorted(stylize_clip.DESIGN_CHOICES) == sorted(TEMPORAL_DESIGNS)
    assert float(stylize_clip.TEMPORAL_DEFAULT) == DEFAULT_STRENGTH


def test_the_library_and_the_command_default_to_one_design():
    import inspect

    from impasto.cli import main as cli
    from impasto.temporal import Stabiliser

    argv = ["stylize", "clip.mp4", "style.png", "-o", "out.mp4"]
    command = cli.build_parser(argv).parse_args(argv).temporal_design
    library = inspect.signature(frames.stylize_clip).parameters["design"].default
    assert library == Stabiliser().design == command


# --------------------------------------------------------------------------- a video in and out


def test_a_video_with_audio_keeps_its_frames_rate_and_audio(capsys, clip, style, out_dir):
    out = out_dir / "out.mp4"
    code, err = stylize(capsys, clip, style, "-o", out, *COLOR)
    assert code == 0, err
    info, source = video.probe(out), video.probe(clip)
    assert source.audio_codec == "aac" and source.frames == COUNT
    assert (info.frames, info.fps, info.audio_codec) == (COUNT, FPS, "aac")
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert len(decoded(out)) == COUNT
    assert "temporal 0.6" in err.splitlines()[-1]  # the default, said in the last line
    assert sorted(path.name for path in out_dir.iterdir()) == ["out.mp4"]


def test_temporal_off_every_and_a_window_pick_the_frames_of_the_plain_run(
    capsys, clip, style, out_dir
):
    """With --temporal off each frame is the colour method's alone, so the frames of --every
    and --start/--duration must match the full run's frames they come from."""
    full, every, window = out_dir / "full.mp4", out_dir / "every.mp4", out_dir / "window.mp4"
    code, err = stylize(capsys, clip, style, "-o", full, *COLOR, "--temporal", "off")
    assert code == 0, err
    assert "temporal off" in err.splitlines()[-1]
    code, err = stylize(
        capsys, clip, style, "-o", every, *COLOR, "--temporal", "off", "--every", "2"
    )
    assert code == 0, err
    # frames at i / 24 s in [0.1, 0.3): i = 3 .. 7
    code, err = stylize(
        capsys,
        clip,
        style,
        "-o",
        window,
        *COLOR,
        "--temporal",
        "off",
        "--start",
        "0.1",
        "--duration",
        "0.2",
    )
    assert code == 0, err

    info = video.probe(every)
    assert (info.frames, info.fps) == (COUNT // 2, FPS / 2)
    info = video.probe(window)
    assert (info.frames, info.fps, info.audio_codec) == (5, FPS, "aac")

    # Each output frame is its source frame's, encoded twice (about 0.02 apart), and clearly
    # not its neighbours' (the pan moves the texture: about 0.1 apart).
    reference = decoded(full)
    picked = [
        *zip(decoded(every), range(0, COUNT, 2), strict=True),
        *zip(decoded(window), range(3, 8), strict=True),
    ]
    for got, index in picked:
        own = difference(got, reference[index])
        assert own < 0.04, index
        neighbours = [reference[i] for i in (index - 1, index + 1) if 0 <= i < COUNT]
        assert all(difference(got, other) > 2 * own for other in neighbours), index


def test_every_keeps_the_audio_of_the_clip(capsys, clip, style, out_dir):
    out = out_dir / "every.mp4"
    code, err = stylize(capsys, clip, style, "-o", out, *COLOR, "--every", "2")
    assert code == 0, err
    info = video.probe(out)
    assert info.duration == pytest.approx(video.probe(clip).duration, abs=0.05)
    assert info.audio_codec == "aac"


def test_progress_lines_report_a_believable_speed(capsys, clip, style, out_dir):
    code, err = stylize(capsys, clip, style, "-o", out_dir / "out.mp4", *COLOR)
    assert code == 0, err
    speeds = [float(speed) for speed in re.findall(r"\(([0-9.]+) fps\)", err)]
    assert speeds and max(speeds) < 1000, speeds


# --------------------------------------------------------------------------- frame folders


def test_a_frame_folder_goes_into_a_folder_of_pngs_named_like_its_frames(capsys, style, tmp_path):
    source = tmp_path / "shots"
    source.mkdir()
    names = ["take_1.png", "take_2.jpg", "take_10.png"]  # natural order: 1, 2, 10
    for name, pixels in zip(names, panning_frames(3), strict=True):
        impasto.save_image(torch.from_numpy(pixels).permute(2, 0, 1)[None] / 255, source / name)
    out = tmp_path / "styled"
    code, err = stylize(capsys, source, style, "-o", out, *COLOR, "--frames")
    assert code == 0, err
    assert sorted(path.name for path in out.iterdir()) == [
        "take_1.png",
        "take_10.png",
        "take_2.png",
    ]
    for name in ("take_1.png", "take_2.png", "take_10.png"):
        assert impasto.load_image(out / name).rgb.shape == (1, 3, HEIGHT, WIDTH)
    assert "3 frames" in err.splitlines()[-1]


# --------------------------------------------------------------------------- bad input


def text_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n")
    return [path]


def audio_only(tmp_path):
    return [make_clip(tmp_path / "sound.mp4", picture=False)]


def mixed_sizes(tmp_path):
    write_image(tmp_path / "mixed" / "f1.png", 1, size=(64, 48))
    write_image(tmp_path / "mixed" / "f2.png", 2, size=(62, 48))
    return [tmp_path / "mixed", "--frames"]


def folder_without_frames_flag(tmp_path):
    write_image(tmp_path / "shots" / "f1.png", 1, size=(64, 48))
    write_image(tmp_path / "shots" / "f2.png", 2, size=(64, 48))
    return [tmp_path / "shots"]


def a_clip(tmp_path):
    return [make_clip(tmp_path / "clip.mp4")]


def one_photo(tmp_path):
    return [write_image(tmp_path / "photo.png", 3)]


BAD = {
    "an unreadable video": (text_mp4, "out.mp4", [], "notes.mp4"),
    "a video without frames": (audio_only, "out.mp4", [], "sound.mp4"),
    "frames of mixed sizes": (mixed_sizes, "out.mp4", [], "different sizes"),
    "an flv output": (a_clip, "out.flv", [], "out.flv"),
    "a gif output": (a_clip, "out.gif", [], "out.gif"),
    "a temporal strength of 2": (a_clip, "out.mp4", ["--temporal", "2"], "--temporal"),
    "a folder without --frames": (folder_without_frames_flag, "out.mp4", [], "--frames"),
    "--resume on one image": (one_photo, "photo.png", ["--resume"], "--resume"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(capsys, style, tmp_path, out_dir, case):
    make, output, extra, needle = BAD[case]
    inputs = make(tmp_path)
    source, flags = inputs[0], inputs[1:]
    code, err = stylize(capsys, source, style, "-o", out_dir / output, *COLOR, *flags, *extra)
    assert code == 2
    assert needle in error_line(err)
    assert list(out_dir.iterdir()) == []


# --------------------------------------------------------------------------- --resume


def interrupt_at_third_frame(clip: Path, style: Path, out: Path) -> None:
    """What `stylize CLIP STYLE -o OUT --method color` leaves when stopped at the 3rd frame:
    the library run with the command's method, settings, style file, strength and design."""
    config = pipeline.make_config("color", {}, 1)
    prepared = pipeline.prepare("color", config, [impasto.load_image(style)])
    source = frames.open_clip(clip)

    def stop_at_third(event):
        return event.kind != "item" or event.step < 3

    with pytest.raises(Cancelled):
        frames.stylize_clip(
            prepared,
            source,
            frames.clip_target(out, source),
            temporal=0.6,
            design="carry",
            progress=stop_at_third,
        )


def test_an_interrupted_job_needs_resume_and_resume_finishes_it(capsys, clip, style, out_dir):
    out = out_dir / "out.mp4"
    interrupt_at_third_frame(clip, style, out)
    work = out_dir / "out.mp4.impasto-work"
    assert (work / frames.JOB_FILE).is_file() and (out_dir / "out.partial.mp4").is_file()

    code, err = stylize(capsys, clip, style, "-o", out, *COLOR)
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("impasto: error: ")]
    assert len(errors) == 1 and "--resume" in errors[0], err
    assert not out.exists() and (work / frames.JOB_FILE).is_file()

    code, err = stylize(capsys, clip, style, "-o", out, *COLOR, "--resume")
    assert code == 0, err
    assert "3 kept from before" in err.splitlines()[-1]
    info = video.probe(out)
    assert (info.frames, info.fps, info.audio_codec) == (COUNT, FPS, "aac")
    assert sorted(path.name for path in out_dir.iterdir()) == ["out.mp4"]


def test_the_refusal_to_overwrite_an_interrupted_job_is_one_line(capsys, clip, style, out_dir):
    out = out_dir / "out.mp4"
    interrupt_at_third_frame(clip, style, out)
    code, err = stylize(capsys, clip, style, "-o", out, *COLOR)
    assert code == 2
    assert "--resume" in error_line(err)


def test_a_window_past_the_end_is_one_line_and_leaves_nothing(capsys, clip, style, out_dir):
    code, err = stylize(capsys, clip, style, "-o", out_dir / "out.mp4", *COLOR, "--start", "5")
    assert code == 2
    assert list(out_dir.iterdir()) == []
    assert "past the end" in error_line(err)
    # A window inside the clip that holds no frame is only found while decoding.
    code, err = stylize(capsys, clip, style, "-o", out_dir / "out.mp4", *COLOR,
                        "--start", "0.201", "--duration", "0.001")  # fmt: skip
    assert code == 2
    assert list(out_dir.iterdir()) == []
    assert "no frames" in error_line(err)
