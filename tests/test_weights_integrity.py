"""Cached weights are checked against their sha256 before use (issue "Hardening", item 4).

A file of the right size but the wrong content at a cache path is never used: a named backbone
stops with one line naming the file and the fix, ``auto`` falls back as if the weights were
absent, ``impasto download`` replaces it and says so. The check is remembered by size, mtime and
inode, so a 575 MB file is not hashed on every run. The real files are large: here the specs are
swapped for small ones (sha256 computed with hashlib, independently of the code), and nothing is
ever downloaded (conftest refuses the network; a fake ``urlopen`` serves bytes from memory).
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import small_photo

import impasto
from impasto import clip, weights
from impasto import recommend as rec
from impasto.backbones import resolve_backbone_name, vgg, weights_available
from impasto.cli import main as cli
from impasto.errors import WeightsError

ASSETS = Path(impasto.__file__).resolve().parent / "assets"
GOOD = bytes(range(251)) * 8  # 2008 bytes standing in for the published file
WRONG = GOOD[::-1]  # the same size, another content
ZEROS = bytes(len(GOOD))


@pytest.fixture(autouse=True)
def online(monkeypatch):
    """Offline mode off: whatever happens, no download may be tried (the guard would fail it)."""
    monkeypatch.delenv("IMPASTO_OFFLINE", raising=False)


@pytest.fixture
def small_vgg(monkeypatch) -> weights.WeightSpec:
    """VGG-19's spec with the size and sha256 of GOOD, wherever the code reads it."""
    spec = replace(weights.VGG19, size=len(GOOD), sha256=hashlib.sha256(GOOD).hexdigest())
    monkeypatch.setattr(weights, "VGG19", spec)
    monkeypatch.setattr(vgg, "WEIGHTS", spec)
    return spec


@pytest.fixture
def hashes(monkeypatch) -> list[Path]:
    """Every file impasto.weights hashes, in order."""
    seen: list[Path] = []
    real = weights.sha256_of

    def counting(path, *args, **kwargs):
        seen.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(weights, "sha256_of", counting)
    return seen


@pytest.fixture
def loads(monkeypatch) -> list[Path]:
    """Every file handed to the state-dict loader."""
    seen: list[Path] = []
    real = weights.load_state_dict

    def recording(path):
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(weights, "load_state_dict", recording)
    return seen


@pytest.fixture
def photo(tmp_path) -> Path:
    return small_photo(tmp_path)


def put_in_cache(spec: weights.WeightSpec, data: bytes) -> Path:
    path = weights.weights_dir() / spec.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stylize(photo: Path, out: Path, *options) -> list:
    style = ASSETS / "vangogh_bedroom_in_arles.jpg"
    return ["stylize", "--method", "gatys", photo, style, "-o", out, "--size", "40",
            "--steps", "2", *options]  # fmt: skip


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("impasto: error: "), err
    return lines[0]


# ----------------------------------------------------------------------------- never used


def test_wrong_weights_of_the_right_size_stop_vgg19_with_one_line(
    capsys, tmp_path, photo, small_vgg, loads
):
    cached = put_in_cache(small_vgg, WRONG)
    out = tmp_path / "out.png"
    code, _, err = run(capsys, *stylize(photo, out, "--backbone", "vgg19"))
    assert code == 2
    line = one_error_line(err)
    assert str(cached) in line and "does not match the expected sha256" in line
    assert "impasto download vgg19" in line and "delete it" in line
    assert loads == [], "a file that fails its sha256 must never be loaded"
    assert not out.exists()
    assert cached.read_bytes() == WRONG, "the user's file is not deleted behind their back"


@pytest.mark.parametrize("offline", [False, True])
def test_an_all_zero_file_is_not_picked_by_auto_the_fallback_runs(
    capsys, monkeypatch, tmp_path, photo, small_vgg, loads, offline
):
    if offline:
        monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    cached = put_in_cache(small_vgg, ZEROS)
    out = tmp_path / "out.png"
    code, _, err = run(capsys, *stylize(photo, out))  # --backbone auto, the default
    assert code == 0, err
    assert out.is_file()
    assert cached not in loads
    said = [line for line in err.splitlines() if line.startswith("Using ")]
    assert len(said) == 1, err
    assert said[0].startswith("Using efficientnet-lite0")
    assert str(cached) in said[0] and "sha256" in said[0] and "impasto download vgg19" in said[0]
    assert cached.read_bytes() == ZEROS


def test_auto_treats_damaged_vgg19_weights_as_absent(small_vgg):
    put_in_cache(small_vgg, ZEROS)
    assert not weights_available("vgg19")
    lines = []
    assert resolve_backbone_name("auto", probe=lambda: False, notify=lines.append) == (
        "efficientnet-lite0"
    )
    assert len(lines) == 1


def test_loading_vgg19_from_damaged_cache_is_a_weights_error(small_vgg, loads):
    cached = put_in_cache(small_vgg, WRONG)
    with pytest.raises(WeightsError, match="does not match the expected sha256"):
        vgg.build(allow_download=False)
    with pytest.raises(WeightsError, match="does not match the expected sha256"):
        weights.ensure(small_vgg)  # downloads allowed: still not silently replaced
    assert loads == [] and cached.read_bytes() == WRONG


# ----------------------------------------------------------------------------- remembered


def test_a_checked_file_is_not_hashed_again(small_vgg, hashes):
    cached = put_in_cache(small_vgg, GOOD)

    def probe():
        raise AssertionError("probed although good weights are cached")

    assert resolve_backbone_name("auto", probe=probe) == "vgg19"
    assert hashes == [cached]
    assert weights.ensure(small_vgg) == cached  # what stylize does next, and every later run
    assert weights_available("vgg19")
    assert resolve_backbone_name("auto", probe=probe) == "vgg19"
    assert hashes == [cached], "the verification must be remembered"
    assert (cached.parent / weights.VERIFIED_RECORD).is_file()


def test_a_touched_file_is_hashed_again(small_vgg, hashes):
    cached = put_in_cache(small_vgg, GOOD)
    assert weights.verified_path(small_vgg) == cached
    stat = cached.stat()
    os.utime(cached, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert weights.verified_path(small_vgg) == cached
    assert hashes == [cached, cached]
    assert weights.verified_path(small_vgg) == cached
    assert len(hashes) == 2


def test_a_file_changed_after_its_check_is_refused(small_vgg):
    cached = put_in_cache(small_vgg, GOOD)
    assert weights.verified_path(small_vgg) == cached
    stat = cached.stat()
    cached.write_bytes(ZEROS)  # same size, same inode
    os.utime(cached, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    with pytest.raises(WeightsError, match="does not match the expected sha256"):
        weights.verified_path(small_vgg)
    assert not weights_available("vgg19")


def test_a_garbled_record_means_hashing_again_not_an_error(small_vgg, hashes):
    cached = put_in_cache(small_vgg, GOOD)
    (cached.parent / weights.VERIFIED_RECORD).write_text("{not json")
    assert weights.verified_path(small_vgg) == cached
    assert weights.verified_path(small_vgg) == cached
    assert hashes == [cached]


# ----------------------------------------------------------------------------- front ends


class FakeResponse:
    def __init__(self, data: bytes):
        self.data, self.headers, self.status = data, {"Content-Length": str(len(data))}, 200

    def read(self, n=-1):
        block, self.data = self.data[:n], self.data[n:]
        return block

    def close(self):
        pass


def test_download_replaces_a_damaged_file_and_says_so(capsys, monkeypatch, small_vgg, hashes):
    cached = put_in_cache(small_vgg, ZEROS)
    calls = []

    def urlopen(request, timeout=None):
        calls.append(request.full_url)
        return FakeResponse(GOOD)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    code, out, err = run(capsys, "download", "vgg19")
    assert code == 0, err
    assert "already cached" not in out
    assert f"{cached} does not match the expected sha256" in err and "downloading" in err
    assert calls == [small_vgg.url]
    assert cached.read_bytes() == GOOD
    del hashes[:]
    assert weights.verified_path(small_vgg) == cached
    assert hashes == [], "the download's digest is remembered: no second read"
    code, out, _ = run(capsys, "download", "vgg19")
    assert code == 0 and "already cached" in out and calls == [small_vgg.url]


def test_backbones_lists_a_damaged_file_and_auto_falls_back(capsys, small_vgg):
    cached = put_in_cache(small_vgg, WRONG)
    code, out, _ = run(capsys, "backbones")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("vgg19"))
    assert "damaged" in row
    auto = next(line for line in out.splitlines() if "auto ->" in line)
    assert "auto -> efficientnet-lite0" in auto and str(cached) in auto


def test_recommend_uses_the_remembered_check(small_vgg, hashes):
    put_in_cache(small_vgg, ZEROS)
    (gatys,) = rec.recommend(["quality"])
    assert hashes == [], "recommend never hashes"
    assert weights_available("vgg19") is False  # the check a run makes, remembered
    (gatys,) = rec.recommend(["quality"])
    assert "backbone now: efficientnet-lite0" in gatys.note
    assert "impasto download vgg19" in gatys.note


# ----------------------------------------------------------------------------- CLIP


@pytest.fixture
def small_clip(monkeypatch):
    def use(data: bytes) -> tuple[weights.WeightSpec, Path]:
        spec = replace(weights.CLIP_VIT_B32, size=len(data))
        spec = replace(spec, sha256=hashlib.sha256(data).hexdigest())
        monkeypatch.setattr(weights, "CLIP_VIT_B32", spec)
        monkeypatch.setattr(clip, "WEIGHTS", spec)
        return spec, put_in_cache(spec, data)

    return use


def test_a_damaged_cached_clip_file_is_one_line_and_never_loaded(
    capsys, tmp_path, photo, small_clip, loads
):
    spec, cached = small_clip(GOOD)
    cached.write_bytes(WRONG)
    code, _, err = run(capsys, "evaluate", photo, "--content", photo, "--style", photo,
                       "--metrics", "clip_style")  # fmt: skip
    assert code == 2
    line = one_error_line(err)
    assert str(cached) in line and "sha256" in line and "impasto download clip-vit-b32" in line
    assert loads == []


def test_a_good_cached_clip_file_loads_and_is_hashed_once(tmp_path, small_clip, loads, hashes):
    encoder = clip.CLIPImageEncoder(width=64, layers=1, patch=8, grid=2, output_dim=8, heads=1)
    state = {f"visual.{key}": value for key, value in encoder.state_dict().items()}
    scratch = tmp_path / "clip.pt"
    torch.save(state, scratch)
    _, cached = small_clip(scratch.read_bytes())
    clip.load_clip()
    clip.load_clip()
    assert loads == [cached, cached]
    assert hashes == [cached]


def test_download_offline_over_a_damaged_file_is_one_line_and_keeps_it(
    capsys, monkeypatch, small_vgg
):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    cached = put_in_cache(small_vgg, ZEROS)
    code, out, err = run(capsys, "download", "vgg19")
    assert code == 2 and "already cached" not in out
    line = one_error_line(err)
    assert str(cached) in line and "sha256" in line and "IMPASTO_OFFLINE" in line
    assert cached.read_bytes() == ZEROS
