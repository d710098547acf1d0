"""Where the CLI talks to the user: one-line notices on stderr, and progress events drawn as
rich bars on a terminal (download bytes, steps with losses) or as a few plain lines when
stderr is a log file."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Sequence
from typing import Any

from ..progress import ProgressEvent

COUNT_AFTER_SECONDS = 2.0
"""A stage that only counts (no names, no bar) is shown once it has run this long."""


class Terminal:
    """Plain lines on stderr, rich bars when it is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.live: Any = None  # the rich Progress currently drawn, if any

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal

    def line(self, text: str) -> None:
        """One plain line on stderr (printed above a live progress bar when there is one)."""
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr, flush=True)


def one_line(error: BaseException) -> str:
    """An error message on one line (never empty)."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def describe_losses(losses: dict[str, float]) -> str:
    names = [name for name in ("style", "content", "total") if name in losses]
    return "  ".join(f"{name} {losses[name]:.3g}" for name in names)


class ProgressView:
    """A progress callback for every kind of event (impasto.progress).

    ``download``: announced in one line, then a byte bar (or a line per tenth); ``step``: a bar
    with the stage, the count, the time left and the losses (or a line per stage and per
    tenth); ``item``: a line per finished or skipped input when ``items`` is set. ``quiet``:
    notices only. Use it as a context manager so bars are stopped on errors too.
    """

    def __init__(self, terminal: Terminal, quiet: bool = False, items: bool = False) -> None:
        self.terminal, self.quiet, self.items = terminal, quiet, items
        self.bar: Any = None
        self.bar_kind = ""
        self.task: Any = None
        self.stage: str | None = None
        self.tenths = {"download": -1, "step": -1, "item": -1}  # plain-line output, per kind
        self.counting_since: float | None = None

    def __enter__(self) -> ProgressView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.terminal.live = None
        self.bar, self.bar_kind, self.task = None, "", None

    def __call__(self, event: ProgressEvent) -> bool | None:
        handler = getattr(self, f"on_{event.kind}")
        handler(event)
        return None

    # ------------------------------------------------------------------ each kind

    def on_download(self, event: ProgressEvent) -> None:
        from .. import weights

        if self.bar_kind != "download" and event.step == 0:
            self.close()
            self.terminal.line(
                f"downloading {event.stage} weights ({megabytes(event.total)}) from "
                f"{event.item} into {weights.weights_dir()}"
            )
            self.tenths["download"] = 0
            if self.terminal.interactive and not self.quiet:
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    TextColumn,
                    TimeRemainingColumn,
                    TransferSpeedColumn,
                )

                self._start(
                    "download",
                    TextColumn(event.stage),
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    TimeRemainingColumn(),
                )
                self.task = self.bar.add_task(event.stage, total=event.total)
            else:
                self.bar_kind = "download"
        if self.bar is not None:
            self.bar.update(self.task, completed=event.step, total=event.total)
        elif not self.quiet and event.total and self._new_tenth("download", event):
            self.terminal.line(f"  {event.step * 100 // event.total}% of {megabytes(event.total)}")
        if event.total and event.step >= event.total:
            self.close()

    def on_step(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        losses = describe_losses(event.losses)
        if not self.terminal.interactive:
            # Not a terminal (a log file, CI): a line per stage and per tenth of the job.
            if self._new_tenth("step", event) or event.stage != self.stage:
                self.stage = event.stage
                self.terminal.line(f"{event.stage}: step {event.step}/{event.total}  {losses}")
            return
        if self.bar_kind != "step":
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

            self.close()
            self._start(
                "step",
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[losses]}"),
            )
            self.task = self.bar.add_task(event.stage, total=event.total, losses="")
        self.bar.update(
            self.task,
            completed=event.step,
            total=event.total,
            description=event.stage,
            losses=losses,
        )

    def on_item(self, event: ProgressEvent) -> None:
        if self.quiet or not self.items:
            return
        if event.skipped:
            self.terminal.line(
                f"[{event.step}/{event.total}] skipped {event.item}: {event.skipped}"
            )
        elif event.item:
            self.terminal.line(f"[{event.step}/{event.total}] {event.item}")
        elif event.total:
            # Counting alone (reading training photos): only once it has taken a while, so a
            # quick stage, or one that fails at once, prints nothing.
            if event.step <= 1 or self.counting_since is None:
                self.counting_since = time.monotonic()
            waited = time.monotonic() - self.counting_since >= COUNT_AFTER_SECONDS
            if self._new_tenth("item", event) and waited:
                self.terminal.line(f"{event.stage}: {event.step}/{event.total}")

    def on_stage(self, event: ProgressEvent) -> None:
        # A step bar names its stage; a stage alone is too short-lived to show. A new input of
        # a batch starts its steps from 1 again: so do the plain lines.
        if event.item:
            self.stage, self.tenths["step"] = None, -1

    def on_done(self, event: ProgressEvent) -> None:
        self.close()
        self.stage, self.tenths["step"] = None, -1

    def _new_tenth(self, kind: str, event: ProgressEvent) -> bool:
        """True (and remembered) when ``event`` reaches a new tenth of its job."""
        tenth = event.step * 10 // max(1, event.total)
        if tenth <= self.tenths[kind]:
            return False
        self.tenths[kind] = tenth
        return True

    def _start(self, kind: str, *columns: Any) -> None:
        from rich.progress import Progress

        self.bar = Progress(*columns, console=self.terminal.console)
        self.bar.start()
        self.bar_kind = kind
        self.terminal.live = self.bar


def print_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    footer: Sequence[str] = (),
    fixed: Sequence[int] = (),
    right: Sequence[int] = (),
) -> None:
    """A table on stdout, no wider than the terminal (``$COLUMNS`` when set): drawn by rich on a
    terminal (columns in ``fixed`` are never cut, those in ``right`` right-aligned), else plain
    aligned columns with the last one free, so scripts can read it. A table wider than that is
    printed as one block per row instead: the row's first cell, then a ``column  value`` line
    per other cell, wrapped at spaces. Not a terminal and no ``$COLUMNS``: no width, nothing is
    wrapped. ``footer``: lines after the table (wrapped to the width too)."""
    from rich.console import Console

    console = Console()
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    if console.is_terminal:
        width: int | None = console.width
        needed = sum(widths) + 3 * len(widths) + 1  # rich's borders and padding
    else:
        width = _columns()
        needed = sum(widths) + 2 * (len(widths) - 1)
    if width is not None and needed > width:
        print("\n\n".join(_block(header, row, width) for row in rows))
        if footer:
            print()
        for line in footer:
            print(_wrap(line, width, ""))
        return
    if console.is_terminal:
        from rich.table import Table

        table = Table()
        for index, title in enumerate(header):
            no_wrap = index in fixed
            table.add_column(
                title,
                no_wrap=no_wrap,
                overflow="fold",
                min_width=len(title) if no_wrap else None,
                justify="right" if index in right else "left",
            )
        for row in rows:
            table.add_row(*row)
        console.print(table)
        for line in footer:
            console.print(line, markup=False, highlight=False)
        return
    for row in (header, *rows):
        cells = [cell.ljust(size) for cell, size in zip(row, widths[:-1], strict=False)]
        print("  ".join([*cells, row[-1]]))
    for line in footer:
        print(line if width is None else _wrap(line, width, ""))


def _columns() -> int | None:
    """``$COLUMNS`` as a whole number of at least 20, else None."""
    text = os.environ.get("COLUMNS", "").strip()
    return int(text) if text.isdigit() and int(text) >= 20 else None


def _block(header: Sequence[str], row: Sequence[str], width: int) -> str:
    """One row as a block: its first cell, then ``  column  value`` lines (empty cells left
    out), values wrapped to ``width`` under their start."""
    label_width = max(len(title) for title in header[1:])
    lines = [row[0]]
    for title, cell in zip(header[1:], row[1:], strict=True):
        if cell:
            indent = " " * (label_width + 4)
            text = _wrap(cell, width, indent)
            lines.append(f"  {title.ljust(label_width)}  {text[len(indent) :]}")
    return "\n".join(lines)


def _wrap(text: str, width: int, indent: str) -> str:
    """``text`` wrapped at spaces to ``width`` (never inside a name such as efficientnet-lite0),
    every line starting with ``indent``; a word longer than the line is kept whole."""
    return textwrap.fill(
        text,
        max(width, len(indent) + 20),
        initial_indent=indent,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=False,
    )
