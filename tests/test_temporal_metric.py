"""Tests for the temporal metric (impasto.metrics.temporal) and ``impasto evaluate`` on clips
(impasto.metrics.clips): video files and folders of frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import error_line, run_cli, small_photo

import impasto
from impasto import metrics
from impasto.errors import InputError
from impasto.metrics import TEMPORAL_FLOW, WarpingError, evaluate_clip, warping_error

pytest.importorskip(
    "cv2", reason="optical-flow tests need the video extra: pip install -e '.[video]'"
)

SINTEL = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "sintel_raft_demo"


def texture(height: int, width: int, seed: int, cell: int = 8) -> torch.Tensor:
    """A smooth random RGB texture (1, 3, H, W) in [0.2, 0.8] (room for noise without clipping)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // cell + 3, width // cell + 3, generator=generator)
    fine = F.interpolate(coarse, scale_factor=cell, mode="bicubic", align_corners=False)
    return (0.2 + 0.6 * fine[..., :height, :width].clamp(0, 1)).contiguous()


def panning(frames: int, height: int = 48, width: int = 64, step: int = 2) -> list[torch.Tensor]:
    """A camera panning right over a wide texture by ``step`` pixels a frame."""
    wide = texture(height, width + step * frames, seed=7)
    return [wide[..., :, step * t : step * t + width] for t in range(frames)]


@pytest.fixture(scope="module")
def sintel() -> list[torch.Tensor]:
    """The ten Sintel frames at 128 x 54 (quick), (1, 3, H, W) each."""
    files = sorted(SINTEL.glob("*.jpg"))
    if len(files) < 4:
        pytest.skip(
            f"the project's clips are not beside this checkout (no Sintel frames in {SINTEL})"
        )
    frames = [impasto.load_image(path).rgb for path in files[:6]]
    return [F.interpolate(f, size=(54, 128), mode="area").clamp(0, 1) for f in frames]


def mean_change(frames) -> float:
    """The mean squared difference between consecutive frames, without following the motion."""
    pairs = zip(frames, frames[1:], strict=False)
    return sum(float((a - b).square().mean()) for a, b in pairs) / (len(frames) - 1)


def write_frames(folder: Path, frames, ext: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        impasto.save_image(frame, folder / f"frame_{index + 1}{ext}")  # natural order: 1 .. 10
    return folder


# --------------------------------------------------------------------------- the metric


def test_a_still_clip_has_no_warping_error():
    frame = texture(48, 64, seed=1)
    report = warping_error([frame] * 4, [frame] * 4)
    assert report.output < 1e-10 and report.input < 1e-10
    assert report.ratio is None  # no ratio against a still input: it would be noise over zero
    assert report.pairs == 3 and report.reliable_fraction > 0.99
    assert report.flow == TEMPORAL_FLOW == "opencv-dis-medium"


def test_independent_noise_per_frame_raises_the_error_by_twice_its_variance():
    # out_t = frame + n_t with n_t independent, std s: out_t - out_{t-1} = n_t - n_{t-1} has
    # variance 2 s^2 in every channel, so the mean squared difference is 2 s^2.
    frame = texture(48, 64, seed=2)
    generator = torch.Generator().manual_seed(3)
    std = 0.05
    outputs = [frame + std * torch.randn(frame.shape, generator=generator) for _ in range(5)]
    assert min(float(o.min()) for o in outputs) > 0 and max(float(o.max()) for o in outputs) < 1
    report = warping_error(outputs, [frame] * 5)
    assert report.output == pytest.approx(2 * std**2, rel=0.1)
    assert report.input < 1e-10


def test_outputs_that_are_the_inputs_score_ratio_one():
    frames = panning(5)
    report = warping_error(frames, frames)
    assert report.ratio == pytest.approx(1.0, abs=1e-9)
    assert report.output == report.input
    assert len(report.per_pair_output) == len(report.per_pair_input) == report.pairs == 4
    # The pan is followed: the warped previous frame matches, the plain one does not.
    assert report.input < mean_change(frames) / 10


def test_flicker_in_a_moving_clip_raises_the_ratio():
    frames = panning(5)
    flicker = [frame * (0.9 if t % 2 else 1.1) for t, frame in enumerate(frames)]
    report = warping_error(flicker, frames)
    assert report.ratio > 5


def test_outputs_at_another_size_are_measured_at_their_own_size():
    # A pan of 3 pixels a frame, 1.5 at half the size: the input, resized to the output's size
    # for the flow, moves as the output does and scores about the same.
    frames = panning(5, height=96, width=128, step=3)
    half = [F.interpolate(f, size=(48, 64), mode="bicubic", antialias=True) for f in frames]
    report = warping_error(half, frames)
    assert report.ratio == pytest.approx(1.0, rel=0.25)
    # Frames (3, H, W) are accepted too.
    assert warping_error([f[0] for f in half], frames).output == pytest.approx(report.output)
    # Noise in the half-size output counts at the output's resolution: 2 s^2 as at full size.
    generator = torch.Generator().manual_seed(4)
    still = [frames[0]] * 4
    small = F.interpolate(frames[0], size=(48, 64), mode="bicubic", antialias=True)
    noisy = [small + 0.05 * torch.randn(small.shape, generator=generator) for _ in range(4)]
    assert warping_error(noisy, still).output == pytest.approx(2 * 0.05**2, rel=0.1)


def test_real_frames_scored_against_themselves(sintel):
    report = warping_error(sintel, sintel)
    assert report.ratio == pytest.approx(1.0, abs=1e-9)
    assert report.input < mean_change(sintel)
    assert 0.5 < report.reliable_fraction <= 1


def test_warping_error_is_streamed_from_generators():
    frames = panning(4)
    seen = []

    def outputs():
        for frame in frames:
            seen.append(1)
            yield frame

    report = warping_error(outputs(), iter(frames))
    assert report.pairs == 3 and len(seen) == 4
    accumulator = WarpingError()
    for frame in frames:
        accumulator.add(frame, frame)
    assert accumulator.report().output == report.input


@pytest.mark.parametrize(
    "outputs, inputs, words",
    [
        (1, 1, "at least 2 frames"),
        (3, 4, "outputs have 3 frames and the inputs more"),
        (4, 3, "inputs have 3 frames and the outputs more"),
    ],
)
def test_warping_error_refuses_too_few_or_unequal_frames(outputs, inputs, words):
    frames = panning(4)
    with pytest.raises(InputError, match=words):
        warping_error(frames[:outputs], frames[:inputs])


def test_warping_error_refuses_frames_of_changing_size_or_aspect():
    frames = panning(3)
    with pytest.raises(InputError, match="output frame 2 is 32x24, but frame 0 was 64x48"):
        warping_error([*frames[:2], frames[2][..., :24, :32]], frames)
    with pytest.raises(InputError, match="aspect ratios"):
        warping_error([f[..., :, :40] for f in frames], frames)
    with pytest.raises(InputError, match="shape"):
        warping_error([f[:, :1] for f in frames], frames)


# --------------------------------------------------------------------------- evaluate a clip


def test_evaluate_clip_averages_the_frame_metrics_over_the_scored_frames(tmp_path):
    inputs = panning(5)
    outputs = [(frame * 0.8 + 0.1) for frame in inputs]
    content, output = write_frames(tmp_path / "in", inputs), write_frames(tmp_path / "out", outputs)
    style = small_photo(tmp_path)
    report = evaluate_clip(output, content, style, metrics=["ssim"], frame_step=2)
    assert report.frame_count == 5 and report.frame_step == 2
    assert report.scored_frames == [0, 2, 4]
    # The same as evaluating the saved frames 0, 2 and 4 one by one, averaged.
    names = sorted((tmp_path / "out").iterdir(), key=lambda p: int(p.stem.split("_")[1]))
    singles = [
        metrics.evaluate(names[t], tmp_path / "in" / names[t].name, style, metrics=["ssim"])
        for t in (0, 2, 4)
    ]
    assert report.evaluation.metrics["ssim"] == pytest.approx(
        sum(s.metrics["ssim"] for s in singles) / 3, abs=1e-9
    )
    content_ssim = report.evaluation.references["content"]["ssim"]
    assert content_ssim == pytest.approx(1.0, abs=1e-6)
    assert report.temporal.pairs == 4  # every frame, whatever the step
    data = report.to_dict()
    assert data["frames"] == {"count": 5, "step": 2, "scored": [0, 2, 4]}
    assert data["temporal"]["flow"] == "opencv-dis-medium"


def test_the_default_frame_step_scores_at_most_twenty_frames(tmp_path):
    frames = panning(25, height=24, width=32, step=1)
    folder = write_frames(tmp_path / "clip", frames)
    report = evaluate_clip(folder, folder, small_photo(tmp_path), metrics=["ssim"])
    assert report.frame_step == 2 and report.scored_frames == list(range(0, 25, 2))


def test_evaluate_clip_reads_a_video_file(tmp_path):
    av = pytest.importorskip(
        "av", reason="video tests need the video extra: pip install -e '.[video]'"
    )
    frames = panning(6, height=48, width=64)
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.qscale = 2
        for frame in frames:
            pixels = (frame[0].permute(1, 2, 0) * 255).round().byte().numpy()
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    folder = write_frames(tmp_path / "frames", frames)
    # A video against the frame folder it was made from: a clip of either kind.
    report = evaluate_clip(path, folder, small_photo(tmp_path), metrics=["ssim"])
    assert report.frame_count == 6 and report.temporal.pairs == 5
    assert report.evaluation.metrics["ssim"] > 0.9  # lossy coding, but the same pictures
    # The motion is followed: far below the plain frame difference (coding noise remains).
    assert report.temporal.output < mean_change(frames) / 5


def test_cli_scores_two_frame_folders_as_json(capsys, tmp_path, sintel):
    content = write_frames(tmp_path / "in", sintel[:4])
    output = write_frames(tmp_path / "out", [frame.flip(1) for frame in sintel[:4]])  # BGR
    code, out, err = run_cli(
        capsys,
        "evaluate",
        output,
        "--content",
        content,
        "--style",
        small_photo(tmp_path),
        "--backbone",
        "tiny",
        "--metrics",
        "ssim",
        "style_ratio",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    temporal = report["temporal"]
    assert set(temporal) >= {"warping_error", "input_warping_error", "ratio", "flow", "pairs"}
    assert temporal["flow"] == "opencv-dis-medium" and temporal["pairs"] == 3
    assert temporal["ratio"] == pytest.approx(
        temporal["warping_error"] / temporal["input_warping_error"]
    )
    assert 0 < temporal["reliable_fraction"] <= 1
    assert report["frames"] == {"count": 4, "step": 1, "scored": [0, 1, 2, 3]}
    assert set(report["metrics"]) == {"ssim", "style_ratio"}
    assert report["backbone"] == "tiny"


def test_cli_prints_a_table_for_a_clip(capsys, tmp_path, sintel):
    folder = write_frames(tmp_path / "clip", sintel[:3])
    code, out, _ = run_cli(
        capsys,
        "evaluate",
        folder,
        "--content",
        folder,
        "--style",
        small_photo(tmp_path),
        "--metrics",
        "ssim",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["ssim", "1.0000", "1.0000"]
    warping = next(line for line in lines if line.startswith("warping_error "))
    assert warping.split()[1] == warping.split()[2]  # the content clip scored as itself
    assert "frames: 3; per-frame metrics averaged over 3 of them (every 1: 0, 1, 2)" in out
    assert "warping_error: 1.00 x the content's; flow opencv-dis-medium; 2 frame pairs" in out


def _clip_error(capsys, tmp_path, output, content, *extra) -> str:
    code, out, err = run_cli(
        capsys,
        "evaluate",
        output,
        "--content",
        content,
        "--style",
        small_photo(tmp_path),
        "--metrics",
        "ssim",
        *extra,
    )
    assert code == 2 and out == ""
    return error_line(err)


def test_cli_refuses_a_clip_of_one_frame(capsys, tmp_path):
    folder = write_frames(tmp_path / "one", panning(1))
    assert "at least 2" in _clip_error(capsys, tmp_path, folder, folder)


def test_cli_refuses_clips_of_different_lengths(capsys, tmp_path):
    frames = panning(4)
    short, long = write_frames(tmp_path / "a", frames[:3]), write_frames(tmp_path / "b", frames)
    line = _clip_error(capsys, tmp_path, short, long)
    assert "has 3 frames" in line and " 4;" in line


def test_cli_refuses_a_folder_of_mixed_sizes(capsys, tmp_path):
    frames = panning(3)
    mixed = write_frames(tmp_path / "mixed", [*frames[:2], frames[2][..., :24, :32]])
    line = _clip_error(capsys, tmp_path, mixed, write_frames(tmp_path / "even", frames))
    assert "frame_3.png is 32x24 but frame_1.png is 64x48" in line


def test_cli_refuses_a_clip_scored_against_an_image(capsys, tmp_path):
    folder = write_frames(tmp_path / "clip", panning(3))
    line = _clip_error(capsys, tmp_path, folder, small_photo(tmp_path))
    assert "is not a clip" in line


def test_cli_frame_step_is_for_clips_only(capsys, tmp_path):
    photo = small_photo(tmp_path)
    assert "clips" in _clip_error(capsys, tmp_path, photo, photo, "--frame-step", "2")
    folder = write_frames(tmp_path / "clip", panning(3))
    assert "frame step" in _clip_error(capsys, tmp_path, folder, folder, "--frame-step", "0")


def test_evaluate_clip_loads_the_network_once_and_scores_as_evaluate_does(tmp_path, monkeypatch):
    from impasto.backbones import load_backbone

    network = load_backbone("tiny")
    calls = []
    forward = network.forward

    def counted(image, layers):
        calls.append(tuple(image.shape))
        return forward(image, layers)

    monkeypatch.setattr(network, "forward", counted)
    loads = []
    monkeypatch.setattr(
        "impasto.metrics.clips.load_scoring_backbone", lambda name: loads.append(name) or network
    )
    inputs = panning(3)
    outputs = [frame.flip(1) for frame in inputs]
    content, output = write_frames(tmp_path / "in", inputs), write_frames(tmp_path / "out", outputs)
    style = small_photo(tmp_path)
    names = ["style_ratio", "meanstd_distance"]
    report = evaluate_clip(output, content, style, backbone="tiny", metrics=names)
    assert loads == ["tiny"]
    # Per frame: the output, the content and the style stand-in; the style itself once.
    assert len(calls) == 3 * 3 + 1
    singles = [
        metrics.evaluate(
            output / f"frame_{t}.png",
            content / f"frame_{t}.png",
            style,
            backbone=network,
            metrics=names,
            references=False,
        )
        for t in (1, 2, 3)
    ]
    for name in names:
        expected = sum(single.metrics[name] for single in singles) / 3
        assert report.evaluation.metrics[name] == pytest.approx(expected, rel=1e-6)
