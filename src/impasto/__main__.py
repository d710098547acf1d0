"""``python -m impasto``: the same as the ``impasto`` command."""

from impasto.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
