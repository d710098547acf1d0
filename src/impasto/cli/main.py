"""The ``impasto`` entry point: the parser of every command, and errors mapped to exit codes.

Every error a user can fix (an ``ImpastoError`` or a usage mistake) becomes one line
``impasto: error: ...`` on stderr and exit code 2; Ctrl-C prints ``impasto: interrupted`` and
exits 130, SIGTERM prints ``impasto: terminated`` and exits 143; anything else is an internal
error (exit 1). Tracebacks appear only with ``--debug``. A command's flags that need torch
(those built from config dataclasses) are added only when that command runs, and command
modules import the library inside their functions, so ``impasto --help``, ``--version`` and
``download`` never import torch, nor does ``recommend`` unless it reads a method's config for
where to start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence

from .. import __version__, threads
from ..errors import ImpastoError
from . import (
    backbones,
    compare,
    describe_style,
    download,
    evaluate,
    export,
    info,
    recommend,
    serve,
    stylize,
    train,
    tune,
)
from .args import Parser, UsageError, command_in
from .terminal import Terminal, one_line

# commands that run networks: before torch starts, they look at how busy the machine is
WORKING_COMMANDS = ("stylize", "compare", "evaluate", "train", "tune", "export", "serve")

PROG = "impasto"
STARTING_NOTE = f"{PROG}: starting (loading PyTorch)"
QUIET_LOGGERS = ("PIL",)  # libraries that log about user files on their own
COMMANDS = (
    stylize,
    train,
    export,
    compare,
    evaluate,
    info,
    recommend,
    describe_style,
    serve,
    download,
    backbones,
    tune,
)
"""One module per command, each with ``add_parser(commands, argv, selected)`` and ``run``."""


def command_name(command) -> str:
    """The command word of a command module: its name, with ``-`` for ``_`` (describe-style)."""
    return command.__name__.rsplit(".", 1)[1].replace("_", "-")


def build_parser(argv: Sequence[str] = ("stylize",)) -> Parser:
    """The full parser; a command's heavy flags are added only when ``argv`` runs it."""
    parser = Parser(
        prog=PROG,
        description="Neural style transfer: paint a photo in the style of other images.",
        epilog="Run 'impasto COMMAND --help' for the options of a command. "
        "Example: impasto stylize photo.jpg painting.jpg -o out.png --size 512",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    chosen = command_in(argv)
    for command in COMMANDS:
        selected = chosen == command_name(command)
        command.add_parser(commands, argv, selected=selected)
        if selected and hasattr(command, "explain"):  # a clearer message for some mistakes
            parser.explain = lambda message, command=command: command.explain(argv, message)
    return parser


@contextlib.contextmanager
def _library_logs_silenced(active: bool) -> Iterator[None]:
    """Pillow logs its notes on odd files (e.g. "More samples per pixel than can be decoded")
    at error level; with no logging set up Python prints them on stderr, a line beside ours.
    The error the file causes reaches the user as impasto's one line; ``--debug`` shows both."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS] if active else []
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def kept_note(stop: BaseException) -> str:
    """ "; kept the image so far (step 120 of 400) in out.partial.png" when a stopped run kept
    its work (impasto.batch.keep_partial), else ""."""
    kept = getattr(stop, "kept", None)
    if kept is None:
        return ""
    step, steps = getattr(stop, "kept_step", (None, None))
    at = f" (step {step} of {steps})" if step is not None and steps else ""
    return f"; kept the image so far{at} in {kept}"


def choose_threads(argv: Sequence[str], environ, torch_loaded: bool) -> str | None:
    """For a working command, before torch starts: how OpenMP threads wait, from how busy the
    machine is (impasto.threads); None when nothing was chosen."""
    if torch_loaded or command_in(argv) not in WORKING_COMMANDS or threads.users_choice(environ):
        return None
    return threads.choose_wait_policy(environ, threads.busy_cores())


@contextlib.contextmanager
def _starting_note(show: bool) -> Iterator[None]:
    """On a terminal, one line while PyTorch loads (1-3 s before anything else can be said),
    erased afterwards so the progress bar takes its place."""
    if not show:
        yield
        return
    print(STARTING_NOTE, end="\r", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        print("\r\033[K", end="", file=sys.stderr, flush=True)  # back to the start, erase


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    working = command_in(argv) in WORKING_COMMANDS and "torch" not in sys.modules
    choose_threads(argv, os.environ, torch_loaded="torch" in sys.modules)
    parser = None
    try:
        with _starting_note(working and "--quiet" not in argv and sys.stderr.isatty()):
            parser = build_parser(argv)  # imports torch for a working command: seconds
        args = parser.parse_args(argv)
    except (UsageError, ImpastoError) as error:  # ImpastoError: e.g. a method's extra missing
        if "--debug" in argv and isinstance(error, ImpastoError):
            raise
        if parser is not None and isinstance(error, UsageError) and command_in(argv) is None:
            # No command (a bare `impasto`): the help, so the commands are listed with a line
            # each, on stderr, then the error; exit 2 as argparse does for any missing argument,
            # so a script that forgot the command fails. `impasto --help` is the exit-0 way.
            print(parser.format_help(), file=sys.stderr)
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help, --version
        return exit_.code if isinstance(exit_.code, int) else 0

    terminal = Terminal()
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (e.g. called from a worker): leave signals alone
        previous = None
    try:
        with _library_logs_silenced(not args.debug):
            return args.handler(args, terminal)
    except Terminated as stop:
        if args.debug:
            raise
        print(f"{PROG}: terminated{kept_note(stop)}", file=sys.stderr)
        return 128 + signal.SIGTERM  # 143, the shell's code for a SIGTERM
    except ImpastoError as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        if args.debug:
            raise
        print(f"{PROG}: interrupted{kept_note(stop)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`impasto recommend | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
        os.close(devnull)
        return 128 + 13  # 141, what a shell reports for a command ended by SIGPIPE
    except Exception as error:
        if args.debug:
            raise
        print(
            f"{PROG}: internal error: {type(error).__name__}: {one_line(error)} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(BaseException):
    """SIGTERM (kill, timeout, a scheduler) during a command: like Ctrl-C, work stops, outputs
    being written are removed (they are atomic) and the exit code is 143. A BaseException, so
    no ``except Exception`` in the library can swallow it."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated
