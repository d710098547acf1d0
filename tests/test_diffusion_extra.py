"""Without the diffusion extra, impasto imports and runs as before, and ``--method diffusion``
says what to install, in one line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from helpers import error_line, run_cli

MISSING = ("diffusers", "transformers", "peft")


def test_importing_impasto_imports_no_diffusion_library():
    code = (
        "import sys, impasto, impasto.cli.main; "
        "print(any(m in sys.modules for m in ('diffusers', 'transformers', 'peft')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_the_extra_the_method_says_what_to_install(capsys, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in MISSING else real(name, *a))  # fmt: skip
    photo = "src/impasto/assets/washington_monument.jpg"
    painting = "src/impasto/assets/vangogh_bedroom_in_arles.jpg"
    code, _out, err = run_cli(capsys, "stylize", photo, painting, "-o", tmp_path / "o.png",
                              "--method", "diffusion")  # fmt: skip
    assert code == 2 and "pip install 'impasto[diffusion]'" in error_line(err)
    code, _out, err = run_cli(capsys, "stylize", photo, painting, "-o", tmp_path / "o.png",
                              "--method", "color", "--size", "32")  # fmt: skip
    assert code == 0, err  # everything else runs as before
