#!/usr/bin/env python
"""Every registered method on the project's two clips, through the command line a user types:
each clip (../shared/data/video, numbered JPEG frames) is first encoded as an .mp4 with an AAC
sound track (a 440 Hz tone, the clips have none) at 24 fps; then, per method,
``impasto stylize CLIP.mp4 ... -o OUT.mp4`` (temporal consistency on, the default) and
``impasto stylize FRAMES/ ... --frames -o OUT/``. Each output is probed: frames, frame rate,
audio codec and duration. Gatys runs smaller and shorter than its default (256 px, 40 steps),
for the CPU. Prints one JSON document (``--out FILE`` also writes it) and a table on stderr.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import git_commit, machine_info, note  # noqa: E402
from report import to_json, write_atomic  # noqa: E402

from impasto import images, video  # noqa: E402
from impasto.methods.registry import available_methods  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "video"
STYLE = ROOT / "src" / "impasto" / "assets" / "vangogh_bedroom_in_arles.jpg"
OPTIONS = {
    "fast": ["--model", "vangogh-bedroom-rt"],
    "gatys": ["--size", "256", "--steps", "40"],
}
FPS = Fraction(24)


def encode_with_sound(frames_folder: Path, path: Path) -> Path:
    """The frames as H.264 at 24 fps with an AAC tone as long as the clip."""
    files = video.list_frames(frames_folder)
    first = images.load_image(files[0]).rgb
    height, width = first.shape[-2:]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = 1 / FPS
        stream.options = {"crf": "16"}
        audio = container.add_stream("aac", 48000)
        audio.layout = "mono"
        for index, file in enumerate(files):
            pixels = (images.load_image(file).rgb[0].permute(1, 2, 0) * 255 + 0.5).byte()
            frame = av.VideoFrame.from_ndarray(pixels.numpy(), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        seconds = len(files) / float(FPS)
        tone = np.arange(round(48000 * seconds)) / 48000
        samples = (0.2 * np.sin(2 * np.pi * 440 * tone)).astype(np.float32)[None]
        sound = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        sound.sample_rate, sound.pts = 48000, 0
        container.mux(audio.encode(sound))
        container.mux(audio.encode(None))
    return path


def stylize(arguments: list[str]) -> tuple[int, float, str]:
    command = [sys.executable, "-m", "impasto", "stylize", *arguments, "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    return done.returncode, time.perf_counter() - started, done.stderr.strip().splitlines()[-1:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=available_methods())
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    document = {"benchmark": "video_every_method", "machine": machine_info(),
                "commit": git_commit(), "results": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        for clip in sorted(path.name for path in CLIPS.iterdir() if path.is_dir()):
            source = encode_with_sound(CLIPS / clip, folder / f"{clip}.mp4")
            info = video.probe(source)
            for method in args.methods:
                styles = [] if method == "fast" else [str(STYLE)]
                extra = ["--method", method, *OPTIONS.get(method, [])]
                out = folder / f"{clip}-{method}.mp4"
                note(f"{clip} / {method}: mp4 and frames")
                code, seconds, last = stylize([str(source), *styles, "-o", str(out), *extra])
                row = {"clip": clip, "method": method, "mp4_exit": code,
                       "mp4_seconds": round(seconds, 1), "mp4_last_line": last,
                       "input": {"frames": info.frames, "fps": str(info.fps),
                                 "audio": info.audio_codec}}  # fmt: skip
                if code == 0:
                    made = video.probe(out)
                    row["mp4"] = {"frames": made.frames, "fps": str(made.fps),
                                  "audio": made.audio_codec, "size": [made.width, made.height],
                                  "duration": made.duration}  # fmt: skip
                frames_out = folder / f"{clip}-{method}-frames"
                code, seconds, last = stylize([str(CLIPS / clip), *styles, "--frames", "-o",
                                               str(frames_out), *extra])  # fmt: skip
                row.update({"frames_exit": code, "frames_seconds": round(seconds, 1),
                            "frames_written": len(video.list_frames(frames_out))
                            if code == 0 else 0,
                            "frames_input": len(video.list_frames(CLIPS / clip))})  # fmt: skip
                row["ok"] = (row["mp4_exit"] == 0 and row["frames_exit"] == 0
                             and row["mp4"]["frames"] == info.frames
                             and row["mp4"]["audio"] == info.audio_codec
                             and row["frames_written"] == row["frames_input"])  # fmt: skip
                document["results"].append(row)
                if args.out:
                    write_atomic(args.out, to_json(document))
    print("| clip | method | mp4: frames, fps, audio | frames folder | seconds (mp4) | ok |\n"
          "|---|---|---|---|---|---|", file=sys.stderr)  # fmt: skip
    for r in document["results"]:
        mp4 = r.get("mp4", {})
        print(f"| {r['clip']} | {r['method']} | {mp4.get('frames')}, {mp4.get('fps')}, "
              f"{mp4.get('audio')} | {r['frames_written']}/{r['frames_input']} | "
              f"{r['mp4_seconds']} | {r['ok']} |", file=sys.stderr)  # fmt: skip
    print(to_json(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
