"""The ``impasto`` command line: a thin shell over the public API and impasto.pipeline.

One module per command (stylize, train, export, compare, evaluate, recommend, download,
backbones), the argument machinery (args.py) and the terminal UI (terminal.py); main.py
builds the parser, maps errors to exit codes and is the entry point
(``impasto.cli.main:main``). This file imports nothing, so main.py can import the command
modules without a loop. The CLI imports only public names of the library.
"""
