"""A short deterministic fuzz run of the loaders of untrusted files (the image loader and the
model-folder loader) in the normal suite: only impasto's own errors may come out. The long,
coverage-guided run is fuzz/run.py with atheris (docs/fuzzing.md)."""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's fuzz/ package

from fuzz import mutate, seeds, targets  # noqa: E402


def describe(failures) -> str:
    return "; ".join(f"input {i}: {type(e).__name__}: {e}" for i, e in failures[:5])


@pytest.mark.parametrize("kind, count, least_accepted", [("image", 1500, 60), ("model", 600, 1)])
def test_mutated_inputs_give_only_impasto_errors(kind, count, least_accepted):
    accepted, failures = targets.short_run(kind, count, seed=20261201)
    assert not failures, describe(failures)
    # The run reaches the decoders: enough mutants still load (not all refused at the door).
    assert accepted >= least_accepted, f"only {accepted} of {count} inputs were accepted"


def test_every_seed_is_accepted():
    assert all(targets.image_target(data) for data in seeds.image_seeds())
    assert all(targets.model_target(data) for data in seeds.model_seeds())


def test_the_run_reports_an_escape_and_a_broken_promise(monkeypatch):
    def flaky(path, max_pixels=None):
        raise ValueError("an internal error escaping the loader")

    monkeypatch.setattr(targets, "load_image", flaky)
    _, failures = targets.short_run("image", 3)
    assert [type(error) for _, error in failures] == [ValueError] * 3

    class Loaded:
        rgb = __import__("torch").full((1, 3, 2, 2), 2.0)  # out of [0, 1]
        alpha = None

    monkeypatch.setattr(targets, "load_image", lambda path, max_pixels=None: Loaded())
    _, failures = targets.short_run("image", 2)
    assert failures and all(isinstance(e, targets.BrokenPromise) for _, e in failures)


def test_mutations_are_deterministic_and_change_the_input():
    data = seeds.image_seeds()
    first = list(mutate.mutations(data, 50, mutate.mutate_image, seed=7))
    assert first == list(mutate.mutations(data, 50, mutate.mutate_image, seed=7))
    assert sum(child not in data for child in first) >= 45


def test_repaired_png_crcs_let_pillow_read_an_edited_chunk():
    png = seeds.image_seeds()[0]  # 13 x 9 RGB
    edited = bytearray(png)
    edited[19] = 12  # IHDR width 13 -> 12, its CRC now wrong
    with pytest.raises(Image.UnidentifiedImageError):  # Pillow checks the CRC
        Image.open(io.BytesIO(bytes(edited)))
    assert Image.open(io.BytesIO(mutate.repair_png_crcs(bytes(edited)))).size == (12, 9)
    assert mutate.repair_png_crcs(png) == png  # an intact file is unchanged


def test_json_mutation_keeps_json_and_changes_one_value():
    text = b'{"a": 1, "b": {"c": "x"}}'
    rng = random.Random(3)
    changed = [mutate.mutate_json(text, rng) for _ in range(20)]
    assert any(c != text for c in changed)
