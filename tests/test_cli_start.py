"""The command's first seconds: on a terminal a working command says it is starting while
PyTorch loads, and erases the line; through a pipe it says nothing of the kind."""

from __future__ import annotations

import os
import subprocess
import sys

from impasto.cli.main import STARTING_NOTE


def run_with_stderr(stderr, tmp_path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "impasto", "stylize", str(tmp_path / "missing.png"),
               str(tmp_path / "missing-style.png"), "-o", str(tmp_path / "out.png")]  # fmt: skip
    return subprocess.run(command, stdout=subprocess.DEVNULL, stderr=stderr, timeout=120)


def test_a_terminal_sees_the_starting_note_then_it_is_erased(tmp_path):
    main, secondary = os.openpty()
    try:
        done = run_with_stderr(secondary, tmp_path)
        os.close(secondary)
        output = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the other end is closed: all read
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(main)
    text = output.decode()
    assert done.returncode == 2
    note_at = text.index(STARTING_NOTE)
    erased_at = text.index("\r\x1b[K", note_at)
    assert text.index("impasto: error:", erased_at) > erased_at


def test_a_pipe_gets_no_starting_note(tmp_path):
    done = run_with_stderr(subprocess.PIPE, tmp_path)
    assert done.returncode == 2
    assert STARTING_NOTE not in done.stderr.decode()
