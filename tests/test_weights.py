"""Tests for impasto.weights: cache location, offline mode, verified downloads, safe loading.

No test touches the network: downloads go through a fake ``urlopen`` serving bytes from memory,
and the expected sha256 of those bytes is computed here with hashlib, independently of the code.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import platformdirs
import pytest
import torch

from impasto import weights
from impasto.errors import Cancelled, WeightsError
from impasto.weights import VGG19, WeightSpec

PAYLOAD = bytes(range(256)) * 40  # 10 240 bytes, served in small pieces below
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
PIECE = 1000  # bytes per read(): several progress calls for one small payload

FAKE = WeightSpec(
    name="fake",
    url="https://example.invalid/models/fake-0123.pth",
    sha256=PAYLOAD_SHA,
    size=len(PAYLOAD),
    filename="fake-0123.pth",
    license="CC0-1.0",
    source="bytes made up by the test suite",
)


@pytest.fixture(autouse=True)
def online(monkeypatch):
    """Start each test with offline mode off, whatever the developer's shell says."""
    monkeypatch.delenv("IMPASTO_OFFLINE", raising=False)


class FakeResponse:
    """Serves ``data`` in pieces; optionally raises ``error`` once ``fail_after`` bytes are out."""

    def __init__(self, data=PAYLOAD, *, headers=None, fail_after=None, error=None, on_fail=None):
        self.data = data
        self.pos = 0
        self.headers = {"Content-Length": str(len(data))} if headers is None else headers
        self.fail_after = fail_after
        self.error = error
        self.on_fail = on_fail
        self.status = 200
        self.closed = False

    def read(self, n=-1):
        if self.fail_after is not None and self.pos >= self.fail_after:
            if self.on_fail is not None:
                self.on_fail()
            raise self.error
        n = PIECE if n is None or n < 0 else min(n, PIECE)
        block = self.data[self.pos : self.pos + n]
        self.pos += len(block)
        return block

    def close(self):
        self.closed = True


class FakeUrlopen:
    """Records each call and returns ``response`` (or raises ``error``)."""

    def __init__(self, response=None, error=None):
        self.response = FakeResponse() if response is None and error is None else response
        self.error = error
        self.calls = []

    def __call__(self, request, timeout=None):
        self.calls.append((request, timeout))
        if self.error is not None:
            raise self.error
        return self.response


def refusing_urlopen(calls):
    """An urlopen that records and fails loudly: for code paths that must not download."""

    def urlopen(request, timeout=None):
        calls.append(request)
        raise AssertionError("urlopen must not be called here")

    return urlopen


def cache_entries() -> list[str]:
    """Every name in the weights folder, hidden .part files included (not the record of checked
    digests, which a successful download writes)."""
    folder = weights.weights_dir()
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name != weights.VERIFIED_RECORD)


# --- locations and environment ---------------------------------------------------------------


def test_home_dir_honours_impasto_home(monkeypatch, tmp_path):
    monkeypatch.setenv("IMPASTO_HOME", str(tmp_path / "custom"))
    assert weights.home_dir() == tmp_path / "custom"
    assert weights.weights_dir() == tmp_path / "custom" / "weights"
    assert not (tmp_path / "custom").exists(), "home_dir() must not create anything"


def test_home_dir_defaults_to_user_cache(monkeypatch):
    monkeypatch.delenv("IMPASTO_HOME", raising=False)
    assert weights.home_dir() == Path(platformdirs.user_cache_dir("impasto"))


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "Yes", "on", " on "])
def test_is_offline_true_values(monkeypatch, value):
    monkeypatch.setenv("IMPASTO_OFFLINE", value)
    assert weights.is_offline() is True


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "2", "offline"])
def test_is_offline_false_values(monkeypatch, value):
    monkeypatch.setenv("IMPASTO_OFFLINE", value)
    assert weights.is_offline() is False


def test_is_offline_unset():
    assert weights.is_offline() is False


# --- hashing and verification ----------------------------------------------------------------


def test_sha256_of_matches_hashlib_for_any_chunk(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(PAYLOAD)
    assert weights.sha256_of(path) == PAYLOAD_SHA
    assert weights.sha256_of(path, chunk=7) == PAYLOAD_SHA


def test_verify_accepts_good_and_rejects_bad_file(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(PAYLOAD)
    weights.verify(path, FAKE)
    path.write_bytes(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(WeightsError) as info:
        weights.verify(path, FAKE)
    message = str(info.value)
    assert "blob.bin" in message and PAYLOAD_SHA in message
    assert hashlib.sha256(path.read_bytes()).hexdigest() in message


def test_vgg19_spec_is_well_formed():
    assert len(VGG19.sha256) == 64 and int(VGG19.sha256, 16) >= 0
    assert VGG19.sha256.startswith(VGG19.filename.split("-")[1].split(".")[0])
    assert VGG19.url.endswith("/" + VGG19.filename)


# --- download --------------------------------------------------------------------------------


def test_download_success_then_cache_hit(monkeypatch):
    fake = FakeUrlopen()
    seen = []
    path = weights.download(
        FAKE, progress=lambda done, total: seen.append((done, total)), urlopen=fake
    )

    assert path == weights.weights_dir() / FAKE.filename
    assert path.read_bytes() == PAYLOAD
    assert cache_entries() == [FAKE.filename], "no temporary files may be left behind"
    assert len(fake.calls) == 1
    request, timeout = fake.calls[0]
    assert request.full_url == FAKE.url and request.get_method() == "GET"
    assert timeout == 30.0
    assert fake.response.closed

    counts = [done for done, _ in seen]
    assert len(seen) > 3
    assert all(b > a for a, b in zip(counts, counts[1:], strict=False)), counts
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert {total for _, total in seen} == {len(PAYLOAD)}

    assert weights.cached_path(FAKE) == path
    calls = []
    monkeypatch.setattr(urllib.request, "urlopen", refusing_urlopen(calls))
    assert weights.ensure(FAKE) == path
    assert calls == []


def test_download_without_content_length_uses_spec_size():
    fake = FakeUrlopen(FakeResponse(headers={}))
    seen = []
    weights.download(FAKE, progress=lambda done, total: seen.append((done, total)), urlopen=fake)
    assert seen[-1] == (len(PAYLOAD), FAKE.size)


def test_cached_path_rejects_wrong_size():
    assert weights.cached_path(FAKE) is None
    weights.weights_dir().mkdir(parents=True)
    (weights.weights_dir() / FAKE.filename).write_bytes(PAYLOAD[:-10])
    assert weights.cached_path(FAKE) is None


def test_checksum_mismatch_leaves_nothing():
    wrong = replace(FAKE, sha256=hashlib.sha256(b"something else").hexdigest())
    with pytest.raises(WeightsError) as info:
        weights.download(wrong, urlopen=FakeUrlopen())
    message = str(info.value)
    assert "checksum mismatch" in message
    assert wrong.sha256 in message and PAYLOAD_SHA in message
    assert cache_entries() == []


def test_short_stream_leaves_nothing():
    with pytest.raises(WeightsError, match="size mismatch"):
        weights.download(FAKE, urlopen=FakeUrlopen(FakeResponse(PAYLOAD[:-1], headers={})))
    assert cache_entries() == []


def test_overlong_stream_is_cut_off_early():
    """A server sending more than spec.size must be stopped, not read to the end."""
    endless = FakeResponse(
        PAYLOAD * 100,
        headers={},
        fail_after=len(PAYLOAD) + 2 * PIECE,
        error=AssertionError("kept reading past spec.size"),
    )
    with pytest.raises(WeightsError, match="size mismatch"):
        weights.download(FAKE, urlopen=FakeUrlopen(endless))
    assert cache_entries() == []


def test_wrong_content_length_fails_before_reading():
    response = FakeResponse(PAYLOAD + b"extra")
    with pytest.raises(WeightsError, match="size mismatch"):
        weights.download(FAKE, urlopen=FakeUrlopen(response))
    assert response.pos == 0 and response.closed
    assert cache_entries() == []


def test_urlerror_becomes_weights_error():
    fake = FakeUrlopen(error=urllib.error.URLError("Name or service not known"))
    with pytest.raises(WeightsError) as info:
        weights.download(FAKE, urlopen=fake)
    message = str(info.value)
    assert FAKE.url in message and "Name or service not known" in message
    assert "--weights PATH" in message
    assert isinstance(info.value.__cause__, urllib.error.URLError)
    assert cache_entries() == []


def test_http_error_becomes_weights_error():
    error = urllib.error.HTTPError(FAKE.url, 404, "Not Found", {}, None)
    with pytest.raises(WeightsError, match="HTTP 404"):
        weights.download(FAKE, urlopen=FakeUrlopen(error=error))
    assert cache_entries() == []


def interrupted(error):
    """A response that fails halfway, after checking that a .part file was being written."""
    seen_part = []

    def check_part_exists():
        seen_part.extend(n for n in cache_entries() if n.endswith(".part"))

    return FakeResponse(
        fail_after=len(PAYLOAD) // 2, error=error, on_fail=check_part_exists
    ), seen_part


@pytest.mark.parametrize(
    "error, expected",
    [
        (ConnectionResetError("connection reset by peer"), WeightsError),
        (TimeoutError("timed out"), WeightsError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
    ids=["reset", "timeout", "ctrl-c"],
)
def test_failure_halfway_leaves_nothing(error, expected):
    response, seen_part = interrupted(error)
    with pytest.raises(expected) as info:
        weights.download(FAKE, urlopen=FakeUrlopen(response))
    assert type(info.value) is expected  # KeyboardInterrupt is re-raised as is, not wrapped
    assert len(seen_part) == 1 and seen_part[0].startswith(f".{FAKE.filename}.")
    assert cache_entries() == []
    assert response.closed


def test_timeout_is_named_in_message():
    response, _ = interrupted(TimeoutError("timed out"))
    with pytest.raises(WeightsError, match="timed out after 5 s"):
        weights.download(FAKE, urlopen=FakeUrlopen(response), timeout=5.0)


def test_progress_callback_can_cancel():
    def cancel(done, total):
        if done > 0:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        weights.download(FAKE, progress=cancel, urlopen=FakeUrlopen())
    assert cache_entries() == []


# --- offline mode and ensure -----------------------------------------------------------------


def test_offline_never_calls_urlopen(monkeypatch):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    fake = FakeUrlopen()
    with pytest.raises(WeightsError, match="IMPASTO_OFFLINE"):
        weights.download(FAKE, urlopen=fake)
    assert weights.reachable(FAKE, urlopen=fake) is False

    calls = []
    monkeypatch.setattr(urllib.request, "urlopen", refusing_urlopen(calls))
    with pytest.raises(WeightsError) as info:
        weights.ensure(FAKE)
    assert "IMPASTO_OFFLINE" in str(info.value) and "impasto download fake" in str(info.value)
    assert fake.calls == [] and calls == []
    assert not weights.weights_dir().exists()


def test_ensure_without_download_says_how_to_get_weights(monkeypatch):
    calls = []
    monkeypatch.setattr(urllib.request, "urlopen", refusing_urlopen(calls))
    with pytest.raises(WeightsError) as info:
        weights.ensure(VGG19, allow_download=False)
    message = str(info.value)
    assert "impasto download vgg19" in message and "--weights PATH" in message
    assert calls == []


def test_ensure_downloads_when_missing(monkeypatch):
    fake = FakeUrlopen()
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    path = weights.ensure(FAKE)
    assert path.read_bytes() == PAYLOAD and len(fake.calls) == 1


def test_reachable_uses_head_and_swallows_errors():
    fake = FakeUrlopen(FakeResponse())
    assert weights.reachable(FAKE, timeout=1.5, urlopen=fake) is True
    request, timeout = fake.calls[0]
    assert request.get_method() == "HEAD" and timeout == 1.5

    failing = FakeUrlopen(error=urllib.error.URLError("unreachable"))
    assert weights.reachable(FAKE, urlopen=failing) is False
    server_error = FakeResponse()
    server_error.status = 503
    assert weights.reachable(FAKE, urlopen=FakeUrlopen(server_error)) is False


def exception_chain(error):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def test_network_guard_stops_real_download():
    """The conftest guard must make a real download fail at once (not hang, not download)."""
    from conftest import NetworkAccessError

    with pytest.raises((WeightsError, NetworkAccessError)) as info:
        weights.download(VGG19, timeout=2.0)
    names = [type(e).__name__ for e in exception_chain(info.value)]
    assert "NetworkAccessError" in names, names
    assert cache_entries() == []


def test_reachable_cannot_swallow_the_network_guard():
    """The guard is a BaseException, so even a probe that catches Exception cannot hide it."""
    from conftest import NetworkAccessError

    with pytest.raises(NetworkAccessError):
        weights.reachable(VGG19, timeout=1.0)


def test_reachable_is_false_when_the_request_fails():
    def failing_urlopen(request, timeout):
        raise OSError("no route to host")

    assert weights.reachable(VGG19, timeout=1.0, urlopen=failing_urlopen) is False


# --- loading ---------------------------------------------------------------------------------


def tiny_state():
    return {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.arange(4.0)}


def assert_same_state(loaded, expected):
    assert set(loaded) == set(expected)
    for key, tensor in expected.items():
        assert torch.equal(loaded[key], tensor), key
        assert loaded[key].device.type == "cpu"


def test_load_state_dict_torch_round_trip(tmp_path):
    state = tiny_state()
    torch.save(state, tmp_path / "tiny.pth")
    assert_same_state(weights.load_state_dict(tmp_path / "tiny.pth"), state)


def test_load_state_dict_safetensors_round_trip(tmp_path):
    from safetensors.torch import save_file

    state = tiny_state()
    save_file(state, str(tmp_path / "tiny.safetensors"))
    assert_same_state(weights.load_state_dict(tmp_path / "tiny.safetensors"), state)


@pytest.mark.parametrize("name", ["junk.pth", "junk.safetensors"])
def test_load_state_dict_garbage(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not a weights file at all" * 10)
    with pytest.raises(WeightsError, match="not a weights file or corrupt") as info:
        weights.load_state_dict(tmp_path / name)
    assert name in str(info.value)


def test_load_state_dict_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="nope.pth"):
        weights.load_state_dict(tmp_path / "nope.pth")


UNPICKLED = []


def _record_unpickle():
    UNPICKLED.append(True)
    return "payload ran"


class Sneaky:
    """Unpickling this runs _record_unpickle: weights_only must refuse before that happens."""

    def __reduce__(self):
        return (_record_unpickle, ())


def test_load_state_dict_refuses_arbitrary_pickles(tmp_path):
    path = tmp_path / "sneaky.pth"
    torch.save({"conv.weight": torch.zeros(1), "extra": Sneaky()}, path)
    UNPICKLED.clear()
    with pytest.raises(WeightsError, match="sneaky.pth"):
        weights.load_state_dict(path)
    assert UNPICKLED == [], "weights_only loading must not execute pickled code"


def test_load_state_dict_refuses_non_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2), torch.ones(2)], path)
    with pytest.raises(WeightsError, match="list.pth"):
        weights.load_state_dict(path)


def test_a_download_sweeps_the_part_file_of_a_killed_download_and_only_that():
    folder = weights.weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is now free: a download it had started can never finish
    stale = folder / f".{FAKE.filename}.{dead.pid}.abcd_123.part"
    alive = folder / f".{FAKE.filename}.{os.getppid()}.defg_456.part"  # a live process's
    other = folder / f".other.bin.{dead.pid}.abcd_123.part"  # another file's
    for path in (stale, alive, other):
        path.write_bytes(b"half")
    weights.download(FAKE, urlopen=FakeUrlopen())
    assert not stale.exists()
    assert alive.exists() and other.exists()
