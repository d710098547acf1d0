"""Kill -9 a worker mid-job, kill -9 the server mid-job: the job goes back to the queue, runs
again to the end, never twice at once, and finished results survive. A real ``impasto serve``
on loopback."""

from __future__ import annotations

import os
import signal

from studio_support import loopback_only, running_server, tiny_gatys, wait_for  # noqa: F401

from impasto.studio.store import Store

SLOW = {"size": 96, "steps": 1500}
"""A job that takes several seconds here, so it can be killed while it runs (600 steps were too
few once L-BFGS kept 20 pairs: the job could finish in the 3 s the worker takes to notice)."""


def states_of(store: Store, job_id: str) -> list[tuple[str, int]]:
    return [(data["state"], data["attempts"]) for _id, _job, kind, data
            in store.events_after(0, job_id) if kind == "state"]  # fmt: skip


def running_with_steps(server, job_id: str, steps: int = 3):
    def check():
        job = server.job(job_id)
        return job["state"] == "running" and (job["progress"] or {}).get("step", 0) >= steps

    wait_for(check, 90, f"job {job_id} to be running")


def assert_ran_once_at_a_time(history: list[tuple[str, int]]) -> None:
    """Each 'running' follows a 'queued' (never two runs at once)."""
    for (before, _), (state, _) in zip(history, history[1:], strict=False):
        if state == "running":
            assert before == "queued", history


def test_a_job_killed_with_its_worker_runs_again_to_the_end(tmp_path, loopback_only):  # noqa: F811
    with running_server(tmp_path / "studio") as server:
        first = server.http.post("/api/jobs", json=tiny_gatys(steps=8)).json()
        finished = server.wait_state(first["id"], ("done",))
        job = server.http.post("/api/jobs", json=tiny_gatys(**SLOW)).json()
        running_with_steps(server, job["id"])
        (worker,) = server.worker_pids()
        os.kill(worker, signal.SIGKILL)
        done = server.wait_state(job["id"], ("done", "failed"), timeout=180)
        assert done["state"] == "done", done["error"]
        assert done["attempts"] == 2
        health = server.http.get("/api/health").json()
        assert health["restarts"] == 1 and health["workers"][0]["pid"] != worker
        history = states_of(Store(server.data_dir), job["id"])
        assert history[-1] == ("done", 2) and ("queued", 1) in history
        assert_ran_once_at_a_time(history)
        results = sorted(p.name for p in (server.data_dir / "results").iterdir())
        assert results == sorted([f"{finished['id']}.png", f"{job['id']}.png"])
        assert server.http.get(finished["result_url"]).status_code == 200


def test_a_job_survives_a_kill_of_the_server_and_finished_results_stay(tmp_path, loopback_only):  # noqa: F811
    data = tmp_path / "studio"
    with running_server(data) as first:
        kept = first.http.post("/api/jobs", json=tiny_gatys(steps=8)).json()
        kept_bytes = first.http.get(first.wait_state(kept["id"], ("done",))["result_url"]).content
        job = first.http.post("/api/jobs", json=tiny_gatys(**SLOW)).json()
        queued = first.http.post("/api/jobs", json=tiny_gatys(steps=8)).json()
        running_with_steps(first, job["id"])
        first.kill()  # kill -9 of the web process; its worker sees it gone and gives the job back
        wait_for(lambda: Store(data).job(job["id"]).state == "queued", 30,
                 "the orphaned worker to give its job back")  # fmt: skip
    with running_server(data) as second:
        done = second.wait_state(job["id"], ("done", "failed"), timeout=180)
        assert done["state"] == "done", done["error"]
        assert second.wait_state(queued["id"], ("done",))["attempts"] == 1
        history = states_of(Store(data), job["id"])
        assert_ran_once_at_a_time(history)
        assert [state for state, _ in history].count("running") == 2
        assert history[-1] == ("done", 1), "a job given back is not counted as a failed try"
        again = second.http.get(f"/api/jobs/{kept['id']}/result")
        assert again.status_code == 200 and again.content == kept_bytes


def test_a_server_restart_requeues_jobs_whose_worker_died_with_it(tmp_path, loopback_only):  # noqa: F811
    """The whole process group killed at once (a power cut of the server): the next server
    finds the job 'running' under a dead worker and puts it back in the queue at once."""
    data = tmp_path / "studio"
    with running_server(data) as first:
        job = first.http.post("/api/jobs", json=tiny_gatys(**SLOW)).json()
        running_with_steps(first, job["id"])
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
    assert Store(data).job(job["id"]).state == "running"  # as the crash left it
    with running_server(data) as second:
        done = second.wait_state(job["id"], ("done", "failed"), timeout=180)
        assert done["state"] == "done" and done["attempts"] == 2, done


def test_two_workers_run_two_jobs_side_by_side_each_once(tmp_path, loopback_only):  # noqa: F811
    with running_server(tmp_path / "studio", "--workers", "2") as server:
        jobs = [server.http.post("/api/jobs", json=tiny_gatys(**SLOW)).json() for _ in range(3)]

        def two_running():
            running = [j for j in server.http.get("/api/jobs").json()["jobs"]
                       if j["state"] == "running"]  # fmt: skip
            return len(running) == 2

        wait_for(two_running, 60, "two jobs running at once")
        for job in jobs:
            assert server.wait_state(job["id"], ("done", "failed"), 180)["state"] == "done"
        store = Store(server.data_dir)
        for job in jobs:
            history = states_of(store, job["id"])
            assert [state for state, _ in history].count("running") == 1, history
