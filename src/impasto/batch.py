"""Files, folders and frame sequences through any prepared method: the batch runner.

``plan`` turns inputs (files or folders, searched recursively) and one output (a file for a
single input, else a folder whose sub-folders mirror the inputs') into jobs, checking every
output path before any work. ``run`` loads each input, stacks images of the same size up to
the method's ``max_batch``, runs, saves each result atomically, and reports an ``item`` event
per input; an unreadable or unusable input is skipped and counted (policy "skip"), or stops
the run (policy "stop", what a single input gets). Every image written carries its own
provenance record (impasto.provenance: the method's recipe plus that input's sha256), and with
``save_settings`` a sidecar ``OUT.json`` beside it. Used by the CLI now, by video (frames) and
the studio next.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import provenance
from .errors import Cancelled, ImpastoError, InputError
from .files import resolved
from .images import OUTPUT_FORMATS, LoadedImage, check_output_path, load_image, resize_to
from .images import save_image as write_image
from .methods.base import Prepared
from .photos import PHOTO_EXTENSIONS, find_photos
from .pipeline import recipe_of
from .progress import ProgressCallback, ProgressEvent, report

SKIP_POLICIES: tuple[str, ...] = ("skip", "stop")
FORMAT_CHOICES: tuple[str, ...] = ("png", "jpg", "webp", "tif")
"""Formats a folder's outputs can be written in (``--format``); default: each input's own."""


@dataclass
class Job:
    """One input file and where its result goes; ``image``: the input while it is loaded (set
    by the caller ahead, or by ``run`` while the job is worked on)."""

    source: Path
    target: Path
    image: LoadedImage | None = None


@dataclass
class BatchReport:
    """What a run wrote (in input order) and what it skipped (``name (reason)``)."""

    written: list[Path] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) of each
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def output_name(relative: Path, output_format: str | None = None) -> Path:
    """The result's name for an input's relative path: in ``output_format`` (one of
    FORMAT_CHOICES) when given, else the same, or .png for formats that cannot be written
    (e.g. .bmp)."""
    if output_format is not None:
        return relative.with_suffix("." + _checked_format(output_format))
    suffix = relative.suffix.lower()
    return relative if suffix in OUTPUT_FORMATS else relative.with_suffix(".png")


def _checked_format(output_format: str) -> str:
    if output_format not in FORMAT_CHOICES:
        raise InputError(
            f"unknown output format '{output_format}'; choose from: {', '.join(FORMAT_CHOICES)}"
        )
    return output_format


def _suffixes(output_format: str) -> tuple[str, ...]:
    return {"jpg": (".jpg", ".jpeg"), "tif": (".tif", ".tiff")}.get(
        output_format, ("." + output_format,)
    )


def expand_inputs(items: Sequence[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for each input file or folder."""
    expanded = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = find_photos(path)
            if not found:
                raise InputError(f"no images ({', '.join(PHOTO_EXTENSIONS)}) found in {path}")
            expanded.extend((file, file.relative_to(path)) for file in found)
        else:
            expanded.append((path, Path(path.name)))
    return expanded


def plan(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    protected: Sequence[str | os.PathLike] = (),
    *,
    output_format: str | None = None,
) -> tuple[list[Job], bool]:
    """(jobs, single): one job per input image; ``single`` when one input file goes to one
    output file. ``protected``: other files no output may overwrite (the style images).
    ``output_format``: the format of a folder's outputs (FORMAT_CHOICES; default: each
    input's); a single output file's own extension must agree with it."""
    if output_format is not None:
        _checked_format(output_format)
    expanded = expand_inputs(inputs)
    target = Path(output).expanduser()
    single = len(expanded) == 1 and not Path(inputs[0]).expanduser().is_dir()
    single = single and target.suffix != ""
    if single:
        if output_format is not None and target.suffix.lower() not in _suffixes(output_format):
            raise InputError(
                f"--format {output_format} does not match the output file '{target}'; the "
                "output's extension sets its format (--format is for output folders)"
            )
        source = expanded[0][0]
        return [Job(source, check_output_path(target, inputs=[source, *protected]))], True
    if target.suffix.lower() in OUTPUT_FORMATS:
        raise InputError(
            f"{len(expanded)} input images need an output folder, not the file '{target}'"
        )
    if target.exists() and not target.is_dir():
        raise InputError(f"output '{target}' exists and is not a folder")
    if not target.parent.is_dir():
        raise InputError(f"output folder {target.parent} does not exist")
    jobs = [
        Job(source, target / output_name(relative, output_format)) for source, relative in expanded
    ]
    seen: dict[Path, Path] = {}
    for job in jobs:  # e.g. two inputs named x.jpg, or x.bmp beside x.png
        first = seen.setdefault(job.target, job.source)
        if first != job.source:
            raise InputError(
                f"'{first}' and '{job.source}' would both be written to '{job.target}'; "
                "give them different names or stylise them separately"
            )
    sources = {resolved(Path(p).expanduser()) for p in protected}
    sources |= {resolved(job.source) for job in jobs}
    clash = next((job.target for job in jobs if resolved(job.target) in sources), None)
    if clash is not None:
        raise InputError(f"output '{clash}' would overwrite an input image")
    return jobs, False


def run(
    prepared: Prepared,
    jobs: Sequence[Job],
    *,
    policy: str = "skip",
    max_pixels: int | None = None,
    progress: ProgressCallback | None = None,
    save_settings: bool = False,
) -> BatchReport:
    """Stylise every job's input with ``prepared`` and write its target (parents created),
    with its provenance record; ``save_settings``: also a sidecar JSON beside each."""
    if policy not in SKIP_POLICIES:
        raise InputError(f"unknown policy '{policy}'; choose from: {', '.join(SKIP_POLICIES)}")
    started = time.perf_counter()
    result = BatchReport()
    pending: list[tuple[Job, LoadedImage]] = []
    total = len(jobs)

    def skip(job: Job, error: ImpastoError) -> None:
        if policy == "stop":
            raise error
        result.skipped.append(f"{job.source.name} ({error})")
        done = len(result.written) + len(result.skipped)
        report(
            progress,
            ProgressEvent(
                "skipped", done, total, kind="item", item=str(job.source), skipped=str(error)
            ),
        )

    def flush() -> None:
        if not pending:
            return
        group = list(pending)
        pending.clear()
        if len(group) > 1:
            try:
                _run_group(prepared, group, result, total, progress, save_settings)
                return
            except Cancelled:
                raise
            except ImpastoError:
                pass  # one bad image spoils a batch: run them one by one to find it
        for job, image in group:
            try:
                _run_group(prepared, [(job, image)], result, total, progress, save_settings)
            except Cancelled:
                raise
            except ImpastoError as error:
                skip(job, error)

    for job in jobs:
        try:
            image = job.image or load_image(job.source, max_pixels=max_pixels)
        except ImpastoError as error:
            skip(job, error)
            continue
        same_size = not pending or pending[0][1].rgb.shape == image.rgb.shape
        if not same_size or len(pending) >= max(1, prepared.max_batch):
            flush()
        pending.append((job, image))
    flush()
    result.seconds = time.perf_counter() - started
    report(progress, ProgressEvent("done", total, total, kind="done"))
    if not result.written:
        raise InputError(f"none of the {total} input images could be stylised")
    return result


def _run_group(
    prepared: Prepared,
    group: list[tuple[Job, LoadedImage]],
    result: BatchReport,
    total: int,
    progress: ProgressCallback | None,
    save_settings: bool = False,
) -> None:
    first = group[0][0]
    names = first.source.name if len(group) == 1 else f"{first.source.name} (+{len(group) - 1})"
    for job, image in group:
        job.target.parent.mkdir(parents=True, exist_ok=True)  # previews may go there first
        job.image = image  # for the progress callback (e.g. a preview's alpha); freed below
    report(
        progress,
        ProgressEvent(
            f"stylizing {names}", len(result.written), total, kind="stage", item=str(first.target)
        ),
    )
    try:
        output = prepared.checked_run(torch.cat([image.rgb for _, image in group]), progress)
    except BaseException as stop:  # Ctrl-C, a cancel, SIGTERM: keep what was made so far
        keep_partial(stop, prepared, group)
        raise
    for (job, image), picture in zip(group, output.image, strict=True):
        record = write_result(recipe_of(prepared), job, image, picture[None], job.target)
        if save_settings:
            provenance.write_sidecar(job.target, record)
        job.image = None
        result.written.append(job.target)
        result.sizes.append((int(picture.shape[-1]), int(picture.shape[-2])))
        done = len(result.written) + len(result.skipped)
        report(progress, ProgressEvent("written", done, total, kind="item", item=str(job.target)))


def write_result(
    recipe: provenance.Recipe,
    job: Job,
    image: LoadedImage | None,
    picture: torch.Tensor,
    path: Path,
    *,
    step: int | None = None,
) -> dict:
    """Write ``picture`` (1, 3, H, W), made from ``job``'s input, to ``path`` atomically: with
    that input's alpha (``image``, resized to the picture) and its provenance record (``step``:
    of a preview or a stopped run). Returns the record. For results, previews and partials."""
    alpha = image.alpha if image is not None else None
    if alpha is not None:
        alpha = resize_to(alpha, *picture.shape[-2:])
    content = provenance.describe_file(job.source)
    record = recipe.record(content, picture.shape[-1], picture.shape[-2], step=step)
    write_image(picture, path, alpha=alpha, metadata=record)
    return record


def partial_path(target: Path) -> Path:
    """Where a stopped run keeps its image so far: ``out.png`` -> ``out.partial.png``."""
    return target.with_name(f"{target.stem}.partial{target.suffix}")


def keep_partial(stop: BaseException, prepared: Prepared, group: list) -> None:
    """When ``stop`` carries a partial result (``partial``, see impasto.errors) of a
    one-image group, write it next to that output as ``partial_path`` with its provenance
    (the step it stopped at) and set ``stop.kept`` to the file; a failure to write it never
    hides the stop."""
    partial = getattr(stop, "partial", None)
    if partial is None or len(group) != 1:
        return
    job, image = group[0]
    step = partial.details.get("stopped_at_step")
    path = partial_path(job.target)
    try:
        write_result(recipe_of(prepared), job, image, partial.image, path, step=step)
    except Exception:  # noqa: BLE001 - the stop matters more than its keepsake
        return
    stop.kept = path
    stop.kept_step = (step, partial.details.get("steps"))
