"""benchmarks/studio_load.py, small: a real ``impasto serve`` on loopback under 16 concurrent
clients (8 polling job statuses, 8 holding the event stream) for a few seconds while two jobs
run. Every request is answered, no stream misses an event, the jobs end done, the status
endpoint stays quick and the web process does not grow."""

from __future__ import annotations

import json

import pytest
from helpers import benchmark_script
from studio_support import loopback_only  # noqa: F401

P95_BOUND_MS = 2000.0
"""Generous: a busy 2-core machine answers a status in tens of ms; seconds would be a stall."""
RSS_GROWTH_BOUND_MB = 60.0
"""Generous: the web process grows by a few MB (its threads' SQLite connections); a leak of
every request or event would show here."""


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("studio_load") as module:
        yield module


def test_the_studio_answers_sixteen_clients_without_losing_an_event(bench, tmp_path, capsys,
                                                                     loopback_only):  # noqa: F811  # fmt: skip
    out = tmp_path / "load.json"
    code = bench.main(["--clients", "16", "--seconds", "8", "--jobs", "2", "--steps", "300",
                       "--job-timeout", "60", "--out", str(out)])  # fmt: skip
    document = json.loads(out.read_text())
    results = document["results"]
    assert "verdict" in capsys.readouterr().out
    assert document["settings"]["host"] == "127.0.0.1"
    assert document["machine"]["cpu_model"]
    assert results["errors"] == 0, results["error_samples"]
    assert results["status_requests"] > 50 and results["streams_opened"] == 8
    assert [job["state"] for job in results["jobs"]] == ["done", "done"], results["jobs"]
    events = results["events"]
    assert events["streams_without_events"] == 0, "every stream saw the jobs' progress"
    assert events["lost"] == 0 and events["out_of_order"] == 0, events["per_stream"]
    assert results["status_latency_ms"]["p95"] < P95_BOUND_MS, results["status_latency_ms"]
    server = results["memory_mb"]["server"]
    assert server["samples"] >= 5 and server["growth"] < RSS_GROWTH_BOUND_MB, server
    assert results["memory_mb"]["worker"]["start"] is not None
    assert code == 0 and results["failures"] == []


def test_a_stream_that_skipped_an_event_is_counted_as_losing_it(bench):
    figures = bench.stream_figures(bench.StreamLog(ids=[3, 4, 6, 6]), list(range(1, 9)))
    assert figures["lost"] == 1 and figures["lost_ids"] == [5]  # not 1, 2, 7, 8: outside
    assert figures["out_of_order"] == 1  # 6 twice


def test_events_are_read_as_an_event_source_reads_them(bench):
    lines = ["retry: 1000", "", ": keep-alive", "", "id: 7", "event: state",
             'data: {"id": "j-1"}', ""]  # fmt: skip
    fields: dict = {}
    events = [event for line in lines if (event := bench.sse_field(fields, line))]
    assert events == [(7, "state", '{"id": "j-1"}')]
    assert bench.check_event(*events[0]) is None
    assert bench.check_event(8, "progress", "{}") is not None  # a progress names its job
    assert bench.check_event(None, "state", '{"id": "j-1"}') is not None
