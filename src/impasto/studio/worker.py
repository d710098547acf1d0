"""The studio's worker process: ``python -m impasto.studio.worker --data-dir D``.

It claims the oldest queued job, runs it (impasto.studio.runner) and records the outcome, one
job at a time. A thread renews the job's lease every few seconds and reads whether a cancel
was asked; the progress callback then stops the library (it returns False: Cancelled). The
worker ends when its server is gone (its parent process changed) or on SIGTERM/SIGINT: the job
it was running goes back to the queue, to run again under the next worker. Started by the
supervisor; never by users.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Sequence

from ..errors import Cancelled, ImpastoError
from ..progress import ProgressEvent
from .store import LEASE_SECONDS, Job, Store

HEARTBEAT_SECONDS = LEASE_SECONDS / 5
IDLE_SECONDS = 0.25
REPORT_SECONDS = 0.2
"""At most this often a step is written to the database (stages, previews and the last step
always are)."""
PREVIEW = "preview.jpg"


def worker_name(pid: int | None = None) -> str:
    """How a worker is named in the job table: host and process id."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


class Watch:
    """Why the running job must stop, if it must: set by the heartbeat thread and signals."""

    def __init__(self) -> None:
        self.cancel = False  # the user asked
        self.lost = False  # the job is no longer ours (lease expired, requeued)
        self.leaving = False  # the worker ends: the job goes back to the queue

    @property
    def stop(self) -> bool:
        return self.cancel or self.lost or self.leaving


class FrameCount:
    """A clip's progress in frames: the method's steps inside a frame become words of the
    stage ("frame 3/48 · scale 1/1 (64 px) 12/40"), so the bar moves frame by frame."""

    def __init__(self) -> None:
        self.done, self.total = 0, 0

    def counted(self, state: dict) -> dict:
        if state["kind"] == "item":
            self.done, self.total = state["step"], state["total"]
            return {**state, "stage": f"frame {self.done}/{self.total or '?'}"}
        if state["kind"] == "step":
            inside = f"{state['stage']} {state['step']}/{state['total']}"
            stage = f"frame {self.done + 1}/{self.total or '?'} · {inside}"
            return {**state, "stage": stage, "step": self.done, "total": self.total}
        return state


class Worker:
    def __init__(self, store: Store, parent: int) -> None:
        self.store = store
        self.name = worker_name()
        self.parent = parent
        self.watch = Watch()
        self.job: Job | None = None
        self._beat = threading.Event()

    def parent_gone(self) -> bool:
        return os.getppid() != self.parent

    def serve(self) -> None:
        threading.Thread(target=self._heartbeat, daemon=True).start()
        while not self.watch.leaving and not self.parent_gone():
            job = self.store.claim(self.name)
            if job is None:
                time.sleep(IDLE_SECONDS)
                continue
            self.run(job)

    def run(self, job: Job) -> None:
        from . import runner

        self.job, self.watch.cancel, self.watch.lost = job, False, False
        self._frames = FrameCount()
        self._losses: dict[str, float] = {}
        self._beat.set()
        last = [0.0]

        def progress(event: ProgressEvent) -> bool:
            return self._progress(job, event, last)

        try:
            outcome = runner.run_job(self.store, job, progress, notify=lambda line: None)
        except Cancelled as stop:
            self._stopped(job, str(stop))
        except ImpastoError as error:
            self.store.finish(job.id, self.name, "failed", error=str(error))
        except MemoryError:
            self.store.finish(job.id, self.name, "failed", error="out of memory: try a smaller "
                              "size")  # fmt: skip
        except KeyboardInterrupt:
            self._stopped(job, "interrupted")
        except Exception as error:  # a bug: the job fails with one line, the log has the rest
            traceback.print_exc(file=sys.stderr)
            self.store.finish(job.id, self.name, "failed",
                              error=f"internal error: {type(error).__name__}: {error}")  # fmt: skip
        else:
            self.store.finish(job.id, self.name, "done", output=outcome.output,
                              result=outcome.result)  # fmt: skip
        finally:
            self.job = None

    def _stopped(self, job: Job, why: str) -> None:
        if self.watch.lost:
            return  # another worker has it now, or it was requeued
        if self.watch.cancel:
            self.store.finish(job.id, self.name, "cancelled", error=None)
        else:  # the worker is leaving: the job runs again under the next one
            self.store.release(job.id, self.name)

    def _progress(self, job: Job, event: ProgressEvent, last: list[float]) -> bool:
        if self.watch.stop:
            return False
        now = time.monotonic()
        preview = event.image is not None
        if preview:
            self._save_preview(job, event.image)
        important = event.kind != "step" or preview or event.step == event.total
        if important or now - last[0] >= REPORT_SECONDS:
            last[0] = now
            state = {"kind": event.kind, "stage": event.stage, "step": event.step,
                     "total": event.total, "losses": event.losses}  # fmt: skip
            if event.losses:
                self._losses = event.losses
            elif event.kind == "done":  # the last losses stay on the finished job
                state["losses"] = self._losses
            if "temporal" in job.request:  # a clip: the bar counts frames
                state = self._frames.counted(state)
            held, cancel = self.store.report(job.id, self.name, state, preview)
            self.watch.lost = self.watch.lost or not held
            self.watch.cancel = self.watch.cancel or cancel
            if self.watch.stop:
                return False
        return True

    def _save_preview(self, job: Job, image) -> None:
        from ..images import save_image
        from .runner import WORK

        folder = self.store.folder / WORK / job.id
        folder.mkdir(parents=True, exist_ok=True)
        save_image(image, folder / PREVIEW, quality=88)

    def _heartbeat(self) -> None:
        beat = Store(self.store.folder)  # its own connection
        while True:
            self._beat.wait(HEARTBEAT_SECONDS)
            self._beat.clear()
            if self.parent_gone():
                self.watch.leaving = True
            job = self.job
            if job is not None:
                held, cancel = beat.heartbeat(job.id, self.name)
                self.watch.lost = self.watch.lost or not held
                self.watch.cancel = self.watch.cancel or cancel
            if self.watch.leaving and self.job is None:
                return


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m impasto.studio.worker")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--parent", type=int, default=None, help="the server's process id")
    args = parser.parse_args(argv)
    worker = Worker(Store(args.data_dir), args.parent or os.getppid())

    def leave(signum, frame) -> None:
        worker.watch.leaving = True

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
