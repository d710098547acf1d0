"""The studio's job table and its keepers, without a web server: claims are exclusive, leases
expire, a worker that lost its job cannot touch it, a job that kills its worker stops being
retried, the supervisor stops a worker that ignores a cancel; and ``impasto serve``'s refusals."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest
from helpers import error_line, run_cli
from studio_support import tiny_gatys

from impasto.studio import store as store_module
from impasto.studio.store import MAX_ATTEMPTS, Store
from impasto.studio.supervisor import Supervisor, WorkerProcess


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "studio")


def submit(store: Store, count: int = 1) -> list[str]:
    return [store.submit("stylize", f"job {i}", "gatys", tiny_gatys()).id for i in range(count)]


def test_concurrent_workers_never_claim_the_same_job(store):
    ids = submit(store, 40)
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        own = Store(store.folder)  # its own connection, as a worker process has
        while (job := own.claim(name)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids)  # each once, none lost
    assert {job.state for job in store.jobs()} == {"running"}


def test_a_job_whose_lease_ran_out_goes_back_and_its_old_worker_cannot_touch_it(store, monkeypatch):
    (job_id,) = submit(store)
    assert store.claim("old").id == job_id
    assert store.requeue(expired=True) == []  # the lease holds
    later = time.time() + store_module.LEASE_SECONDS + 1
    monkeypatch.setattr(store_module.time, "time", lambda: later)
    assert store.requeue(expired=True) == [job_id]
    monkeypatch.undo()
    assert store.claim("new").id == job_id
    assert store.heartbeat(job_id, "old") == (False, False)
    assert store.report(job_id, "old", {"step": 1}, False)[0] is False
    assert not store.finish(job_id, "old", "done", result="results/x.png")
    assert store.finish(job_id, "new", "done", output="image", result="results/y.png")
    finished = store.job(job_id)
    assert finished.state == "done" and finished.result == "results/y.png"
    assert finished.attempts == 2


def test_a_job_that_keeps_killing_its_worker_fails_instead_of_looping(store):
    (job_id,) = submit(store)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert store.claim(f"w{attempt}").attempts == attempt
        store.requeue(worker=f"w{attempt}")  # the worker died
    job = store.job(job_id)
    assert job.state == "failed" and "out of memory" in job.error
    assert store.claim("w9") is None


def test_a_job_given_back_by_a_leaving_worker_is_not_a_failed_try(store):
    (job_id,) = submit(store)
    store.claim("w1")
    assert store.release(job_id, "w1")
    assert store.job(job_id).state == "queued" and store.job(job_id).attempts == 0


def test_cancel_and_delete(store):
    running, queued = submit(store, 2)
    assert store.claim("w").id == running
    assert store.request_cancel(queued).state == "cancelled"  # a queued job: at once
    assert store.claim("w2") is None  # and it never runs
    asked = store.request_cancel(running)
    assert asked.state == "running" and asked.cancel > 0  # a running one: asked to stop
    assert not store.delete(running)  # not while it runs
    assert store.heartbeat(running, "w") == (True, True)  # the worker learns of the cancel
    assert store.finish(running, "w", "cancelled")
    assert store.delete(running) and store.job(running) is None


def test_the_supervisor_stops_a_worker_that_ignores_a_cancel(store, monkeypatch):
    (job_id,) = submit(store)
    stubborn = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor = Supervisor(store, 0)
    name = "stubborn-worker"
    supervisor.workers.append(WorkerProcess(stubborn, name))
    store.claim(name)
    store.request_cancel(job_id)
    supervisor._enforce_cancels()
    assert stubborn.poll() is None, "within the grace period it is left alone"
    monkeypatch.setattr("impasto.studio.supervisor.CANCEL_GRACE", -1.0)
    supervisor._enforce_cancels()
    assert stubborn.poll() is not None
    assert store.job(job_id).state == "cancelled"


def test_prune_keeps_the_last_progress_of_a_finished_job(store):
    (job_id,) = submit(store)
    store.claim("w")
    for step in range(1, 6):
        store.report(job_id, "w", {"kind": "step", "step": step}, False)
    store.finish(job_id, "w", "done")
    assert store.prune() == 4
    progress = [d for _i, _j, kind, d in store.events_after(0, job_id) if kind == "progress"]
    assert [d["step"] for d in progress] == [5]


# -- impasto serve's refusals: one line, exit 2 -------------------------------------------------


def test_serve_refuses_another_host_without_a_token(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("IMPASTO_STUDIO_TOKEN", raising=False)
    code, _out, err = run_cli(capsys, "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path))
    assert code == 2 and "--token" in error_line(err)


def test_serve_refuses_a_port_in_use(capsys, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, _out, err = run_cli(capsys, "serve", "--port", port, "--data-dir", str(tmp_path))
    assert code == 2 and "choose another with --port" in error_line(err)


def test_serve_refuses_a_data_dir_that_is_a_file(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _out, err = run_cli(capsys, "serve", "--data-dir", str(afile / "studio"))
    assert code == 2 and "--data-dir" in error_line(err)


def test_serve_says_which_extra_is_missing(capsys, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvicorn" else real(name, *a))  # fmt: skip
    code, _out, err = run_cli(capsys, "serve", "--data-dir", str(tmp_path))
    assert code == 2 and "pip install 'impasto[studio]'" in error_line(err)


def test_a_method_that_cannot_run_here_is_offered_greyed_with_why(monkeypatch):
    from impasto.errors import InputError
    from impasto.studio import forms

    why = "needs av: pip install 'impasto[video]'"
    real = forms.missing_requirement
    monkeypatch.setattr(forms, "missing_requirement",
                        lambda name: why if name == "wct" else real(name))  # fmt: skip
    methods = {m["name"]: m for m in forms.describe_methods()}
    assert methods["wct"]["available"] is False and methods["wct"]["why"] == why
    assert methods["adain"]["available"] is True
    body = {**tiny_gatys(), "method": "wct", "options": {}}
    with pytest.raises(InputError, match="pip install 'impasto\\[video\\]'"):
        forms.stylize_request(body, lambda ref: "image", lambda ref: ref)
