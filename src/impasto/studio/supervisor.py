"""The workers' keeper, in the web process: starts ``--workers`` worker processes, restarts one
that dies and puts its job back in the queue, requeues jobs whose lease ran out, and stops a
worker that does not honour a cancel within ``CANCEL_GRACE`` seconds.

Workers are separate processes, so a crash or a kill of one never takes the server down; the
server going away makes its workers leave (each watches its parent), and the next server puts
their jobs back in the queue.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from .store import Store
from .worker import worker_name

CHECK_SECONDS = 0.5
CANCEL_GRACE = 10.0
STOP_GRACE = 10.0
RESTART_BACKOFF = (0.5, 2.0, 5.0, 15.0)
"""Seconds before restarting a worker that died, by how many died in a row quickly."""


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    name: str
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Keeps ``count`` workers of the studio at ``store.folder`` running."""

    def __init__(self, store: Store, count: int = 1, *, log=None) -> None:
        self.store = store
        self.count = count
        self.log = log
        self.workers: list[WorkerProcess] = []
        self.restarts = 0
        self._quick_deaths = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.store.prune()
        self._requeue_orphans()
        for _ in range(self.count):
            self.workers.append(self._spawn())
        self._thread = threading.Thread(target=self._loop, name="studio-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the workers (their running jobs go back to the queue) and the watch."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for worker in self.workers:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            self.store.requeue(worker=worker.name)

    def describe(self) -> list[dict]:
        running = {job.worker: job.id for job in self.store.running()}
        return [{"pid": w.process.pid, "alive": w.process.poll() is None,
                 "job": running.get(w.name)} for w in self.workers]  # fmt: skip

    def _spawn(self) -> WorkerProcess:
        command = [sys.executable, "-m", "impasto.studio.worker", "--data-dir",
                   str(self.store.folder), "--parent", str(os.getpid())]  # fmt: skip
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        return WorkerProcess(process, worker_name(process.pid))

    def _requeue_orphans(self) -> None:
        """Jobs left running by workers of an earlier server that are gone."""
        host = worker_name(0).rsplit(":", 1)[0]
        for job in self.store.running():
            owner_host, _colon, pid = (job.worker or "").rpartition(":")
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                self.store.requeue(worker=job.worker)

    def _loop(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            try:
                self._check()
            except Exception as error:  # the watch must go on; say what happened
                self._say(f"supervisor: {type(error).__name__}: {error}")

    def _check(self) -> None:
        for index, worker in enumerate(self.workers):
            code = worker.process.poll()
            if code is None:
                continue
            self.store.requeue(worker=worker.name)
            lived = time.monotonic() - worker.started
            self._quick_deaths = self._quick_deaths + 1 if lived < 30 else 0
            wait = RESTART_BACKOFF[min(self._quick_deaths, len(RESTART_BACKOFF) - 1)]
            self._say(f"worker {worker.process.pid} ended (code {code}); restarting it")
            if self._stop.wait(wait):
                return
            self.workers[index] = self._spawn()
            self.restarts += 1
        self.store.requeue(expired=True)
        self._enforce_cancels()

    def _enforce_cancels(self) -> None:
        now = time.time()
        by_name = {worker.name: worker for worker in self.workers}
        for job in self.store.running():
            if job.cancel and now - job.cancel > CANCEL_GRACE and job.worker in by_name:
                worker = by_name[job.worker]
                self._say(f"worker {worker.process.pid} did not stop job {job.id}: stopping it")
                worker.process.kill()
                worker.process.wait()
                self.store.cancelled_by_force(job.id, job.worker)

    def _say(self, line: str) -> None:
        if self.log is not None:
            self.log(line)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
