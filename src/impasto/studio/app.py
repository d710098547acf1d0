"""The studio's web process: FastAPI routes over the store, the uploads and the forms; the page
under ``static/``; the event stream; the token and origin checks.

Every error is a 4xx with ``{"error": "one line"}`` (an unexpected one a 500 with a line and no
traceback; the traceback goes to the server's log). Files are served only by id, from the
studio's own folders. API described in docs/studio.md.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import InputError
from ..images import pixel_cap
from . import forms, runner, uploads
from .store import FINISHED, Job, Store
from .supervisor import Supervisor

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_COOKIE = "impasto_token"
ID_PATTERN = re.compile(r"^[ju]-[0-9a-f]{16}$")
EVENT_POLL_SECONDS = 0.25
EVENT_KEEPALIVE_SECONDS = 15.0
MULTIPART_OVERHEAD = 64 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
log = logging.getLogger("impasto.studio")
NEEDS_TOKEN_PAGE = (
    "<!doctype html><title>impasto studio</title><p style='font-family:sans-serif'>This "
    "studio needs its token: open the address that <code>impasto serve</code> printed (it "
    "ends in <code>?token=...</code>).</p>"
)


class StudioError(Exception):
    """An HTTP error with one line for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    token: str | None = None
    workers: int = 1
    max_upload_bytes: int = uploads.DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int | None = None
    check_host: bool = False  # loopback without a token: refuse other Host headers
    start_workers: bool = True


def create_app(settings: Settings) -> FastAPI:
    store = Store(settings.data_dir)
    supervisor = Supervisor(store, settings.workers, log=log.warning)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.start_workers:
            supervisor.start()
        try:
            yield
        finally:
            app.state.closing = True
            if settings.start_workers:
                await asyncio.to_thread(supervisor.stop)

    app = FastAPI(title="impasto studio", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # fmt: skip
    app.state.store, app.state.supervisor, app.state.closing = store, supervisor, False
    _add_error_handlers(app)
    _add_guards(app, settings)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    video_allowed = _video_installed()

    @app.get("/", include_in_schema=False)
    def page(request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})
        given = request.query_params.get("token")
        if settings.token and given:
            response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
        return response

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        methods = forms.describe_methods(runner.trained_models(store))
        return {
            "version": __version__,
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_pixels": pixel_cap(settings.max_pixels),
            },  # fmt: skip
            "video": video_allowed,
            "methods": methods,
            "default_method": next(m["name"] for m in methods if m["default"]),
            "training": forms.describe_trainings(),
            "samples": uploads.describe_samples(),
        }

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "workers": supervisor.describe(), "restarts": supervisor.restarts}

    @app.get("/api/samples/{name}")
    def sample(name: str) -> Response:
        path = uploads.sample_path(name)
        if path is None:
            raise StudioError(404, f"no sample named '{name[:60]}'")
        return FileResponse(path, media_type=uploads.media_type(path))

    @app.post("/api/uploads", status_code=201)
    async def upload(request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is None:
            raise StudioError(411, "send the upload with its length (Content-Length)")
        if not length.isdigit() or int(length) > settings.max_upload_bytes + MULTIPART_OVERHEAD:
            raise StudioError(413, "the upload is larger than the studio's limit of "
                              f"{settings.max_upload_bytes:,} bytes")  # fmt: skip
        form = await request.form(max_files=1, max_fields=4)
        file = form.get("file")
        if not isinstance(file, UploadFile) and not hasattr(file, "read"):
            raise StudioError(400, "no file in the upload (a form field named 'file')")
        try:
            kept = await asyncio.to_thread(
                uploads.receive, store, file.file, file.filename or "upload",
                max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels,
                video_allowed=video_allowed,
            )  # fmt: skip
        finally:
            await form.close()
        return kept.describe()

    @app.get("/api/uploads/{upload_id}")
    def uploaded(upload_id: str) -> Response:
        found = uploads.find(store, upload_id) if ID_PATTERN.match(upload_id) else None
        if found is None or not found.path.is_file():
            raise StudioError(404, "no such upload")
        return FileResponse(found.path, media_type=uploads.media_type(found.path))

    @app.post("/api/jobs", status_code=201)
    async def submit(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        kind = body.get("kind", "stylize")

        def input_kind(ref: str) -> str:
            return uploads.input_file(store, ref)[1]

        def model_folder(ref: str) -> str:
            return runner.model_folder(store, ref)

        if kind == "stylize":
            checked = await asyncio.to_thread(forms.stylize_request, body, input_kind, model_folder)
            _path, content_kind, name = uploads.input_file(store, checked["content"])
            title = f"{checked['method']} · {name}"
            job = store.submit("stylize", title, checked["method"], checked, content_kind)
        elif kind == "train":
            checked = await asyncio.to_thread(forms.train_request, body, input_kind)
            job = store.submit("train", f"train {checked['training']}", None, checked, "model")
        else:
            raise StudioError(422, f"unknown kind of job '{kind}': stylize or train")
        return describe_job(store, job)

    @app.get("/api/jobs")
    def jobs() -> dict[str, Any]:
        return {"jobs": [describe_job(store, job) for job in store.jobs()]}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        return describe_job(store, _job(store, job_id))

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        _job(store, job_id)
        return describe_job(store, store.request_cancel(job_id))

    @app.delete("/api/jobs/{job_id}", status_code=204)
    def delete(job_id: str) -> Response:
        found = _job(store, job_id)
        if found.state not in FINISHED:
            raise StudioError(409, f"job {job_id} is {found.state}: cancel it first")
        if store.delete(job_id):
            runner.remove_files(store, found)
        return Response(status_code=204)

    @app.get("/api/jobs/{job_id}/result")
    def result(job_id: str) -> Response:
        found = _job(store, job_id)
        path = runner.result_path(store, found)
        if path is None:
            raise StudioError(404, f"job {job_id} has no result ({found.state})")
        if path.is_dir():
            path = _zipped(store, found, path)
        kind = "application/zip" if path.suffix == ".zip" else uploads.media_type(path)
        return FileResponse(path, media_type=kind, filename=download_name(found, path))

    @app.get("/api/jobs/{job_id}/preview")
    def preview(job_id: str) -> Response:
        found = _job(store, job_id)
        from .worker import PREVIEW

        path = store.folder / runner.WORK / found.id / PREVIEW
        if not path.is_file():
            raise StudioError(404, f"job {job_id} has no preview yet")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/events")
    async def events(request: Request, job: str | None = None, after: int | None = None):
        if job is not None and not ID_PATTERN.match(job):
            raise StudioError(404, "no such job")
        start = after if after is not None else _last_event_id(request)
        if start is None:
            start = await asyncio.to_thread(store.last_event_id)
        stream = _event_stream(app, store, request, start, job)
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})  # fmt: skip

    return app


def describe_job(store: Store, job: Job) -> dict[str, Any]:
    """A job as the page reads it (docs/studio.md)."""
    request = job.request
    done = job.state == "done" and job.result
    styles = request.get("styles") if job.kind == "stylize" else [request.get("style")]
    inputs = {
        "content": _input_url(request.get("content")),
        "styles": [_input_url(ref) for ref in styles or [] if ref],
    }
    has_preview = (store.folder / runner.WORK / job.id / "preview.jpg").is_file()
    return {
        "id": job.id, "kind": job.kind, "state": job.state, "title": job.title,
        "method": job.method, "request": request, "created": job.created,
        "started": job.started, "finished": job.finished, "seconds": job.seconds,
        "attempts": job.attempts, "error": job.error, "progress": job.progress,
        "previews": job.previews, "output": job.output,
        "result_url": f"/api/jobs/{job.id}/result" if done else None,
        "download_name": download_name(job, Path(job.result)) if done else None,
        "preview_url": f"/api/jobs/{job.id}/preview" if has_preview else None,
        "inputs": inputs,
    }  # fmt: skip


def download_name(job: Job, path: Path) -> str:
    what = job.method or (job.request.get("training") and f"train-{job.request['training']}")
    suffix = ".zip" if job.output == "model" else path.suffix
    return f"impasto-{what or job.kind}-{job.id[2:10]}{suffix}"


def _input_url(ref: Any) -> str | None:
    if not isinstance(ref, str):
        return None
    if ref.startswith(uploads.SAMPLE_PREFIX):
        return f"/api/samples/{ref[len(uploads.SAMPLE_PREFIX) :]}"
    return f"/api/uploads/{ref}" if ID_PATTERN.match(ref) else None


def _job(store: Store, job_id: str) -> Job:
    found = store.job(job_id) if ID_PATTERN.match(job_id) else None
    if found is None:
        raise StudioError(404, f"no job '{job_id[:40]}'")
    return found


def _zipped(store: Store, job: Job, folder: Path) -> Path:
    target = store.folder / runner.WORK / job.id / "model.zip"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        built = shutil.make_archive(str(target.with_suffix(".building")), "zip", folder)
        Path(built).replace(target)
    return target


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as error:
        raise StudioError(400, f"the request is not JSON ({error})") from None
    if not isinstance(body, dict):
        raise StudioError(400, "the request must be a JSON object")
    return body


def _last_event_id(request: Request) -> int | None:
    text = request.headers.get("last-event-id", "")
    return int(text) if text.isdigit() else None


def _events_to_send(store: Store, after: int, job: str | None) -> list[tuple[int, str, dict]]:
    """The events after ``after``, each state event with the job as it is now (in the state it
    had then); run in a thread, off the event loop."""
    found = []
    for event_id, _job_id, kind, data in store.events_after(after, job):
        if kind == "state" and data.get("state") != "deleted":
            current = store.job(data["id"])
            data = {**describe_job(store, current), **data} if current else data
        found.append((event_id, kind, data))
    return found


async def _event_stream(app: FastAPI, store: Store, request: Request, after: int,
                        job: str | None) -> AsyncIterator[str]:  # fmt: skip
    quiet_since = time.monotonic()
    yield "retry: 1000\n\n"
    while not app.state.closing:
        found = await asyncio.to_thread(_events_to_send, store, after, job)
        for event_id, kind, data in found:
            after = event_id
            yield f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"
        if found:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > EVENT_KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        if not found:
            await asyncio.sleep(EVENT_POLL_SECONDS)


def _add_error_handlers(app: FastAPI) -> None:
    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(StudioError)
    async def studio_error(request: Request, exc: StudioError) -> JSONResponse:
        return error(exc.status, str(exc))

    @app.exception_handler(uploads.UploadRefused)
    async def refused(request: Request, exc: uploads.UploadRefused) -> JSONResponse:
        return error(exc.status, str(exc))

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("studio: %s %s failed", request.method, request.url.path)
        return error(500, f"internal error: {type(exc).__name__} (the server's log has more)")


def _add_guards(app: FastAPI, settings: Settings) -> None:
    """The token (when set: every request carries it as a bearer header, the cookie the page
    gets, or ?token=), the Host check on loopback (DNS rebinding), and same-origin writes."""

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if settings.check_host and _host_name(request.headers.get("host", "")) not in (
            LOOPBACK_HOSTS
        ):
            return JSONResponse({"error": "this studio answers on 127.0.0.1 only"}, 403)
        if settings.token and not _has_token(request, settings.token):
            if request.url.path == "/":
                return HTMLResponse(NEEDS_TOKEN_PAGE, 401)
            return JSONResponse(
                {"error": "this studio needs its token: open the address printed by "
                 "'impasto serve' (it ends in ?token=...)"}, 401)  # fmt: skip
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and not _same_origin(request, origin):
            return JSONResponse({"error": "requests from other sites are refused"}, 403)
        return await call_next(request)


def _has_token(request: Request, token: str) -> bool:
    given = [
        request.headers.get("authorization", "").removeprefix("Bearer ").strip(),
        request.cookies.get(TOKEN_COOKIE, ""),
        request.query_params.get("token", ""),
    ]
    return any(value and secrets.compare_digest(value.encode(), token.encode()) for value in given)


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _same_origin(request: Request, origin: str) -> bool:
    return origin.split("://", 1)[-1] == request.headers.get("host", "")


def _video_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("av", "cv2"))
