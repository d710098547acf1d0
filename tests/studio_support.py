"""What the studio's tests share: a real ``impasto serve`` on a free loopback port, loopback-only
network access for the tests that talk to it, waiting, and small jobs."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the studio extra (fastapi) is not installed")
pytest.importorskip("uvicorn", reason="the studio extra (uvicorn) is not installed")

_REAL = {
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "create_connection": socket.create_connection,
    "getaddrinfo": socket.getaddrinfo,
}
PHOTO = "sample:washington_monument.jpg"
PAINTING = "sample:vangogh_bedroom_in_arles.jpg"


def _loopback(host) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:
        return False


def _refuse(host) -> None:
    raise AssertionError(f"a studio test tried to reach {host}: only loopback is allowed")


@pytest.fixture
def loopback_only(monkeypatch):
    """The network guard of conftest, opened for loopback addresses only."""

    def connect(sock, address):
        if sock.family == socket.AF_UNIX or _loopback(address[0]):
            return _REAL["connect"](sock, address)
        _refuse(address[0])

    def connect_ex(sock, address):
        if sock.family == socket.AF_UNIX or _loopback(address[0]):
            return _REAL["connect_ex"](sock, address)
        _refuse(address[0])

    def create_connection(address, *args, **kwargs):
        if _loopback(address[0]):
            return _REAL["create_connection"](address, *args, **kwargs)
        _refuse(address[0])

    def getaddrinfo(host, *args, **kwargs):
        if _loopback(host):
            return _REAL["getaddrinfo"](host, *args, **kwargs)
        _refuse(host)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 0.1):
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def tiny_gatys(size: int = 64, steps: int = 20, **extra) -> dict:
    """A stylise request of the bundled pair with the random tiny backbone: seconds on a CPU."""
    options = {"size": size, "steps": steps, "backbone": "tiny", "seed": 1, **extra}
    return {"kind": "stylize", "method": "gatys", "content": PHOTO, "styles": [PAINTING],
            "options": options}  # fmt: skip


class Server:
    """``impasto serve`` in its own process group, and an httpx client to it."""

    def __init__(self, data_dir: Path, port: int, *extra: str) -> None:
        import httpx

        self.data_dir, self.port = data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "IMPASTO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "impasto", "serve", "--port", str(port),
                   "--data-dir", str(data_dir), "--no-open", *extra]  # fmt: skip
        self.log = open(data_dir.parent / f"server-{port}-{time.time_ns()}.log", "wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        env=env)  # fmt: skip
        self.http = httpx.Client(base_url=self.url, timeout=30)
        wait_for(self._up, 60, f"the studio on port {port} to answer")

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"impasto serve exited: {self.output()}")
        try:
            return self.http.get("/api/health").status_code == 200
        except Exception:
            return False

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def job(self, job_id: str) -> dict:
        return self.http.get(f"/api/jobs/{job_id}").json()

    def wait_state(self, job_id: str, states: tuple[str, ...], timeout: float = 120) -> dict:
        return wait_for(lambda: (j := self.job(job_id))["state"] in states and j, timeout,
                        f"job {job_id} to be {'/'.join(states)}")  # fmt: skip

    def worker_pids(self) -> list[int]:
        return [w["pid"] for w in self.http.get("/api/health").json()["workers"]]

    def kill(self) -> None:
        """kill -9 the server alone (its workers notice and leave)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # workers left behind by a kill -9
        self.log.close()


@contextlib.contextmanager
def running_server(data_dir: Path, *extra: str) -> Iterator[Server]:
    server = Server(data_dir, free_port(), *extra)
    try:
        yield server
    finally:
        server.stop()
