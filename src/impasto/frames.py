"""The frame runner: a clip (a video file or a folder of numbered frames) through any prepared
method, frame by frame, with temporal consistency (impasto.temporal), resumable.

A frame is a picture like any other: it goes through ``Prepared.checked_run``, the same code
as a photo. Around it:

- ``open_clip`` checks the input (readable, has frames, one frame size) before any work;
  ``clip_target`` checks the output (a video file whose codec this build has, or a folder).
- Each finished frame is written at once: into the output folder, or, for a video, into a
  work folder beside it (``out.mp4.impasto-work/``) while the encoder takes it too. Memory
  holds two frames whatever the clip's length.
- ``resume``: the frames already in the output or work folder are kept (if the job file there
  says they were made by the same method, settings and input) and the run goes on from the
  next one. Without it, an interrupted job's folder is never overwritten.
- A stop (Ctrl-C, SIGTERM, a cancel) closes the video as ``out.partial.mp4``, a playable file
  of the frames so far, and keeps the work folder for ``--resume``; a finished video replaces
  the work folder.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from . import video
from .batch import partial_path
from .errors import InputError
from .files import atomic_write
from .images import check_output_path, load_image, save_image
from .methods.base import Prepared
from .pipeline import recipe_of
from .progress import ProgressCallback, ProgressEvent, report
from .provenance import describe_file, settings_of
from .temporal import DEFAULT_DESIGN, Stabiliser

JOB_FILE = "impasto-job.json"
WORK_SUFFIX = ".impasto-work"
DEFAULT_FPS = Fraction(24)


@dataclass
class Clip:
    """An input clip: a video (``info``) or a frame folder (``files``), with the window asked
    for (``start`` and ``duration`` in seconds, every ``every``-th frame)."""

    path: Path
    info: video.VideoInfo | None = None
    files: list[Path] = field(default_factory=list)
    start: float = 0.0
    duration: float | None = None
    every: int = 1
    fps: Fraction = DEFAULT_FPS

    @property
    def is_video(self) -> bool:
        return self.info is not None

    def expected_frames(self) -> int | None:
        """How many frames the window holds (an estimate for a video), or None if unknown."""
        if not self.is_video:
            return len(self.files)
        rate = float(self.info.fps)
        length = self.info.duration
        if length is None:
            return None
        span = max(0.0, length - self.start)
        if self.duration is not None:
            span = min(span, self.duration)
        return max(1, round(span * rate) // self.every) if span > 0 else None

    def frames(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, (1, 3, H, W) frame) in order; names are the frame files' stems, or
        ``frame_000000`` .. for a video."""
        if self.is_video:
            for frame in video.read_frames(self.path, start=self.start, duration=self.duration,
                                           every=self.every):  # fmt: skip
                yield f"frame_{frame.index:06d}", frame.rgb[None]
            return
        for path in self.files:
            yield path.stem, load_image(path).rgb

    def describe(self) -> dict[str, Any]:
        """What identifies the input for a resumed job."""
        if self.is_video:
            source: Any = describe_file(self.path)
        else:
            source = [describe_file(path)["sha256"] for path in self.files]
        return {"source": source, "start": self.start, "duration": self.duration,
                "every": self.every}  # fmt: skip


def open_clip(path: str | os.PathLike, *, start: float = 0.0, duration: float | None = None,
              every: int = 1, fps: Fraction | None = None) -> Clip:  # fmt: skip
    """Check and open a clip: a video file, or a folder of numbered frames (one size). For a
    folder, ``start``/``duration`` count in frames of ``fps`` (default 24)."""
    path = Path(path).expanduser()
    if every < 1:
        raise InputError(f"--every must be at least 1, not {every}")
    if start < 0 or (duration is not None and duration <= 0):
        raise InputError("--start must be >= 0 and --duration > 0 (seconds)")
    if path.is_dir():
        files = video.list_frames(path)
        video.check_frame_sizes(files)
        rate = fps or DEFAULT_FPS
        first = round(start * rate)
        last = len(files) if duration is None else first + max(1, round(duration * rate))
        window = files[first:last:every]
        if not window:
            raise InputError(f"no frames in the window asked for: {path} has {len(files)}")
        return Clip(path, None, window, start, duration, every, rate)
    if not path.exists():
        raise InputError(f"input '{path}' not found")
    if not video.is_video_path(path):
        raise InputError(
            f"'{path.name}' is not a video ({', '.join(video.VIDEO_EXTENSIONS)}) nor a folder "
            "of frames"
        )
    info = video.probe(path)
    if info.duration is not None and start >= info.duration:
        raise InputError(f"--start {start:g} s is past the end of {path.name} "
                         f"({info.duration:.2f} s long)")  # fmt: skip
    return Clip(path, info, [], start, duration, every, fps or info.fps)


@dataclass
class ClipTarget:
    """Where a clip's frames go: a video file (``is_video``) or a folder."""

    path: Path
    is_video: bool

    @property
    def work(self) -> Path:
        """The folder of finished frames: the output folder, or the video's work folder."""
        return self.path.with_name(self.path.name + WORK_SUFFIX) if self.is_video else self.path

    @property
    def partial(self) -> Path:
        return partial_path(self.path)


def clip_target(output: str | os.PathLike, clip: Clip) -> ClipTarget:
    """Check the output of ``clip`` before any work: a video file (``VIDEO_EXTENSIONS``, its
    codec available, the audio copyable into it) or a folder (no extension)."""
    path = Path(output).expanduser()
    if path.suffix and not video.is_video_path(path):
        raise InputError(
            f"a clip is written as a video ({', '.join(video.VIDEO_EXTENSIONS)}) or into a "
            f"folder of frames, not as '{path.name}'"
        )
    sources = {clip.path.resolve(), *(file.resolve() for file in clip.files)}
    if path.resolve() in sources:
        raise InputError(f"output '{path}' would overwrite the input")
    if video.is_video_path(path):
        audio = clip.info.audio_codec if clip.info is not None else None
        video.check_video_output(path, audio_codec=audio)
        return ClipTarget(path, True)
    if path.exists() and not path.is_dir():
        raise InputError(f"output '{path}' exists and is not a folder")
    if not path.parent.is_dir():
        raise InputError(f"output folder {path.parent} does not exist")
    return ClipTarget(path, False)


@dataclass
class ClipReport:
    """What a clip run did: frames written (``resumed`` of them from before), size, time."""

    path: Path
    frames: int = 0
    resumed: int = 0
    width: int = 0
    height: int = 0
    seconds: float = 0.0
    temporal: float = 0.0


def fingerprint(prepared: Prepared, clip: Clip, strength: float, design: str) -> dict:
    """What must match for ``--resume`` to keep the frames already made."""
    recipe = recipe_of(prepared)
    return {
        "method": prepared.method,
        "settings": settings_of(recipe.config),
        "model": recipe.model,
        "styles": [style.get("sha256") for style in recipe.styles],
        "input": clip.describe(),
        "temporal": {"strength": strength, "design": design},
    }


def _frames_done(target: ClipTarget, job: dict, resume: bool) -> int:
    """How many frames an earlier run of this job left (0 when starting afresh); InputError
    when an interrupted job is there and ``resume`` is not set, or it was another job."""
    job_file = target.work / JOB_FILE
    if not job_file.is_file():
        return 0
    if not resume:
        raise InputError(
            f"{target.work} holds the frames of an interrupted job: add --resume to continue "
            "it, or delete that folder to start again"
        )
    try:
        earlier = json.loads(job_file.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{job_file} cannot be read ({error}); delete it to start again") from None
    if earlier.get("job") != job:
        raise InputError(
            f"{target.work} holds frames made with other settings or inputs; --resume needs "
            "the same command (or delete that folder to start again)"
        )
    return int(earlier.get("frames", 0))


def _write_job(target: ClipTarget, job: dict, frames: int) -> None:
    text = json.dumps({"job": job, "frames": frames}, indent=1).encode()
    atomic_write(target.work / JOB_FILE, lambda handle: handle.write(text))


def stylize_clip(prepared: Prepared, clip: Clip, target: ClipTarget, *, temporal: float,
                 design: str = DEFAULT_DESIGN, resume: bool = False,
                 progress: ProgressCallback | None = None) -> ClipReport:  # fmt: skip
    """Stylise every frame of ``clip`` into ``target`` (module docstring); ``temporal``: the
    consistency strength (0: plain per-frame output)."""
    job = fingerprint(prepared, clip, temporal, design)
    done = _frames_done(target, job, resume)
    # Methods that take a prior keep the clip consistent themselves: their stabiliser only
    # remembers the frames (strength 0).
    stabiliser = Stabiliser(0.0 if prepared.takes_prior else temporal, design)
    total = clip.expected_frames() or 0
    report_ = ClipReport(target.path, resumed=done, temporal=temporal)
    writer: video.VideoWriter | None = None
    started = time.perf_counter()
    count = finished = 0
    work_existed = target.work.exists()
    try:
        for count, (name, frame) in enumerate(clip.frames(), start=1):
            out_file = target.work / f"{name}.png"
            if count <= done:  # made before: keep it, and remember it as the previous frame
                output = load_image(out_file).rgb
                stabiliser.memory.remember(frame, output)
            else:
                if count == 1:  # the job file first: a stop from now on can be resumed
                    target.work.mkdir(parents=True, exist_ok=True)
                    _write_job(target, job, 0)
                output = _stylize_frame(prepared, frame, stabiliser, temporal, progress)
                save_image(output, check_output_path(out_file))
                _write_job(target, job, count)
                finished += 1
            if target.is_video:
                if writer is None:
                    writer = _open_writer(clip, target, output)
                writer.write(output)
            report_.height, report_.width = output.shape[-2:]
            total = max(total, count)
            if count > done:
                report(progress, ProgressEvent("frame", count, total, kind="item", item=name))
    except BaseException:
        if writer is not None:
            _keep_partial(writer, target)
        if not finished and not done:  # nothing finished: nothing to resume, leave nothing
            _forget_work(target, work_existed)
        raise
    finally:
        stabiliser.close()
    if count == 0:
        raise InputError(f"{clip.path} gave no frames")
    if writer is not None:
        writer.close()
        shutil.rmtree(target.work, ignore_errors=True)
        target.partial.unlink(missing_ok=True)
    else:
        (target.work / JOB_FILE).unlink(missing_ok=True)
    report(progress, ProgressEvent("done", count, count, kind="done"))
    report_.frames = count
    report_.seconds = time.perf_counter() - started
    return report_


def _forget_work(target: ClipTarget, existed: bool) -> None:
    """Remove what a run that finished no frame made: the job file, and the video's work
    folder when this run created it."""
    (target.work / JOB_FILE).unlink(missing_ok=True)
    if target.is_video and not existed:
        shutil.rmtree(target.work, ignore_errors=True)


def _stylize_frame(prepared: Prepared, frame: torch.Tensor, stabiliser: Stabiliser,
                   temporal: float, progress: ProgressCallback | None) -> torch.Tensor:  # fmt: skip
    """One frame: the method (with the warped previous frame as prior, for methods that take
    one), then the post-process (which also remembers the frame for the next one); the
    post-process's flow runs beside the method."""
    prior = None
    memory = stabiliser.memory
    if prepared.takes_prior and temporal > 0 and memory.output is not None:
        prior = memory.prior(frame, tuple(memory.output.shape[-2:]), temporal)
    stabiliser.begin(frame)
    output = prepared.checked_run(frame, progress, prior=prior).image[:1]
    return stabiliser(frame, output)


def _open_writer(clip: Clip, target: ClipTarget, first: torch.Tensor) -> video.VideoWriter:
    height, width = first.shape[-2:]
    info = clip.info
    fps = (info.fps if info is not None else clip.fps) / clip.every
    audio = clip.path if info is not None and info.audio_codec else None
    return video.VideoWriter(
        target.path, fps=fps, width=width, height=height,
        rotation=info.rotation if info is not None else 0,
        sample_aspect=info.sample_aspect if info is not None else Fraction(1),
        audio_from=audio, audio_start=clip.start, audio_duration=clip.duration,
    )  # fmt: skip


def _keep_partial(writer: video.VideoWriter, target: ClipTarget) -> None:
    """After a stop: the frames so far as a playable ``out.partial.mp4`` (never ``out.mp4``,
    never a broken file); a failure to write it never hides the stop."""
    try:
        writer.close_as(target.partial)
    except Exception:  # noqa: BLE001 - the stop matters more than its keepsake
        try:
            writer.abort()
        except Exception:  # noqa: BLE001
            pass
