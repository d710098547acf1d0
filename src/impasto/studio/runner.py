"""One studio job run with the library, in a worker process.

A stylise job goes through ``pipeline.prepare`` and ``pipeline.stylize_one`` (a photo) or
``frames.stylize_clip`` (a video), as the CLI's do; a training job through
``pipeline.train_model``. The result is written atomically under ``results/`` (or ``models/``)
before the job is marked done, so a finished result is never half there. A job that runs again
after its worker died starts afresh, except a clip (its finished frames are kept) and a training
(it resumes from its checkpoint bit for bit).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import pipeline
from ..methods.registry import METHODS, load_method, load_trainer
from ..progress import ProgressCallback
from . import forms
from .store import Job, Store
from .uploads import input_file

RESULTS = "results"
MODELS = "models"
WORK = "work"


@dataclass(frozen=True)
class Outcome:
    """What a finished job made: its kind (image, video, model) and where, relative to the
    studio's data folder."""

    output: str
    result: str


def run_job(store: Store, job: Job, progress: ProgressCallback,
            notify: Callable[[str], None]) -> Outcome:  # fmt: skip
    """Run ``job``; its errors (InputError, Cancelled, ...) are the caller's to record."""
    if job.kind == "train":
        return _train(store, job, progress, notify)
    return _stylize(store, job, progress, notify)


def _stylize(store: Store, job: Job, progress: ProgressCallback,
             notify: Callable[[str], None]) -> Outcome:  # fmt: skip
    request = job.request
    method = request["method"]
    row = METHODS[method]
    config_class = load_method(method).config_class
    options = forms.typed_options(config_class, request.get("options"), f"method '{method}'")
    if row.takes_model:
        options["model"] = model_folder(store, request["model"])
    if method in forms.PREVIEWING and not options.get("save_every"):
        steps = options.get("steps", config_class.__dataclass_fields__["steps"].default)
        options["save_every"] = max(1, steps // forms.PREVIEWS_PER_SCALE)
    content, content_kind, _name = input_file(store, request["content"])
    styles = [input_file(store, ref)[0] for ref in request.get("styles", [])]
    config = pipeline.make_config(method, options, style_count=len(styles))
    prepared = pipeline.prepare(method, config, styles, progress=progress, notify=notify)
    results = store.folder / RESULTS
    results.mkdir(exist_ok=True)
    if content_kind == "video":
        from .. import frames

        clip = frames.open_clip(content)
        target = frames.clip_target(results / f"{job.id}.mp4", clip)
        frames.stylize_clip(prepared, clip, target, temporal=request.get("temporal", 0.0),
                            resume=True, progress=progress)  # fmt: skip
        shutil.rmtree(target.work, ignore_errors=True)
        return Outcome("video", f"{RESULTS}/{target.path.name}")
    image = pipeline.as_image(content, what="the photo")
    result = pipeline.stylize_one(prepared, image, progress)
    path = result.save(results / f"{job.id}.png")
    return Outcome("image", f"{RESULTS}/{path.name}")


def _train(store: Store, job: Job, progress: ProgressCallback,
           notify: Callable[[str], None]) -> Outcome:  # fmt: skip
    request = job.request
    kind = request["training"]
    config_class = load_trainer(kind).train_config_class
    options = forms.typed_options(config_class, request.get("options"), f"train {kind}")
    config = forms.checked_config(config_class, options)
    folder = store.folder / MODELS / job.id
    folder.parent.mkdir(exist_ok=True)
    style = request.get("style")
    pipeline.train_model(
        kind,
        config,
        folder,
        style=input_file(store, style)[0] if style else None,
        data=request.get("data"),
        styles=request.get("styles"),
        resume=_has_checkpoint(folder),
        progress=progress,
        notify=notify,
    )
    return Outcome("model", f"{MODELS}/{job.id}")


TRAINED_PREFIX = "studio/"


def trained_models(store: Store) -> dict[str, list[str]]:
    """The models the studio trained, by the method that runs them: ``studio/JOB`` names."""
    from ..methods.registry import TRAINING_KINDS

    found: dict[str, list[str]] = {}
    for job in store.jobs():
        if job.kind == "train" and job.state == "done" and job.output == "model":
            for method in TRAINING_KINDS[job.request["training"]].methods:
                if METHODS[method].takes_model:
                    found.setdefault(method, []).append(TRAINED_PREFIX + job.id)
    return found


def model_folder(store: Store, ref: str) -> str:
    """What the library takes for a model the page offers: a shipped model's name as it is, a
    studio-trained ``studio/JOB`` as its folder; InputError for anything else (no other path
    on the server is read)."""
    from ..errors import InputError
    from ..model_folder import shipped_models

    if ref in shipped_models():
        return ref
    if ref.startswith(TRAINED_PREFIX):
        job = store.job(ref[len(TRAINED_PREFIX) :])
        if job is not None and job.kind == "train" and job.state == "done":
            path = result_path(store, job)
            if path is not None:
                return str(path)
    raise InputError(f"no model '{ref[:60]}' here: choose one of the list")


def _has_checkpoint(folder: Path) -> bool:
    from ..training import CHECKPOINT

    return (folder / CHECKPOINT).is_file()


def result_path(store: Store, job: Job) -> Path | None:
    """The finished result of ``job`` inside the data folder; None when there is none (or the
    recorded name would lead outside the data folder)."""
    if job.state != "done" or not job.result:
        return None
    root = store.folder.resolve()
    path = (store.folder / job.result).resolve()
    if root not in path.parents or not path.exists():
        return None
    return path


def remove_files(store: Store, job: Job) -> None:
    """Delete what ``job`` left: its result, model folder, previews and work folder."""
    path = result_path(store, job)
    if path is not None:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    for leftover in (store.folder / WORK / job.id, store.folder / MODELS / job.id):
        shutil.rmtree(leftover, ignore_errors=True)
    for stale in (store.folder / RESULTS).glob(f"{job.id}.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
