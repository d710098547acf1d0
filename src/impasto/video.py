"""Video files in and out with PyAV: probe, decode frames lazily, encode frames with audio.

PyAV (the ``video`` extra) is imported inside the functions, never with this module. Frames are
float32 RGB tensors (3, H, W) in [0, 1] as stored. An output keeps (checked on PyAV 18):

- the frame rate, as an exact Fraction (the encoder's rate; 1/fps its time base);
- the rotation: :attr:`VideoInfo.rotation` is the clockwise turn a player gives the stored
  picture (the old ``rotate`` tag: 90 for a phone held upright), read from the display matrix
  of the first frame (``VideoFrame.rotation``, counter-clockwise) and written with
  ``VideoStream.set_display_rotation``; kept by MP4, MOV, MKV and WebM, not by AVI;
- the pixel aspect ratio, set on the encoder: in the H.264 / MPEG-4 bitstream (and MP4's
  ``pasp`` box). Lost in WebM: VP9 has no such field and PyAV cannot set the stream's;
- the first audio stream, its packets copied (not re-encoded) and shifted to the window.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch

from . import video_frames
from .errors import InputError
from .files import check_writable, os_reason, sweep_stale_temps, temp_file_for
from .video_frames import FRAME_EXTENSIONS, check_frame_sizes, frame_name, list_frames  # noqa: F401

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
_FORMATS = {".mp4": "mp4", ".mov": "mov", ".m4v": "mp4", ".mkv": "matroska", ".webm": "webm"}
_FORMATS[".avi"] = "avi"
_CODECS = {".webm": "libvpx-vp9", ".avi": "mpeg4"}  # the others: libx264
_ENCODER_OPTIONS = {
    "libx264": {"crf": "18", "preset": "medium"},
    "libvpx-vp9": {"crf": "24", "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "2"},
    "mpeg4": {},  # quality set by qscale instead
}
_BT709 = 1  # AVCOL_SPC/PRI/TRC_BT709: the tag for pictures with sRGB primaries
_ATTACHED_PIC = 0x400  # AV_DISPOSITION_ATTACHED_PIC: a cover picture, no clip
_EPSILON = 1e-6  # seconds: timestamps equal but for float rounding


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video file, by its extension (any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video file. ``width`` x ``height`` as stored (before
    rotation); ``rotation`` clockwise degrees (0/90/180/270); ``frames`` the stream's count,
    else estimated from the duration; ``codec`` and ``audio_codec`` FFmpeg's names (h264, aac)."""

    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int | None
    duration: float | None
    rotation: int
    sample_aspect: Fraction
    audio_codec: str | None
    codec: str


@dataclass
class Frame:
    """A decoded frame: ``rgb`` float32 (3, H, W) in [0, 1] as stored (not rotated); ``time`` in
    seconds from the stream's start; ``index`` among the frames yielded; ``source_index`` in
    the whole stream."""

    index: int
    source_index: int
    time: float
    rgb: torch.Tensor


def _av():
    try:
        import av
    except ImportError:
        raise InputError(
            "reading and writing video needs the video extra: pip install 'impasto[video]'"
        ) from None
    if int(av.__version__.split(".")[0]) < 18:  # display rotation and mux streams came in 18
        raise InputError(f"video needs PyAV 18 or newer, found {av.__version__}: pip install -U av")
    return av


def _av_errors(av) -> tuple[type[BaseException], ...]:
    return (av.error.FFmpegError, OSError, ValueError, EOFError)


def _reason(error: BaseException) -> str:
    """The words of an error: PyAV's and the OS's carry them in ``strerror``."""
    if isinstance(error, OSError):
        return os_reason(error)
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _open_input(path: Path):
    """(av, open container, its first video stream that is not a cover picture)."""
    av = _av()
    if not path.is_file():
        what = "file not found" if not path.exists() else "not a regular file"
        raise InputError(
            f"cannot read video '{path}': {'it is a folder' if path.is_dir() else what}"
        )
    if path.stat().st_size == 0:
        raise InputError(f"cannot read video '{path}': the file is empty")
    try:
        container = av.open(str(path))
    except _av_errors(av) as error:
        raise InputError(f"cannot read video '{path}': not a video ({_reason(error)})") from None
    streams = [s for s in container.streams.video if not s.disposition & _ATTACHED_PIC]
    if not streams:
        container.close()
        raise InputError(f"cannot read video '{path}': it has no video stream")
    streams[0].thread_type = "AUTO"  # decode with frame and slice threads
    return av, container, streams[0]


def _origin(stream) -> float:
    """Seconds of the stream's first timestamp: times here count from it."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _duration(container, stream) -> float | None:
    if stream.duration:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION", "")  # Matroska's per-stream length: "00:00:02.417"
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return container.duration / 1_000_000 if container.duration else None


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Size, rate, length, rotation, pixel aspect and codecs of a video file.

    Decodes the first frame: it proves there is one, and carries the display matrix.
    InputError, one line naming the file, when it is unreadable, not a video, or has no video
    stream or no frame.
    """
    path = Path(path).expanduser()
    av, container, stream = _open_input(path)
    with container:
        try:
            first = next(container.decode(stream), None)
        except _av_errors(av) as error:
            raise InputError(f"cannot read video '{path}': {_reason(error)}") from None
        if first is None:
            raise InputError(f"cannot read video '{path}': it has no frames")
        fps = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or 25)
        duration = _duration(container, stream)
        rotation = -first.rotation  # PyAV's is counter-clockwise
        aspect = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
        audio = next(iter(container.streams.audio), None)
        return VideoInfo(
            path=path,
            width=stream.codec_context.width or first.width,
            height=stream.codec_context.height or first.height,
            fps=fps,
            frames=stream.frames or (round(duration * fps) if duration else None) or None,
            duration=duration,
            rotation=90 * round(rotation / 90) % 360,
            sample_aspect=Fraction(aspect) if aspect else Fraction(1),
            audio_codec=audio.codec_context.codec.canonical_name if audio else None,
            codec=stream.codec_context.codec.canonical_name,
        )


def read_frames(
    path: str | os.PathLike[str],
    *,
    start: float = 0.0,
    duration: float | None = None,
    every: int = 1,
) -> Iterator[Frame]:
    """The frames of ``path`` whose time is in [start, start + duration) seconds, every
    ``every``-th of them, decoded one at a time (memory does not grow with the clip).

    Seeks to the keyframe before ``start``, then decodes forward to it exactly. After a seek,
    ``source_index`` comes from the frame's time and the average rate (exact for a constant
    rate); from the start it is counted. The file, the arguments and a window starting past
    the end are checked here; a window that holds no frame raises at the first ``next``.
    """
    if not (isinstance(start, int | float) and math.isfinite(start) and start >= 0):
        raise InputError(f"start must be a number of seconds of 0 or more, got {start!r}")
    if duration is not None and not (
        isinstance(duration, int | float) and math.isfinite(duration) and duration > 0
    ):
        raise InputError(f"duration must be a positive number of seconds, got {duration!r}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise InputError(f"every must be a whole number of 1 or more, got {every!r}")
    info = probe(path)
    end = f"and {start + duration:g} s" if duration is not None else ""
    window = f"between {start:g} s {end}" if end else f"from {start:g} s on"
    length = "length unknown" if info.duration is None else f"{round(info.duration, 3):g} s long"
    empty = f"no frames {window} in {info.path.name} ({length})"
    if info.duration is not None and start >= info.duration:
        raise InputError(empty)
    return _decode(info, float(start), duration, every, empty)


def _decode(info: VideoInfo, start: float, duration: float | None, every: int, empty: str):
    av, container, stream = _open_input(info.path)
    origin, end = _origin(stream), math.inf if duration is None else start + duration
    frames = _seek(av, container, stream, origin + start) if start > 0 else None
    if start > 0 and frames is None:  # could not seek, or landed past start: from the top
        container.close()
        av, container, stream = _open_input(info.path)
    seeking, frames = frames is not None, frames or container.decode(stream)
    with container:
        kept = 0
        try:
            for counted, frame in enumerate(frames):
                time = counted / info.fps if frame.time is None else frame.time - origin
                if time < start - _EPSILON:
                    continue
                if time >= end - _EPSILON:
                    break
                if kept % every == 0:
                    source_index = round(time * info.fps) if seeking else counted
                    yield Frame(kept // every, source_index, time, video_frames.frame_to_rgb(frame))
                kept += 1
        except _av_errors(av) as error:
            raise InputError(f"cannot read video '{info.path}': {_reason(error)}") from None
        if kept == 0:
            raise InputError(empty)


def _seek(av, container, stream, target: float) -> Iterator | None:
    """The frames from the keyframe at or before ``target`` seconds; None when the seek fails
    or lands after ``target`` (MPEG-TS and files without an index can)."""
    try:
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
        frames = container.decode(stream)
        first = next(frames, None)
    except _av_errors(av):
        return None
    if first is None or first.time is None or first.time > target + _EPSILON:
        return None
    return itertools.chain([first], frames)


def output_codec(path: str | os.PathLike[str]) -> str:
    """The encoder the writer uses for ``path``: libx264 (crf 18, preset medium, yuv420p) for
    .mp4/.mov/.m4v/.mkv, libvpx-vp9 (crf 24) for .webm, mpeg4 (qscale 3) for .avi."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        choices = ", ".join(VIDEO_EXTENSIONS)
        raise InputError(f"cannot write video '{Path(path).name}': choose {choices}")
    return _CODECS.get(suffix, "libx264")


def _holds(av, suffix: str, audio_codec: str) -> bool:
    """Whether FFmpeg's table lets a ``suffix`` container hold ``audio_codec`` packets (asked
    through an in-memory container that is never written)."""
    with contextlib.closing(av.open(io.BytesIO(), "w", format=_FORMATS[suffix])) as container:
        try:
            container.add_mux_stream(audio_codec)
        except ValueError:
            return False
    return True


def _audio_refused(av, path: Path, audio_codec: str) -> InputError:
    fits = ", ".join(ext for ext in VIDEO_EXTENSIONS if _holds(av, ext, audio_codec))
    advice = f"choose {fits}" if fits else "no video container here holds it"
    return InputError(
        f"cannot copy the {audio_codec} audio into '{path.name}' ({path.suffix} cannot hold "
        f"{audio_codec}): {advice}"
    )


def check_video_output(path: str | os.PathLike[str], *, audio_codec: str | None = None) -> Path:
    """Cheap checks before any work: a known extension, its encoder in this PyAV build, a
    writable folder, and audio of ``audio_codec`` (e.g. ``VideoInfo.audio_codec``) that the
    container can hold. Returns ``path`` as a Path."""
    path = Path(path).expanduser()
    codec = output_codec(path)
    av = _av()
    try:
        av.Codec(codec, "w")
    except _av_errors(av):
        raise InputError(
            f"cannot write '{path.name}': this PyAV build has no {codec} encoder; "
            f"choose another of {', '.join(VIDEO_EXTENSIONS)}"
        ) from None
    check_writable(path)
    if audio_codec is not None and not _holds(av, path.suffix.lower(), audio_codec):
        raise _audio_refused(av, path, audio_codec)
    return path


class VideoWriter:
    """Encode frames to ``path`` one at a time, copy a source's audio, rename into place.

    Writes a temporary file in the target folder (``temp_path``, else one from
    :func:`impasto.files.temp_file_for`). libx264 needs an even size: an odd width or height is
    padded by repeating the last column or row (the output is a pixel wider or taller).
    ``audio_from``: a file whose first audio stream is copied over [audio_start, audio_start +
    audio_duration] seconds of its video's time, shifted to start at 0 (no audio: silent).
    As a context manager, an exception in the block aborts: nothing is left behind."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: Fraction,
        width: int,
        height: int,
        rotation: int = 0,
        sample_aspect: Fraction = Fraction(1),
        audio_from: str | os.PathLike[str] | None = None,
        audio_start: float = 0.0,
        audio_duration: float | None = None,
        temp_path: Path | None = None,
    ) -> None:
        self.path = check_video_output(path)
        self.fps, self.width, self.height = Fraction(fps), width, height
        sample_aspect = Fraction(sample_aspect)
        if self.fps <= 0 or min(width, height) < 1 or sample_aspect <= 0 or rotation % 90:
            got = f"{self.fps} fps, {width}x{height}, aspect {sample_aspect}, {rotation} degrees"
            raise InputError(
                f"cannot write '{self.path.name}': {got} (need positive numbers, "
                "a rotation in steps of 90 degrees)"
            )
        if audio_start < 0 or (audio_duration is not None and audio_duration <= 0):
            raise InputError("audio window must start at 0 s or later and last more than 0 s")
        av = self._av = _av()
        self.written = 0
        self._source = self._packets = self._container = None
        if temp_path is None:
            sweep_stale_temps(self.path.parent, self.path.name)
        self.temp_path = Path(temp_path) if temp_path is not None else temp_file_for(self.path)
        codec, suffix = output_codec(self.path), self.path.suffix.lower()
        options = {"movflags": "+faststart"} if _FORMATS[suffix] in ("mp4", "mov") else {}
        try:
            self._container = av.open(str(self.temp_path), "w", _FORMATS[suffix], options=options)
            video = self._video = self._container.add_stream(codec, rate=self.fps)
            pad = codec == "libx264"  # MPEG-4 part 2 and VP9 code odd sizes themselves
            video.width, video.height = width + (pad and width % 2), height + (pad and height % 2)
            video.pix_fmt = "yuv420p"
            context = video.codec_context
            context.time_base = 1 / self.fps
            context.options = dict(_ENCODER_OPTIONS[codec])
            if codec == "mpeg4":
                context.qscale = 3  # near-transparent (1 best .. 31 worst)
            if sample_aspect != 1:
                context.sample_aspect_ratio = sample_aspect
            # MPEG-4 part 2 stores no colour tags: use the matrix players assume for its size.
            self._matrix = "ITU601" if codec == "mpeg4" and video.height < 720 else "ITU709"
            if self._matrix == "ITU709":
                context.colorspace = context.color_primaries = context.color_trc = _BT709
            context.color_range = 1  # limited ("MPEG") range, what players expect
            if rotation % 360:
                video.set_display_rotation(-(rotation % 360))  # PyAV's is counter-clockwise
            if audio_from is not None:
                self._add_audio(Path(audio_from).expanduser(), audio_start, audio_duration)
        except BaseException as error:
            raise self._failed(error, self.path) from None

    def _add_audio(self, source: Path, start: float, duration: float | None) -> None:
        av, self._source, video = _open_input(source)
        if not self._source.streams.audio:
            return
        audio = self._audio = self._source.streams.audio[0]
        try:
            self._audio_out = self._container.add_stream_from_template(audio)
        except ValueError:
            raise _audio_refused(av, self.path, audio.codec_context.codec.canonical_name) from None
        origin = _origin(video)
        self._shift = round((origin + start) / audio.time_base)  # source ticks at output 0
        end = math.inf if duration is None else (origin + start + duration) / audio.time_base
        self._audio_end, self._pending = end, None
        if start > 0:
            self._source.seek(self._shift, stream=audio, backward=True)
        self._packets = self._source.demux(audio)

    def _copy_audio(self, until: float) -> None:
        """Mux the audio packets of the window that start before ``until`` seconds of output."""
        limit = until / self._audio.time_base if self._packets is not None else 0
        while self._packets is not None:
            packet = next(self._packets, None) if self._pending is None else self._pending
            self._pending = None
            if packet is None or (packet.pts is not None and packet.pts >= self._audio_end):
                self._packets = None
            elif packet.pts is None or packet.size == 0:
                continue
            elif packet.pts + (packet.duration or 0) < self._shift:
                continue  # before the window; one ending at its start stays, as priming
            elif packet.pts - self._shift >= limit:
                self._pending = packet
                return
            else:
                packet.pts -= self._shift
                packet.dts = packet.pts if packet.dts is None else packet.dts - self._shift
                packet.stream = self._audio_out
                self._container.mux(packet)

    def write(self, rgb: torch.Tensor) -> None:
        """Encode one frame now: (3, H, W) or (1, 3, H, W) float in [0, 1] of the writer's
        size. An error aborts the writer; Ctrl-C leaves it for :meth:`close_as`."""
        if self._container is None:
            raise InputError(f"video writer for '{self.path}' is closed")
        rgb = rgb[0] if rgb.dim() == 4 and rgb.shape[0] == 1 else rgb
        if tuple(rgb.shape) != (3, self.height, self.width):
            raise InputError(
                f"frame {self.written} for '{self.path.name}' is {tuple(rgb.shape)}, "
                f"expected (3, {self.height}, {self.width})"
            )
        if not torch.isfinite(rgb).all():
            raise InputError(f"frame {self.written} for '{self.path.name}' has NaN or inf values")
        frame = video_frames.frame_from_rgb(
            rgb, self._video.width, self._video.height, self._matrix
        )
        frame.pts, frame.time_base = self.written, 1 / self.fps
        try:
            self._container.mux(self._video.encode(frame))
            self.written += 1
            self._copy_audio(self.written / self.fps)
        except _av_errors(self._av) as error:
            raise self._failed(error, self.path) from None

    def close(self) -> Path:
        """Flush the encoder, copy the rest of the audio window, rename onto ``path``."""
        return self._finish(self.path, audio_until=math.inf)

    def close_as(self, path: str | os.PathLike[str]) -> Path:
        """:meth:`close`, renamed onto ``path`` instead (``out.partial.mp4`` after Ctrl-C: a
        playable file); its audio stops where the frames written so far stop."""
        return self._finish(Path(path).expanduser(), audio_until=self.written / self.fps)

    def _finish(self, target: Path, audio_until: float) -> Path:
        if self._container is None:
            raise InputError(f"video writer for '{self.path}' is closed")
        try:
            if self.written == 0:
                raise InputError(f"cannot write '{target}': no frames were written")
            self._container.mux(self._video.encode(None))
            self._copy_audio(audio_until)
            container, self._container = self._container, None
            container.close()
            self._close_source()
            mask = os.umask(0o022)
            os.umask(mask)
            os.chmod(self.temp_path, 0o666 & ~mask)  # mkstemp makes 0600: use the normal mode
            with open(self.temp_path, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(self.temp_path, target)
        except BaseException as error:
            raise self._failed(error, target) from None
        return target

    def _failed(self, error: BaseException, target: Path) -> BaseException:
        """Abort, and give the error to raise: PyAV's and the OS's as InputError."""
        self.abort()
        if isinstance(error, _av_errors(self._av)) and not isinstance(error, InputError):
            return InputError(f"cannot write '{target}': {_reason(error)}")
        return error

    def abort(self) -> None:
        """Stop and delete the temporary file: nothing is left behind. Safe to call again."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(Exception):  # a half-written file is deleted anyway
                container.close()
        self._close_source()
        with contextlib.suppress(OSError):
            os.unlink(self.temp_path)

    def _close_source(self) -> None:
        source, self._source, self._packets = self._source, None, None
        if source is not None:
            source.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            self.abort()
        elif self._container is not None:
            self.close()
