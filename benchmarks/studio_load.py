"""Load test of the studio (``impasto serve``): many browser tabs at once, while jobs run.

Starts a real ``impasto serve`` on a free 127.0.0.1 port with a temporary data folder, submits
small jobs (tiny backbone, 64 px, 600 steps: seconds each, run one after another by the one
worker, so progress events flow all through the load; at 60 steps six jobs last three seconds),
waits for the first one's progress, then runs N concurrent clients for a fixed time: half
**poll** ``GET /api/jobs/{id}`` (every fifth request ``GET /api/jobs``) as fast as answered, half
hold the **event stream** ``GET /api/events`` as an EventSource does and parse every event.

Measured, and why: requests/s and errors (non-2xx, a body unlike the API's, exception, timeout,
a stream ended early): everyone must be answered; the status latency p50/p95/p99/max as the
client sees it (its own share of the CPU included): a polling page must stay snappy; events per
stream and **lost events**: ids in the server's event table (read directly after the run) that
a stream did not get between the first and the last it got; every job must end ``done``; VmRSS
of the web process and, apart, of its worker (start and end of the load, maximum): the web
process growing under load is a leak.

Talks to 127.0.0.1 only (``HOST``); the clients are bounded in time and requests and stop by
themselves. Prints a table, writes the JSON to ``--out``, exits 1 on an error, a lost event or a
job not done:  .venv/bin/python benchmarks/studio_load.py [--clients 50] [--seconds 60] [--jobs 6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HOST = "127.0.0.1"
"""The only address this benchmark ever talks to (a rule of the workplace: loopback only)."""
PHOTO = "sample:washington_monument.jpg"
PAINTING = "sample:vangogh_bedroom_in_arles.jpg"
RESULTS = Path(__file__).resolve().parent / "results"
REQUEST_TIMEOUT = httpx.Timeout(10.0)
STREAM_TIMEOUT = httpx.Timeout(10.0, read=30.0)  # the server sends a keep-alive every 15 s
MAX_REQUESTS_PER_CLIENT = 200_000
MAX_RECONNECTS = 20
LIST_EVERY = 5
"""Every fifth request of a polling client is ``GET /api/jobs`` (the others a job's status)."""
SAMPLE_SECONDS = 0.5
FINISHED = ("done", "failed", "cancelled")


def note(message: str) -> None:
    """A progress line on stderr (stdout carries the table)."""
    print(f"[studio-load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def job_request(size: int, steps: int, seed: int) -> dict:
    """A stylise request of the bundled pair with the random tiny backbone: seconds on a CPU."""
    options = {"size": size, "steps": steps, "backbone": "tiny", "seed": seed}
    return {"kind": "stylize", "method": "gatys", "content": PHOTO, "styles": [PAINTING],
            "options": options}  # fmt: skip


# -- the server --------------------------------------------------------------------------------


class Studio:
    """``impasto serve`` on ``HOST`` in its own process group (its worker is its child)."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        with socket.socket() as probe:  # a free port
            probe.bind((HOST, 0))
            self.port, self.log_path = probe.getsockname()[1], log_path
        self.url = f"http://{HOST}:{self.port}"
        env = {**os.environ, "IMPASTO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "impasto", "serve", "--host", HOST,
                   "--port", str(self.port), "--data-dir", str(data_dir), "--no-open"]  # fmt: skip
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            env=env)  # fmt: skip
        self.http = httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT)

    def up(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"impasto serve exited: {self.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            return self.http.get("/api/health").status_code == 200
        return False

    def jobs(self, job_ids: list[str]) -> list[dict]:
        return [self.http.get(f"/api/jobs/{job_id}").json() for job_id in job_ids]

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """SIGTERM (the server stops its worker), then SIGKILL to whatever is left."""
        self.http.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``check`` until it returns something true; RuntimeError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.3)
    return value


def rss_mb(pid: int) -> float | None:
    """The resident set of process ``pid`` in MB (``VmRSS`` of /proc/PID/status)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (the studio's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if entry.name.isdigit():
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
    return found


def sample_rss(memory: dict[str, list[float]], server_pid: int) -> None:
    """One sample (MB) of the web process and of its worker process(es), summed."""
    if (server := rss_mb(server_pid)) is not None:
        memory["server"].append(server)
    if workers := [v for v in map(rss_mb, child_pids(server_pid)) if v is not None]:
        memory["worker"].append(round(sum(workers), 1))


def rss_figures(values: list[float]) -> dict:
    """The first (start of the load), last (its end) and largest sample, the growth, and one
    sample in ten (every 5 s: a leak climbs all along, a warm-up levels off)."""
    if not values:
        return {"start": None, "end": None, "max": None, "growth": None, "samples": 0}
    return {"start": values[0], "end": values[-1], "max": max(values),
            "growth": round(values[-1] - values[0], 1), "samples": len(values),
            "every_5s": values[::10]}  # fmt: skip


# -- the clients -------------------------------------------------------------------------------


@dataclass
class Tally:
    """What every client saw: requests, errors (the first few said), latencies in ms."""

    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    status_ms: list[float] = field(default_factory=list)
    list_ms: list[float] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(what[:300])


@dataclass
class StreamLog:
    """The ids of the events one streaming client received, in arrival order."""

    ids: list[int] = field(default_factory=list)
    reconnects: int = 0


def sse_field(fields: dict[str, str], line: str) -> tuple[int | None, str, str] | None:
    """Server-sent events, one line at a time into ``fields``: ``id:``, ``event:``, ``data:``;
    a blank line ends an event, returned as (id, kind, data); ``:`` starts a comment."""
    if line == "":
        event = dict(fields)
        fields.clear()
        if "data" not in event:
            return None  # e.g. the opening "retry:" block
        number = int(event["id"]) if event.get("id", "").isdigit() else None
        return number, event.get("event", "message"), event["data"]
    if not line.startswith(":"):
        name, _, value = line.partition(":")
        joined = f"{fields[name]}\n" if name == "data" and name in fields else ""
        fields[name] = joined + value.removeprefix(" ")
    return None


def check_event(event_id: int | None, kind: str, data: str) -> str | None:
    """What is wrong with one received event (None: it is as the API says)."""
    key = {"progress": "job", "state": "id"}.get(kind)
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if event_id is None or not isinstance(body, dict) or key not in body:
        return f"a bad event: id {event_id}, kind {kind!r}, data {data[:80]}"
    return None


async def stream_once(client: httpx.AsyncClient, log: StreamLog, tally: Tally) -> None:
    """One connection to the event stream, read until the server ends it (or cancelled)."""
    headers = {"Accept": "text/event-stream"}
    if log.ids:
        headers["Last-Event-ID"] = str(log.ids[-1])  # resume as an EventSource does
    async with client.stream("GET", "/api/events", headers=headers) as response:
        tally.requests += 1
        if response.status_code != 200:
            tally.error(f"GET /api/events: {response.status_code}")
            return
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if (event := sse_field(fields, line)) is None:
                continue
            if problem := check_event(*event):
                tally.error(problem)
                continue
            log.ids.append(event[0])


async def streamer(url: str, deadline: float, tally: Tally, log: StreamLog) -> None:
    """Hold the event stream until ``deadline`` (reconnecting, counted as an error, when the
    server ends it early)."""
    async with httpx.AsyncClient(base_url=url, timeout=STREAM_TIMEOUT) as client:
        while log.reconnects <= MAX_RECONNECTS and time.monotonic() < deadline:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await stream_once(client, log, tally)
            except TimeoutError:
                return  # the deadline: the normal end
            except httpx.HTTPError as error:
                tally.error(f"GET /api/events: {type(error).__name__}: {error}")
            if time.monotonic() < deadline:
                tally.error("the server ended an event stream before the end of the run")
                log.reconnects += 1
                await asyncio.sleep(1.0)  # the "retry: 1000" the server asks for


async def timed_get(client: httpx.AsyncClient, path: str, key: str, tally: Tally) -> float:
    """GET ``path``; the milliseconds it took; an error unless 2xx with ``key`` in the JSON."""
    started = time.perf_counter()
    tally.requests += 1
    try:
        response = await client.get(path)
        if not 200 <= response.status_code < 300:
            tally.error(f"GET {path}: {response.status_code} {response.text[:120]}")
        elif key not in response.json():
            tally.error(f"GET {path}: no {key!r} in the answer")
    except (httpx.HTTPError, ValueError) as error:
        tally.error(f"GET {path}: {type(error).__name__}: {error}")
    return (time.perf_counter() - started) * 1000


async def poller(url: str, job_ids: list[str], deadline: float, tally: Tally, offset: int,
                 pause: float) -> None:  # fmt: skip
    """Poll job statuses (and every ``LIST_EVERY``-th time the job list) until ``deadline``."""
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        for count in range(offset, offset + MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                return
            if count % LIST_EVERY == LIST_EVERY - 1:
                tally.list_ms.append(await timed_get(client, "/api/jobs", "jobs", tally))
            else:
                path = f"/api/jobs/{job_ids[count % len(job_ids)]}"
                tally.status_ms.append(await timed_get(client, path, "state", tally))
            if pause:
                await asyncio.sleep(pause)


async def sample_memory(memory: dict, server_pid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        await asyncio.sleep(min(SAMPLE_SECONDS, max(0.0, deadline - time.monotonic())))
        sample_rss(memory, server_pid)


async def run_clients(url: str, job_ids: list[str], clients: int, seconds: float,
                      pause: float, memory: dict, server_pid: int):  # fmt: skip
    """``clients`` concurrent clients (half streaming, half polling) for ``seconds``: the
    tally, the streams' logs and the seconds it took."""
    tally, streams = Tally(), [StreamLog() for _ in range(clients // 2)]
    deadline = time.monotonic() + seconds
    sample_rss(memory, server_pid)  # the start of the load
    tasks = [streamer(url, deadline, tally, log) for log in streams]
    tasks += [poller(url, job_ids, deadline, tally, index, pause)
              for index in range(clients - len(streams))]  # fmt: skip
    started = time.monotonic()
    await asyncio.gather(*tasks, sample_memory(memory, server_pid, deadline))
    duration = time.monotonic() - started
    sample_rss(memory, server_pid)  # the end of the load
    return tally, streams, duration


def table_ids(data_dir: Path) -> list[int]:
    """Every event id in the server's table, read directly from its database."""
    from impasto.studio.store import Store

    store, ids = Store(data_dir), []
    while page := store.events_after(ids[-1] if ids else 0):
        ids.extend(row[0] for row in page)
    store.close()
    return ids


def stream_figures(log: StreamLog, table: list[int]) -> dict:
    """One stream: events received; ids of the table it missed between its first and last
    received id (lost); ids received twice or out of order."""
    if not log.ids:
        return {"events": 0, "lost": 0, "out_of_order": 0, "reconnects": log.reconnects}
    first, last, seen = log.ids[0], log.ids[-1], set(log.ids)
    lost = [i for i in table if first < i < last and i not in seen]
    disorder = sum(1 for a, b in zip(log.ids, log.ids[1:], strict=False) if b <= a)
    return {"events": len(log.ids), "first": first, "last": last, "lost": len(lost),
            "lost_ids": lost[:20], "out_of_order": disorder,
            "reconnects": log.reconnects}  # fmt: skip


def percentiles(values: list[float]) -> dict:
    """p50/p95/p99 (nearest rank), max and mean in ms, and how many."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)], 2)

    mean = round(sum(ordered) / len(ordered), 2)
    return {"count": len(ordered), "p50": rank(50), "p95": rank(95), "p99": rank(99),
            "max": round(ordered[-1], 2), "mean": mean}  # fmt: skip


def machine() -> dict:
    """The machine and the versions: CPU model, cores, Python, torch, the web stack, commit."""
    cpu_model = platform.processor()
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu_model = next((n.split(":", 1)[1].strip() for n in lines if n.startswith("model name")),
                         cpu_model)  # fmt: skip
    info = {"cpu_model": cpu_model, "logical_cpus": os.cpu_count(),
            "cpus_available_to_process": len(os.sched_getaffinity(0)),
            "platform": platform.platform(), "python": platform.python_version(),
            "load_average_1min_at_start": round(os.getloadavg()[0], 2)}  # fmt: skip
    for package in ("torch", "fastapi", "uvicorn", "httpx"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            info[package] = importlib.metadata.version(package)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["commit"] = subprocess.run(
            ["git", "-C", str(RESULTS.parent.parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
    return info


def summarise(tally: Tally, streams: list[StreamLog], duration: float, table: list[int],
              jobs: list[dict], memory: dict) -> dict:  # fmt: skip
    """The results section of the document; ``failures`` says why the run failed (errors,
    lost events or events out of order, jobs not done), empty when it passed."""
    per_stream = [stream_figures(log, table) for log in streams]
    counts = sorted(s["events"] for s in per_stream) or [0]
    results = {
        "duration_s": round(duration, 2), "requests": tally.requests,
        "status_requests": len(tally.status_ms), "list_requests": len(tally.list_ms),
        "streams_opened": tally.requests - len(tally.status_ms) - len(tally.list_ms),
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        "requests_per_s": round(tally.requests / duration, 1),
        "status_latency_ms": percentiles(tally.status_ms),
        "list_latency_ms": percentiles(tally.list_ms),
        "events": {
            "table_events": len(table), "per_stream_min": counts[0],
            "per_stream_median": counts[len(counts) // 2], "per_stream_max": counts[-1],
            "received_total": sum(counts),
            "streams_without_events": sum(1 for s in per_stream if not s["events"]),
            "lost": sum(s["lost"] for s in per_stream),
            "out_of_order": sum(s["out_of_order"] for s in per_stream),
            "per_stream": per_stream,
        },
        "jobs": [{key: job.get(key) for key in ("id", "state", "seconds", "attempts", "error")}
                 for job in jobs],
        "memory_mb": {who: rss_figures(values) for who, values in memory.items()},
    }  # fmt: skip
    events, not_done = results["events"], [j["id"] for j in jobs if j["state"] != "done"]
    results["failures"] = [text for bad, text in [
        (tally.errors, f"{tally.errors} errors"),
        (events["lost"] or events["out_of_order"],
         f"{events['lost']} lost events, {events['out_of_order']} out of order"),
        (not_done, f"jobs not done: {', '.join(not_done)}")] if bad]  # fmt: skip
    return results


def print_table(document: dict) -> None:
    """The figures that matter, one per line."""
    r, s, m = document["results"], document["settings"], document["machine"]
    lat, ev = r["status_latency_ms"], r["events"]
    rows = {
        "clients": f"{s['clients']} ({s['streams']} streaming, {s['pollers']} polling)",
        "requests": f"{r['requests']} in {r['duration_s']} s ({r['requests_per_s']} /s), "
                    f"errors {r['errors']}",
        "status p50/p95/p99/max": " / ".join(str(lat.get(k)) for k in ("p50", "p95", "p99",
                                                                      "max")) + " ms",
        "events per stream": f"min {ev['per_stream_min']}, median {ev['per_stream_median']}, "
                             f"max {ev['per_stream_max']} (table: {ev['table_events']})",
        "lost events": f"{ev['lost']} ({ev['out_of_order']} out of order)",
        "jobs": ", ".join(f"{j['state']} {j['seconds'] or 0:.1f}s" for j in r["jobs"]),
        **{f"{who} RSS start/end/max": f"{f['start']} / {f['end']} / {f['max']} MB "
           f"(growth {f['growth']})" for who, f in r["memory_mb"].items()},
        "machine": f"{m['cpu_model']}, {m['logical_cpus']} cores, python {m['python']}, "
                   f"torch {m.get('torch')}",
        "verdict": "; ".join(r["failures"]) or "ok",
    }  # fmt: skip
    for name, value in rows.items():
        print(f"{name:<25}{value}")


def run_load(data_dir: Path, clients: int = 50, seconds: float = 60.0, jobs: int = 6,
             size: int = 64, steps: int = 600, pause: float = 0.0,
             job_timeout: float = 300.0) -> dict:  # fmt: skip
    """Start the studio at ``data_dir``, run the jobs and the clients, stop it; the document."""
    settings = {"clients": clients, "streams": clients // 2, "pollers": clients - clients // 2,
                "seconds": seconds, "jobs": jobs, "job_request": job_request(size, steps, 1),
                "poll_pause_s": pause, "list_every": LIST_EVERY, "host": HOST}  # fmt: skip
    document = {"benchmark": "studio_load", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "machine": machine(), "settings": settings}  # fmt: skip
    studio = Studio(data_dir, data_dir.parent / f"server-{time.time_ns()}.log")
    try:
        wait_for(studio.up, 90, "the studio to answer")
        note(f"studio up on {studio.url}; submitting {jobs} jobs")
        job_ids = [studio.http.post("/api/jobs", json=job_request(size, steps, seed)).json()["id"]
                   for seed in range(1, jobs + 1)]  # fmt: skip
        # the worker has loaded torch and the method: the load meets a busy worker, and the
        # worker's memory at the start is that of one working
        wait_for(lambda: (j := studio.jobs(job_ids[:1])[0])["progress"] or j["state"] in FINISHED,
                 120, "the first job to report progress")  # fmt: skip
        note(f"{clients} clients for {seconds:g} s")
        memory: dict[str, list[float]] = {"server": [], "worker": []}
        tally, streams, duration = asyncio.run(run_clients(
            studio.url, job_ids, clients, seconds, pause, memory, studio.process.pid))  # fmt: skip
        note("load over; waiting for the jobs to finish")
        with contextlib.suppress(RuntimeError):  # a job not finished is reported below
            wait_for(lambda: all(j["state"] in FINISHED for j in studio.jobs(job_ids)),
                     job_timeout, "the jobs to finish")  # fmt: skip
        finished = studio.jobs(job_ids)
        table = table_ids(data_dir)
        log_text = studio.log_tail(100_000)
    finally:
        studio.stop()
    document["results"] = results = summarise(tally, streams, duration, table, finished, memory)
    results["server_log_tracebacks"] = log_text.count("Traceback")
    if results["server_log_tracebacks"]:
        results["server_log_tail"] = log_text[-3000:]
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--clients", type=int, default=50, help="concurrent clients: half stream, half poll")
    add("--seconds", type=float, default=60.0, help="how long the load runs")
    add("--jobs", type=int, default=6, help="small jobs submitted before the load")
    add("--size", type=int, default=64, help="the jobs' image size (px)")
    add("--steps", type=int, default=600, help="the jobs' steps")
    add("--pause", type=float, default=0.0, help="seconds a poller waits between requests")
    add("--job-timeout", type=float, default=300.0, help="seconds to wait for the jobs after")
    add("--out", type=Path, default=None, help="JSON file (benchmarks/results/DATE-studio-load)")
    args = parser.parse_args(argv)
    if args.clients < 2 or args.seconds <= 0 or args.jobs < 1:
        parser.error("needs --clients >= 2, --seconds > 0 and --jobs >= 1")
    out = args.out or RESULTS / f"{time.strftime('%Y-%m-%d')}-studio-load.json"
    with tempfile.TemporaryDirectory(prefix="impasto-studio-load-") as folder:
        document = run_load(Path(folder) / "studio", args.clients, args.seconds, args.jobs,
                            args.size, args.steps, args.pause, args.job_timeout)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    print_table(document)
    print(f"written: {out}")
    return 1 if document["results"]["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
