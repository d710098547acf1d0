"""The studio's database: one SQLite file (WAL) shared by the web process and the workers.

Jobs move queued -> running -> done | failed | cancelled. A worker claims a job in one
transaction (so no two workers run it at once) and holds it by a lease it renews every few
seconds; a job whose worker died (killed, crashed, the server restarted) goes back to the queue
when the supervisor sees the worker gone or the lease run out, and runs again from the start (a
training resumes from its checkpoint). Every change a worker makes to its job names the worker,
so one that lost its lease can no longer touch the job.

Every state change and progress report is also an event row (``events``): the page's event
stream reads them in order of their id, and a client that reconnects resumes after the last id
it saw, so no event is lost.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
FINISHED: tuple[str, ...] = ("done", "failed", "cancelled")
LEASE_SECONDS = 15.0
"""How long a claim holds without a heartbeat (workers renew it every few seconds)."""
MAX_ATTEMPTS = 3
"""A job whose worker died this many times while running it fails instead of running again
(it is likely what kills the worker: out of memory)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    method TEXT,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    seconds REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    worker TEXT,
    lease REAL,
    cancel REAL NOT NULL DEFAULT 0,
    progress TEXT,
    previews INTEGER NOT NULL DEFAULT 0,
    output TEXT,
    result TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    file TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    bytes INTEGER NOT NULL,
    created REAL NOT NULL
);
"""


@dataclass
class Job:
    """One row of ``jobs`` (``request``, ``progress``: decoded JSON)."""

    id: str
    kind: str
    title: str
    method: str | None
    request: dict[str, Any]
    state: str
    created: float
    started: float | None
    finished: float | None
    seconds: float | None
    attempts: int
    error: str | None
    worker: str | None
    lease: float | None
    cancel: float  # when a cancel was asked (0: never)
    progress: dict[str, Any] | None
    previews: int
    output: str | None
    result: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        values = dict(row)
        values["request"] = json.loads(values["request"])
        values["progress"] = json.loads(values["progress"]) if values["progress"] else None
        return cls(**values)


def new_id(prefix: str) -> str:
    """A generated name: ``prefix`` and 16 random hex digits (never taken from a user)."""
    return f"{prefix}-{secrets.token_hex(8)}"


class Store:
    """The database at ``folder / studio.sqlite3``; one connection per thread."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "studio.sqlite3"
        self._local = threading.local()
        self._connection().executescript(SCHEMA)  # its own transaction; idempotent

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: one writer at a time, across processes."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- events -------------------------------------------------------------------------------

    @staticmethod
    def _event(db: sqlite3.Connection, job: str, kind: str, data: dict[str, Any]) -> None:
        db.execute(
            "INSERT INTO events (job, kind, data) VALUES (?, ?, ?)", (job, kind, json.dumps(data))
        )

    def _state_event(self, db: sqlite3.Connection, job_id: str) -> None:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is not None:
            recorded = {name: row[name] for name in ("state", "attempts", "error")}
            self._event(db, job_id, "state", {"id": job_id, **recorded})

    def events_after(self, after: int, job: str | None = None, limit: int = 500) -> list[tuple]:
        """Events with an id above ``after`` (of ``job`` only, when given), oldest first:
        (id, job, kind, data dict)."""
        db = self._connection()
        if job is None:
            rows = db.execute(
                "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
        else:
            rows = db.execute(
                "SELECT * FROM events WHERE id > ? AND job = ? ORDER BY id LIMIT ?",
                (after, job, limit),
            ).fetchall()
        return [(row["id"], row["job"], row["kind"], json.loads(row["data"])) for row in rows]

    def last_event_id(self) -> int:
        row = self._connection().execute("SELECT MAX(id) FROM events").fetchone()
        return int(row[0] or 0)

    # -- jobs: the web process ----------------------------------------------------------------

    def submit(self, kind: str, title: str, method: str | None, request: dict[str, Any],
               output: str | None = None) -> Job:  # fmt: skip
        """A new queued job; ``output``: what it will make (image, video, model)."""
        job_id = new_id("j")
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, kind, title, method, request, state, created, output) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                (job_id, kind, title, method, json.dumps(request), time.time(), output),
            )
            self._state_event(db, job_id)
        return self.job(job_id)

    def job(self, job_id: str) -> Job | None:
        row = self._connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job.from_row(row)

    def jobs(self, limit: int = 200) -> list[Job]:
        rows = (
            self._connection()
            .execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
            .fetchall()
        )
        return [Job.from_row(row) for row in rows]

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel: a queued job at once; a running one is asked to stop (its worker sees the
        flag at its next progress report; the supervisor stops a worker that does not)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET cancel = ? WHERE id = ? AND cancel = 0 AND state IN "
                "('queued', 'running')",
                (time.time(), job_id),
            )
            changed = db.execute(
                "UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND state = "
                "'queued'",
                (time.time(), job_id),
            ).rowcount
            if changed:
                self._state_event(db, job_id)
        return self.job(job_id)

    def delete(self, job_id: str) -> bool:
        """Forget a finished job (its files are the caller's to remove); False when it is not
        finished."""
        with self._transaction() as db:
            gone = db.execute(
                f"DELETE FROM jobs WHERE id = ? AND state IN {FINISHED}", (job_id,)
            ).rowcount
            if gone:
                db.execute("DELETE FROM events WHERE job = ? AND kind = 'progress'", (job_id,))
                self._event(db, job_id, "state", {"id": job_id, "state": "deleted"})
        return bool(gone)

    def requeue(self, *, worker: str | None = None, expired: bool = False) -> list[str]:
        """Put running jobs back in the queue: those of ``worker`` (it is gone), and with
        ``expired`` those whose lease ran out. A job asked to cancel is cancelled instead."""
        now = time.time()
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, cancel, attempts FROM jobs WHERE state = 'running' AND (worker = ? "
                "OR (? AND lease < ?))",
                (worker, int(expired), now),
            ).fetchall()
            for row in rows:
                if row["cancel"]:
                    db.execute(
                        "UPDATE jobs SET state = 'cancelled', worker = NULL, finished = ? "
                        "WHERE id = ?",
                        (now, row["id"]),
                    )
                elif row["attempts"] >= MAX_ATTEMPTS:
                    db.execute(
                        "UPDATE jobs SET state = 'failed', worker = NULL, finished = ?, error = ? "
                        "WHERE id = ?",
                        (now, f"the worker stopped {row['attempts']} times while running this "
                         "job (out of memory?): try smaller settings", row["id"]),
                    )  # fmt: skip
                else:
                    db.execute(
                        "UPDATE jobs SET state = 'queued', worker = NULL, lease = NULL, "
                        "progress = NULL WHERE id = ?",
                        (row["id"],),
                    )
                self._state_event(db, row["id"])
        return [row["id"] for row in rows]

    def running(self) -> list[Job]:
        rows = self._connection().execute("SELECT * FROM jobs WHERE state = 'running'").fetchall()
        return [Job.from_row(row) for row in rows]

    def cancelled_by_force(self, job_id: str, worker: str) -> None:
        """The supervisor stopped ``worker`` for not honouring a cancel of ``job_id``."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET state = 'cancelled', worker = NULL, finished = ? "
                "WHERE id = ? AND worker = ? AND state = 'running'",
                (time.time(), job_id, worker),
            ).rowcount
            if changed:
                self._state_event(db, job_id)

    # -- jobs: a worker -----------------------------------------------------------------------

    def claim(self, worker: str) -> Job | None:
        """The oldest queued job, now running under ``worker``; None when the queue is empty."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', worker = ?, lease = ?, started = ?, "
                "attempts = attempts + 1, error = NULL, progress = NULL WHERE id = ?",
                (worker, now + LEASE_SECONDS, now, row["id"]),
            )
            self._state_event(db, row["id"])
        return self.job(row["id"])

    def heartbeat(self, job_id: str, worker: str) -> tuple[bool, bool]:
        """Renew the lease: (still ours, cancel asked)."""
        with self._transaction() as db:
            held = db.execute(
                "UPDATE jobs SET lease = ? WHERE id = ? AND worker = ? AND state = 'running'",
                (time.time() + LEASE_SECONDS, job_id, worker),
            ).rowcount
            row = db.execute("SELECT cancel FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(held), bool(row and row["cancel"])

    def release(self, job_id: str, worker: str) -> bool:
        """``worker`` gives its job back to the queue (it is leaving); it runs again later."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET state = 'queued', worker = NULL, lease = NULL, progress = NULL, "
                "attempts = MAX(attempts - 1, 0) WHERE id = ? AND worker = ? AND state = 'running'",
                (job_id, worker),
            ).rowcount
            if changed:
                self._state_event(db, job_id)
        return bool(changed)

    def report(self, job_id: str, worker: str, progress: dict[str, Any],
               preview: bool) -> tuple[bool, bool]:  # fmt: skip
        """Record a progress report (and that a new preview image exists): (the job is still
        ``worker``'s, a cancel was asked)."""
        with self._transaction() as db:
            held = db.execute(
                "UPDATE jobs SET progress = ?, previews = previews + ? WHERE id = ? AND "
                "worker = ? AND state = 'running'",
                (json.dumps(progress), int(preview), job_id, worker),
            ).rowcount
            row = db.execute("SELECT previews, cancel FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if held:
                data = {"job": job_id, **progress, "preview": row["previews"] if preview else None}
                self._event(db, job_id, "progress", data)
        return bool(held), bool(row and row["cancel"])

    def finish(self, job_id: str, worker: str, state: str, *, error: str | None = None,
               output: str | None = None, result: str | None = None) -> bool:  # fmt: skip
        """Close ``worker``'s job as done, failed or cancelled; False when it was no longer
        ``worker``'s (then the result is not recorded)."""
        if state not in FINISHED:
            raise ValueError(f"not a finished state: {state!r}")
        now = time.time()
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET state = ?, error = ?, output = COALESCE(?, output), result = ?, "
                "finished = ?, "
                "seconds = ? - started, worker = NULL, lease = NULL WHERE id = ? AND worker = ? "
                "AND state = 'running'",
                (state, error, output, result, now, now, job_id, worker),
            ).rowcount
            if changed:
                self._state_event(db, job_id)
        return bool(changed)

    def prune(self) -> int:
        """Forget the progress events of finished jobs but their last (at the server's start:
        no client is following them then); how many went."""
        with self._transaction() as db:
            return db.execute(
                "DELETE FROM events WHERE kind = 'progress' AND job IN (SELECT id FROM jobs "
                f"WHERE state IN {FINISHED}) AND id NOT IN (SELECT MAX(id) FROM events "
                "WHERE kind = 'progress' GROUP BY job)"
            ).rowcount

    # -- uploads ------------------------------------------------------------------------------

    def add_upload(self, upload_id: str, kind: str, name: str, file: str, width: int | None,
                   height: int | None, size: int) -> None:  # fmt: skip
        with self._transaction() as db:
            db.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (upload_id, kind, name, file, width, height, size, time.time()),
            )

    def upload(self, upload_id: str) -> dict[str, Any] | None:
        row = (
            self._connection()
            .execute("SELECT * FROM uploads WHERE id = ?", (upload_id,))
            .fetchone()
        )
        return None if row is None else dict(row)
