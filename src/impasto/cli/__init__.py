"""The ``impasto`` command line: a thin shell over the public API and impasto.pipeline.

One module per command (stylize, train, export, compare, evaluate, recommend, download,
backbones), the argument machinery (args.py) and the terminal UI (terminal.py); main.py
builds the parser and maps errors to exit codes. The CLI imports only public names of the
library.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
