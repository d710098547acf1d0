"""Video in and out (impasto.video): frames, rate, rotation, pixel aspect and audio survive a
round trip; windows pick the right frames; bad files fail with one clear line; nothing partial
is left behind. Clips are tiny and made here with PyAV itself, independently of the writer."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import add_tone, write_tone

av = pytest.importorskip("av", reason="video tests need the video extra: pip install -e '.[video]'")

from impasto import video  # noqa: E402
from impasto.errors import InputError  # noqa: E402
from impasto.images import load_image  # noqa: E402

SINTEL = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "sintel_raft_demo"
NTSC_FILM = Fraction(24000, 1001)


def level(index: int) -> int:
    """The grey level of frame ``index`` in a clip from :func:`make_clip`."""
    return 20 + 8 * index


def make_clip(
    path: Path,
    *,
    frames: int = 12,
    size: tuple[int, int] = (64, 48),
    fps: Fraction = Fraction(24),
    rotation: int = 0,
    aspect: Fraction | None = None,
    audio_seconds: float | None = None,
    video_stream: bool = True,
) -> Path:
    """A clip written with PyAV directly: frame i is flat grey ``level(i)``; optionally a
    440 Hz AAC (MP4/MOV/MKV) or Opus (WebM) sine track. ``rotation`` is PyAV's (counter-
    clockwise) display rotation."""
    width, height = size
    with av.open(str(path), "w") as container:
        if video_stream:
            stream = container.add_stream(video.output_codec(path), rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.time_base = 1 / fps
            if aspect is not None:
                stream.codec_context.sample_aspect_ratio = aspect
            if rotation:
                stream.set_display_rotation(rotation)
        if audio_seconds:
            audio = add_tone(container, "libopus" if path.suffix == ".webm" else "aac")
        if video_stream:
            for index in range(frames):
                pixels = np.full((height, width, 3), level(index), np.uint8)
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        if audio_seconds:
            write_tone(container, audio, audio_seconds)
    return path


def audio_packets(path: Path) -> list[tuple[float, bytes]]:
    """(start time in seconds, payload) of every audio packet of ``path``."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [
            (float(packet.pts * packet.time_base), bytes(packet))
            for packet in container.demux(stream)
            if packet.size
        ]


def levels(path: Path, **window) -> list[int]:
    return [round(frame.rgb.mean().item() * 255) for frame in video.read_frames(path, **window)]


def write_frames(path: Path, images: list[torch.Tensor], **options) -> Path:
    height, width = images[0].shape[-2:]
    options.setdefault("fps", Fraction(24))
    with video.VideoWriter(path, width=width, height=height, **options) as writer:
        for image in images:
            writer.write(image)
    return path


def grey(value: float, size=(64, 48)) -> torch.Tensor:
    return torch.full((3, size[1], size[0]), value)


@pytest.fixture(scope="module")
def sintel() -> list[torch.Tensor]:
    if not SINTEL.is_dir():
        pytest.skip(f"shared test frames not found: {SINTEL}")
    return [load_image(path).rgb for path in video.list_frames(SINTEL)]


def test_real_frames_survive_x264_at_crf_18_and_keep_ntsc_frame_rate(tmp_path, sintel):
    out = write_frames(tmp_path / "sintel.mp4", sintel, fps=NTSC_FILM)
    info = video.probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (512, 218, NTSC_FILM, 10)
    assert info.codec == "h264" and info.audio_codec is None and info.rotation == 0
    frames = list(video.read_frames(out))
    assert [frame.source_index for frame in frames] == list(range(10))
    assert [frame.time for frame in frames] == pytest.approx([i * 1001 / 24000 for i in range(10)])
    for frame, image in zip(frames, sintel, strict=True):
        assert frame.rgb.shape == (3, 218, 512) and frame.rgb.dtype == torch.float32
        # crf 18 with 4:2:0 chroma: about 0.012 on these frames; a wrong range gives 0.036.
        assert (frame.rgb - image[0]).abs().mean() < 0.02
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left


@pytest.mark.parametrize(
    ("suffix", "height"), [(".mp4", 32), (".webm", 32), (".avi", 32), (".avi", 720)]
)
def test_saturated_colours_come_back_as_they_went_in(tmp_path, suffix, height):
    # H.264 and VP9 are written as BT.709 and tagged so. MPEG-4 in AVI carries no tags, so it
    # is written as players read untagged video: BT.601 below 720 lines, BT.709 from 720 up.
    # Reading with the other matrix is off by 0.09 on these colours.
    colours = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1), (0.8, 0.4, 0.2)]
    image = torch.zeros(3, height, 32 * len(colours))
    for k, colour in enumerate(colours):
        image[:, :, 32 * k : 32 * k + 32] = torch.tensor(colour)[:, None, None]
    out = write_frames(tmp_path / f"colours{suffix}", [image] * 2)
    got = next(video.read_frames(out)).rgb
    for k, colour in enumerate(colours):
        block = got[:, 8:24, 32 * k + 8 : 32 * k + 24].mean((1, 2))
        assert block == pytest.approx(torch.tensor(colour), abs=0.03), colour


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm"])
def test_rotation_is_written_as_the_display_matrix_and_read_back(tmp_path, suffix):
    out = write_frames(tmp_path / f"turned{suffix}", [grey(0.5)] * 2, rotation=90)
    assert video.probe(out).rotation == 90
    with av.open(str(out)) as container:  # the matrix itself: a clockwise quarter turn
        assert next(container.decode(video=0)).rotation == -90


def test_rotation_of_a_phone_style_clip_is_the_clockwise_turn(tmp_path):
    # A phone held upright stores a display matrix of -90 degrees counter-clockwise (ffprobe:
    # "rotation of -90.00 degrees"), which the old 'rotate' tag wrote as 90.
    clip = make_clip(tmp_path / "phone.mp4", frames=2, rotation=-90)
    assert video.probe(clip).rotation == 90
    assert video.probe(make_clip(tmp_path / "flat.mp4", frames=2)).rotation == 0


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_pixel_aspect_ratio_is_kept(tmp_path, suffix):
    clip = make_clip(tmp_path / f"anamorphic{suffix}", frames=2, aspect=Fraction(4, 3))
    assert video.probe(clip).sample_aspect == Fraction(4, 3)
    out = write_frames(tmp_path / f"out{suffix}", [grey(0.5)] * 2, sample_aspect=Fraction(4, 3))
    assert video.probe(out).sample_aspect == Fraction(4, 3)
    plain = write_frames(tmp_path / f"plain{suffix}", [grey(0.5)] * 2)
    assert video.probe(plain).sample_aspect == 1


def test_audio_packets_are_copied_unchanged(tmp_path):
    source = make_clip(tmp_path / "talk.mp4", frames=24, audio_seconds=1.0)
    assert video.probe(source).audio_codec == "aac"
    out = write_frames(tmp_path / "out.mp4", [grey(0.5)] * 24, audio_from=source)
    assert video.probe(out).audio_codec == "aac"
    copied, original = audio_packets(out), audio_packets(source)
    # Same payloads byte for byte (not re-encoded) at the same times.
    assert [data for _, data in copied] == [data for _, data in original]
    assert [time for time, _ in copied] == pytest.approx([time for time, _ in original])
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(1.0, abs=0.03)


def test_an_audio_window_is_copied_and_shifted_to_start_at_zero(tmp_path):
    source = make_clip(tmp_path / "talk.mkv", frames=24, audio_seconds=1.0)
    out = write_frames(
        tmp_path / "cut.mkv",
        [grey(0.5)] * 12,
        audio_from=source,
        audio_start=0.5,
        audio_duration=0.25,
    )
    copied, original = audio_packets(out), audio_packets(source)
    # The window [0.5, 0.75): packets overlapping it, the one ending at its start kept as
    # priming for the decoder.
    wanted = [(t, data) for t, data in original if t + 1024 / 48000 >= 0.5 - 1e-3 and t < 0.75]
    assert [data for _, data in copied] == [data for _, data in wanted]
    assert copied[0][0] == pytest.approx(wanted[0][0] - 0.5, abs=1e-3) and copied[0][0] <= 0
    assert copied[-1][0] == pytest.approx(wanted[-1][0] - 0.5, abs=1e-3)


def test_a_source_without_audio_makes_a_silent_output(tmp_path):
    source = make_clip(tmp_path / "silent.mp4", frames=2)
    out = write_frames(tmp_path / "out.mp4", [grey(0.5)] * 2, audio_from=source)
    assert video.probe(out).audio_codec is None


def test_audio_a_container_cannot_hold_is_refused_before_any_work(tmp_path):
    source = make_clip(tmp_path / "talk.mp4", frames=2, audio_seconds=0.2)
    with pytest.raises(InputError, match=r"aac audio into 'out.webm'.*choose \.mp4"):
        video.check_video_output(tmp_path / "out.webm", audio_codec="aac")
    with pytest.raises(InputError, match="aac audio into 'out.webm'"):
        video.VideoWriter(tmp_path / "out.webm", fps=24, width=8, height=8, audio_from=source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]
    assert video.check_video_output(tmp_path / "out.webm", audio_codec="opus").name == "out.webm"


def test_read_frames_windows_and_strides_pick_the_right_frames(tmp_path):
    clip = make_clip(tmp_path / "count.mp4", frames=24)
    assert levels(clip) == pytest.approx([level(i) for i in range(24)], abs=2)
    frames = list(video.read_frames(clip, start=0.5, duration=0.25, every=2))
    # [0.5 s, 0.75 s) at 24 fps: frames 12 to 17 (18 is at 0.75 s), every second one.
    assert [frame.source_index for frame in frames] == [12, 14, 16]
    assert [frame.index for frame in frames] == [0, 1, 2]
    assert [frame.time for frame in frames] == pytest.approx([12 / 24, 14 / 24, 16 / 24])
    assert [round(frame.rgb.mean().item() * 255) for frame in frames] == pytest.approx(
        [level(12), level(14), level(16)], abs=2
    )
    assert levels(clip, start=0.52) == pytest.approx([level(i) for i in range(13, 24)], abs=2)
    assert levels(clip, every=10) == pytest.approx([level(0), level(10), level(20)], abs=2)


def test_odd_sizes_are_padded_by_repeating_the_last_row_and_column(tmp_path):
    image = torch.rand(3, 25, 33, generator=torch.Generator().manual_seed(0))
    image[:, :, -1], image[:, -1, :] = 1.0, 0.0  # a white last column, a black last row
    out = write_frames(tmp_path / "odd.mp4", [image] * 2)
    info = video.probe(out)
    assert (info.width, info.height) == (34, 26)
    frame = next(video.read_frames(out)).rgb
    assert frame[:, :-2, -1].mean() > 0.9  # the white column repeated
    assert frame[:, -1, :].mean() < 0.1  # the black row repeated


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a video\n" * 20, "not a video"),
        (b"", "the file is empty"),
    ],
)
def test_a_file_that_is_not_a_video_is_one_clear_error(tmp_path, content, message):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=f"cannot read video '.*x.mp4': {message}"):
        video.probe(bad)
    with pytest.raises(InputError, match=message):
        video.read_frames(bad)


def test_missing_files_and_audio_only_files_are_refused(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        video.probe(tmp_path / "nothing.mp4")
    sound = make_clip(tmp_path / "sound.mp4", audio_seconds=0.2, video_stream=False)
    with pytest.raises(InputError, match="sound.mp4': it has no video stream"):
        video.probe(sound)


def test_bad_windows_are_refused(tmp_path):
    clip = make_clip(tmp_path / "short.mp4", frames=6)  # 0.25 s
    with pytest.raises(InputError, match=r"no frames between 3 s and 4 s in short.mp4 \(0.25 s"):
        video.read_frames(clip, start=3.0, duration=1.0)
    with pytest.raises(InputError, match="start must be"):
        video.read_frames(clip, start=-1)
    with pytest.raises(InputError, match="duration must be"):
        video.read_frames(clip, duration=0)
    with pytest.raises(InputError, match="every must be"):
        video.read_frames(clip, every=0)
    # Between two frames: known only once decoding has passed the window.
    with pytest.raises(InputError, match="no frames between 0.1 s and 0.11 s"):
        list(video.read_frames(clip, start=0.1, duration=0.01))


def test_unknown_output_extensions_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"cannot write video 'x.flv': choose \.mp4, \.mov"):
        video.output_codec("x.flv")
    with pytest.raises(InputError, match="'x.flv'"):
        video.VideoWriter(tmp_path / "x.flv", fps=24, width=8, height=8)
    with pytest.raises(InputError, match="does not exist"):
        video.check_video_output(tmp_path / "missing" / "x.mp4")
    assert [video.output_codec(f"x{s}") for s in (".MP4", ".webm", ".avi")] == [
        "libx264",
        "libvpx-vp9",
        "mpeg4",
    ]
    assert video.is_video_path("clip.MOV") and not video.is_video_path("clip.png")


def test_abort_and_an_error_in_the_block_leave_nothing_behind(tmp_path):
    writer = video.VideoWriter(tmp_path / "out.mp4", fps=24, width=64, height=48)
    writer.write(grey(0.5))
    writer.abort()
    with (
        pytest.raises(RuntimeError),
        video.VideoWriter(tmp_path / "out.mp4", fps=24, width=64, height=48) as writer,
    ):
        writer.write(grey(0.5)[None])
        raise RuntimeError("stop")
    with pytest.raises(InputError, match=r"is \(3, 8, 8\), expected \(3, 48, 64\)"):
        with video.VideoWriter(tmp_path / "out.mp4", fps=24, width=64, height=48) as writer:
            writer.write(torch.zeros(3, 8, 8))
    assert list(tmp_path.iterdir()) == []


def test_close_as_leaves_a_playable_partial_file(tmp_path):
    source = make_clip(tmp_path / "talk.mp4", frames=24, audio_seconds=1.0)
    writer = video.VideoWriter(tmp_path / "out.mp4", fps=24, width=64, height=48, audio_from=source)
    for index in range(6):
        writer.write(grey(level(index) / 255))
    partial = writer.close_as(tmp_path / "out.partial.mp4")
    assert not (tmp_path / "out.mp4").exists()
    info = video.probe(partial)
    assert (info.frames, info.audio_codec) == (6, "aac")
    assert levels(partial) == pytest.approx([level(i) for i in range(6)], abs=2)
    assert audio_packets(partial)[-1][0] < 0.25 + 0.03  # the audio stops with the picture
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial.mp4", "talk.mp4"]


def test_frame_folders_are_listed_in_natural_order(tmp_path):
    for name in ["frame_10.png", "frame_2.png", "frame_1.JPG", ".frame_0.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "frame_3.png").mkdir()
    names = [path.name for path in video.list_frames(tmp_path)]
    assert names == ["frame_1.JPG", "frame_2.png", "frame_10.png"]
    assert video.frame_name(123) == "frame_000123.png"
    assert video.frame_name(7, digits=3, ext="jpg") == "frame_007.jpg"
    with pytest.raises(InputError, match="has no frames"):
        video.list_frames(tmp_path / "frame_3.png")
    with pytest.raises(InputError, match="not found"):
        video.list_frames(tmp_path / "missing")


def test_frames_of_different_sizes_are_named(tmp_path, sintel):
    from impasto.images import save_image

    assert video.check_frame_sizes(video.list_frames(SINTEL)) == (512, 218)
    save_image(torch.zeros(1, 3, 218, 512), tmp_path / "a.png")
    save_image(torch.zeros(1, 3, 480, 640), tmp_path / "b.png")
    with pytest.raises(InputError, match="different sizes: a.png is 512x218, b.png is 640x480"):
        video.check_frame_sizes(video.list_frames(tmp_path))


def test_importing_impasto_video_needs_no_pyav_and_using_it_says_how_to_get_it(monkeypatch):
    code = "import sys, impasto.video\nassert 'av' not in sys.modules, 'av imported'\n"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    with pytest.raises(InputError, match=r"pip install 'impasto\[video\]'"):
        video.probe("clip.mp4")
