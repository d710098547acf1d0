"""The one training core for every method that trains a network (fast style networks today,
decoders tomorrow): checkpoints, bit-for-bit resume, the run's fingerprint, the step loop, and
stopping cleanly on Ctrl-C or SIGTERM.

Bit-for-bit resume rests on three things: batches are a pure function of (seed, step)
(impasto.photos), the network starts from the seed, and a checkpoint holds the weights, the
optimiser state and the step. A resumed run then repeats an uninterrupted one exactly (on the
same device and software). The fingerprint (settings that shape the run, the style's sha256, a
description of the data) must match for a resume to be allowed.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .errors import Cancelled, InputError
from .files import atomic_path, make_folders, sweep_stale_temps
from .progress import ProgressCallback, ProgressEvent, report

CHECKPOINT = Path("training") / "checkpoint.pt"
PREVIEWS = Path("training") / "previews"


def fingerprint(config: Any, resumable: tuple[str, ...], **identity: Any) -> dict[str, Any]:
    """What makes a run this run: the config's fields except ``resumable`` ones (which may
    change between an interrupted run and its resumption), plus ``identity`` (style hash, data).
    """
    kept = {key: value for key, value in asdict(config).items() if key not in resumable}
    return {"config": kept, **identity}


def read_checkpoint(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The training checkpoint in a model folder (loaded with weights_only=True), or None."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = " ".join(str(error).split())[:200]
        raise InputError(f"training checkpoint {path} is unreadable ({reason})") from error
    problem = _checkpoint_problem(checkpoint)
    if problem is not None:
        raise InputError(f"{path} is not an impasto training checkpoint: {problem}")
    return checkpoint


def _checkpoint_problem(checkpoint: Any) -> str | None:
    """What is wrong with a loaded checkpoint's structure, or None."""
    if not isinstance(checkpoint, dict):
        return f"it holds a {type(checkpoint).__name__}, not a dict"
    missing = [
        key for key in ("model", "optimizer", "step", "fingerprint") if key not in checkpoint
    ]
    if missing:
        return f"{', '.join(missing)} missing"
    if isinstance(checkpoint["step"], bool) or not isinstance(checkpoint["step"], int):
        return "its step is not a whole number"
    try:
        fingerprint = json.loads(checkpoint["fingerprint"])
    except (TypeError, ValueError):
        return "its fingerprint is not JSON"
    if not isinstance(fingerprint, dict) or not isinstance(fingerprint.get("config"), dict):
        return "its fingerprint has no settings"
    return None


def save_checkpoint(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to the folder's checkpoint atomically (never a half-written file); a
    full or read-only disk is an InputError naming the file and the OS's reason."""
    path = folder / CHECKPOINT
    make_folders(path.parent)
    with atomic_path(path) as partial, open(partial, "wb") as handle:
        # Through a Python handle that keeps the OS error: torch's writer turns a full disk
        # into "RuntimeError: [enforce fail at inline_container.cc] unexpected pos ...".
        writer = _ErrorKeepingWriter(handle)
        try:
            torch.save(state, writer)
        except RuntimeError as error:
            if writer.error is None:
                raise
            raise writer.error from error


class _ErrorKeepingWriter:
    """A binary file handle's ``write`` and ``flush`` that remember the first OSError."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def flush(self) -> None:
        self.handle.flush()


def save_run(folder: Path, step: int, model, optimizer, run: dict[str, Any],
             losses: dict[str, float] | None) -> None:  # fmt: skip
    """The checkpoint of a run at ``step``: the model's and optimiser's state (on the CPU), the
    step, the run's fingerprint and the last losses (kept for a resume that trains no step)."""
    save_checkpoint(folder, {
        "model": to_cpu(model.state_dict()),
        "optimizer": to_cpu(optimizer.state_dict()),
        "step": step,
        "fingerprint": json.dumps(run),
        "losses": losses,
    })  # fmt: skip


def write_preview(folder: Path, step: int, image: torch.Tensor) -> Path:
    """Save a preview image (1, 3, H, W) in [0, 1] as ``training/previews/step-NNNNNNN.png``."""
    from .images import save_image

    path = folder / PREVIEWS / f"step-{step:07d}.png"
    make_folders(path.parent)
    return save_image(image, path)


def to_cpu(value: Any) -> Any:
    """``value`` with every tensor inside (dicts, lists, tuples) detached and on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_cpu(item) for item in value)
    return value


def refuse_to_overwrite(folder: Path, step: int | None = None) -> None:
    """The one error for a run that would start afresh over an interrupted one."""
    at = f" (step {step})" if step is not None else ""
    raise InputError(
        f"{folder} already holds a training checkpoint{at}; add --resume to continue it, or "
        "choose another folder"
    )


def check_resumable(folder: Path, resume: bool) -> None:
    """The checks of ``checkpoint_to_resume`` that need no run fingerprint, for before any slow
    work: without ``resume`` a checkpoint in ``folder`` is an error (found without loading it);
    with it, one must be there and well-formed."""
    if not resume:
        if (folder / CHECKPOINT).exists():
            refuse_to_overwrite(folder)
        return
    if read_checkpoint(folder) is None:
        raise _nothing_to_resume(folder)


def _nothing_to_resume(folder: Path) -> InputError:
    return InputError(f"nothing to resume: {folder / CHECKPOINT} does not exist")


def checkpoint_to_resume(folder: Path, run: dict[str, Any], resume: bool) -> dict | None:
    """The checkpoint to continue from (None: start afresh), after the checks that keep runs
    from being overwritten or mixed: without ``resume`` an existing checkpoint is an error;
    with it, the checkpoint must exist and its fingerprint must equal ``run``. Then the
    temporary files of a killed run are swept (``sweep_run_folder``)."""
    checkpoint = read_checkpoint(folder)
    if checkpoint is not None and not resume:
        refuse_to_overwrite(folder, step=int(checkpoint["step"]))
    if resume and checkpoint is None:
        raise _nothing_to_resume(folder)
    if checkpoint is not None:
        saved = json.loads(checkpoint["fingerprint"])
        if saved != json.loads(json.dumps(run)):
            changed = sorted(
                key
                for key in set(saved["config"]) | set(run["config"])
                if saved["config"].get(key) != run["config"].get(key)
            )
            what = ", ".join(changed) or "the style image or the training photos"
            raise InputError(f"cannot resume {folder}: different {what} than the interrupted run")
    sweep_run_folder(folder)
    return checkpoint


def sweep_run_folder(folder: Path) -> list[Path]:
    """Remove the temporary files a killed run left in a model folder (the model's files, the
    checkpoint, previews): those of writers that are gone (impasto.files.sweep_stale_temps)."""
    places = (folder, folder / CHECKPOINT.parent, folder / PREVIEWS)
    return [path for place in places for path in sweep_stale_temps(place)]


def run_steps(
    start: int,
    steps: int,
    train_step: Callable[[int], dict[str, float]],
    save: Callable[[int, dict[str, float] | None], None],
    *,
    checkpoint_every: int,
    preview_every: int = 0,
    preview: Callable[[int], torch.Tensor] | None = None,
    progress: ProgressCallback | None = None,
) -> list[dict[str, float]]:
    """The step loop: ``train_step(step)`` (0-based) returns the losses of one optimiser step;
    ``save(step, last_losses)`` writes a checkpoint at every ``checkpoint_every`` steps and at
    the end; ``preview(step)`` makes a preview every ``preview_every`` steps. A cancel from
    ``progress`` saves a checkpoint at the finished step (a step boundary, so a resume repeats
    the run exactly) and raises Cancelled. Returns the losses of every step run here.
    """
    history: list[dict[str, float]] = []
    step = start
    try:
        while step < steps:
            values = train_step(step)
            step += 1
            history.append(values)
            image = None
            if (
                preview is not None
                and preview_every
                and (step % preview_every == 0 or step == steps)
            ):
                image = preview(step)
            if step % checkpoint_every == 0 or step == steps:
                save(step, values)
            report(progress, ProgressEvent("training", step, steps, values, image))
    except Cancelled:
        save(step, history[-1] if history else None)
        raise
    return history


class StopOnSignals:
    """Within ``with``: the first Ctrl-C (SIGINT) or SIGTERM asks the run to stop at the next
    step boundary (``wrap``'s callback then returns False, so the loop saves a checkpoint and
    raises Cancelled); a second signal raises KeyboardInterrupt at once. ``signal`` says which
    signal asked first (None: none). For front ends; the library never installs handlers
    itself. Must be entered in the main thread.
    """

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self.notify = notify
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._request)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _request(self, signum: int, frame: object) -> None:
        if self.signal is not None:  # a second signal: stop now, from the last checkpoint
            raise KeyboardInterrupt
        self.signal = signum
        if self.notify is not None:
            again = "Ctrl-C again" if signum == signal.SIGINT else "another signal"
            self.notify(f"stopping after this step ({again} to stop at once)...")

    def wrap(self, progress: ProgressCallback | None) -> ProgressCallback:
        """``progress`` that also returns False once a stop was asked for."""

        def callback(event: ProgressEvent) -> bool:
            answer = progress(event) if progress is not None else None
            return answer is not False and self.signal is None

        return callback
