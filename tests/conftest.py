"""Shared fixtures. Every test runs offline: a guard turns any network connection into a failure."""

import importlib.util
import os
import socket

import pytest
import torch


class NetworkAccessError(BaseException):
    """Raised when a test tries to open a network connection.

    A BaseException (like KeyboardInterrupt) so that library code catching ``Exception``
    (e.g. a reachability probe) cannot swallow it and hide the attempt.
    """


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any test that tries to reach the network (downloads must never run in tests)."""

    def refuse(*args, **kwargs):
        raise NetworkAccessError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Point the weight cache at an empty folder so tests never see a user's real cache."""
    home = tmp_path_factory.mktemp("impasto_home")
    monkeypatch.setenv("IMPASTO_HOME", str(home))
    monkeypatch.delenv("IMPASTO_CLIP_WEIGHTS", raising=False)
    return home


@pytest.fixture
def one_thread(monkeypatch):
    """One torch thread: tiny convolutions are slower with several threads on a busy machine.

    OMP_NUM_THREADS also stops ``devices.configure_for_speed`` from raising the thread count.
    """
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(autouse=True, scope="session")
def tiny_diffusion_models(tmp_path_factory):
    """With the diffusion extra installed: tiny diffusion repositories in a Hugging Face cache
    of their own (HF_HUB_CACHE, inherited by the servers and commands tests start), so the
    diffusion method's defaults load them as they would load the real ones: every test that
    runs every method runs it too, offline and in seconds (tests/diffusion_tiny.py)."""
    if not all(importlib.util.find_spec(name) for name in ("diffusers", "transformers", "peft")):
        yield None
        return
    from diffusion_tiny import build_tiny_repos, install_in_hub_cache

    repos = build_tiny_repos(tmp_path_factory.mktemp("tiny-diffusion"))
    cache = install_in_hub_cache(repos, tmp_path_factory.mktemp("hf-hub-cache"))
    saved = {name: os.environ.get(name) for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE")}
    os.environ.update({"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"})
    yield repos
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
