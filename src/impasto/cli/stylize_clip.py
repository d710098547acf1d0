"""``impasto stylize`` on a clip: a video file, or a folder of numbered frames with
``--frames``. Its options (``add_clip_flags``), how a command is recognised as a clip
(``is_clip_job``), its progress bar in frames (``FrameView``) and the run (``run_clip``) over
impasto.frames: the same methods, the same checks, the same provenance of settings."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .terminal import ProgressView, Terminal

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")  # impasto.video's (no av)
TEMPORAL_DEFAULT = "0.6"
DESIGN_CHOICES = ("carry", "blend", "lowpass")  # impasto.temporal.TEMPORAL_DESIGNS (no torch)


def add_clip_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "video options (a video file in, or a folder of frames with --frames; needs the video "
        "extra: pip install 'impasto[video]')"
    )
    group.add_argument("--frames", action="store_true",
                       help="the input folder is one clip (frames in name order), not a batch "
                       "of separate images; OUT is then a video file or a folder")  # fmt: skip
    group.add_argument("--temporal", metavar="STRENGTH", default=None,
                       help="temporal consistency from 0 to below 1, or 'off' for plain "
                       f"per-frame output (default: {TEMPORAL_DEFAULT} for clips)")  # fmt: skip
    group.add_argument("--temporal-design", choices=DESIGN_CHOICES, default="carry",
                       help="how feed-forward outputs are made consistent (docs/video.md; "
                       "default: %(default)s)")  # fmt: skip
    group.add_argument("--start", type=float, default=0.0, metavar="SECONDS",
                       help="begin this far into the clip (default: 0)")  # fmt: skip
    group.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                       help="stylise this many seconds (default: to the end)")  # fmt: skip
    group.add_argument("--every", type=int, default=1, metavar="N",
                       help="keep every N-th frame (the frame rate is divided by N)")  # fmt: skip
    group.add_argument("--fps", type=float, default=None, metavar="RATE",
                       help="frame rate of a folder of frames (default: 24)")  # fmt: skip
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted clip from its finished frames")  # fmt: skip


def is_clip_job(args: argparse.Namespace, inputs: Sequence[str]) -> bool:
    """A clip: one video file in, ``--frames`` with one folder, or a video file out."""
    if getattr(args, "frames", False):
        return True
    if len(inputs) != 1:
        return False
    given = Path(inputs[0]).expanduser()
    return given.suffix.lower() in VIDEO_EXTENSIONS or (
        Path(args.output).suffix.lower() in VIDEO_EXTENSIONS
    )


class FrameView(ProgressView):
    """Frames done, frames per second and the time left, as one bar (or a line per tenth when
    stderr is not a terminal); the method's own steps are not drawn."""

    def __init__(self, terminal: Terminal, quiet: bool = False) -> None:
        super().__init__(terminal, quiet=quiet)
        self.started = time.monotonic()  # reset by on_ready: frames count from there
        self.first_done: int | None = None

    def on_ready(self) -> None:
        """The method is prepared: the first frame's time starts now."""
        self.started = time.monotonic()

    def on_step(self, event) -> None:
        return None

    def on_stage(self, event) -> None:
        return None

    def on_item(self, event) -> None:
        if self.quiet:
            return
        if self.first_done is None:  # the first frame made by this run (after kept ones)
            self.first_done = event.step - 1
        rate = (event.step - self.first_done) / max(1e-9, time.monotonic() - self.started)
        speed = f"{rate:.2f} fps" if rate >= 0.1 else f"{1 / max(rate, 1e-9):.1f} s/frame"
        if self.terminal.interactive:
            if self.bar is None:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeRemainingColumn,
                )

                self._start("item", TextColumn("frames"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[speed]}"), TimeRemainingColumn())  # fmt: skip
                self.task = self.bar.add_task("frames", total=event.total, speed=speed)
            self.bar.update(self.task, completed=event.step, total=event.total, speed=speed)
        elif self._new_tenth("item", event):
            self.terminal.line(f"frame {event.step}/{event.total} ({speed})")

    def on_done(self, event) -> None:
        self.close()


def run_clip(args: argparse.Namespace, terminal: Terminal, method: str, config: Any,
             inputs: Sequence[str], styles: Sequence[str]) -> int:  # fmt: skip
    """Stylise one clip; returns the exit code (errors are raised, the caller maps them)."""
    from fractions import Fraction

    from .. import frames, images, pipeline
    from ..errors import InputError
    from ..temporal import parse_temporal

    if len(inputs) != 1:
        raise InputError("stylise one clip at a time (one video file or one folder of frames)")
    source = Path(inputs[0]).expanduser()
    if source.is_dir() and not args.frames:
        raise InputError(f"{source} is a folder: add --frames to stylise it as one clip")
    temporal = parse_temporal(args.temporal if args.temporal is not None else TEMPORAL_DEFAULT)
    fps = None
    if args.fps is not None:
        if not 0 < args.fps <= 1000:
            raise InputError(f"--fps must be above 0 and at most 1000, not {args.fps}")
        fps = Fraction(args.fps).limit_denominator(1001)
    if fps is not None and not source.is_dir():
        raise InputError("--fps is for a folder of frames: a video keeps its own frame rate")
    clip = frames.open_clip(source, start=args.start, duration=args.duration, every=args.every,
                            fps=fps)  # fmt: skip
    target = frames.clip_target(args.output, clip)
    style_images = [images.load_image(path, max_pixels=args.max_pixels) for path in styles]
    with FrameView(terminal, quiet=args.quiet) as view:
        prepared = pipeline.prepare(method, config, style_images, progress=view,
                                    notify=terminal.line)  # fmt: skip
        view.on_ready()
        try:
            report = frames.stylize_clip(prepared, clip, target, temporal=temporal,
                                         design=args.temporal_design, resume=args.resume,
                                         progress=view)  # fmt: skip
        except BaseException as stop:
            view.close()
            if isinstance(stop, InputError):  # a refusal or bad input: its own line says it
                raise
            if target.partial.is_file():
                terminal.line(f"kept the frames so far in {target.partial}")
            if (target.work / frames.JOB_FILE).is_file():
                terminal.line(f"`--resume` with the same command continues from {target.work}")
            raise
    made = report.frames - report.resumed
    each = report.seconds / made if made else 0.0
    consistency = f"temporal {report.temporal:g}" if report.temporal else "temporal off"
    resumed = f", {report.resumed} kept from before" if report.resumed else ""
    terminal.line(
        f"wrote {report.path} ({report.frames} frames, {report.width}x{report.height}{resumed}) "
        f"in {report.seconds:.1f} s: {each:.3g} s per frame — {method}, {prepared.summary()}, "
        f"{consistency}"
    )
    return 0
