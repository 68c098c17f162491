"""Shared test set-up: no test may open a network socket (loopback and Unix sockets are allowed)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see dendrobench.cli.main.main
TESTS = Path(__file__).parent
if str(TESTS) not in sys.path:  # test-only tasks by import path, e.g. toy_task:SpiralTask
    sys.path.insert(0, str(TESTS))

_LOCAL = ("127.", "::1", "localhost", "0.0.0.0")


class NetworkAccessError(RuntimeError):
    pass


def _guard(original):
    def connect(self, address, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]) if isinstance(address, tuple) else str(address)
            if not host.startswith(_LOCAL):
                raise NetworkAccessError(f"test tried to open a network connection to {address!r}")
        return original(self, address, *args, **kwargs)

    return connect


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test that uses pytest-benchmark is a benchmark: skipped by default, run with -m benchmark."""
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.benchmark)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guard(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guard(socket.socket.connect_ex))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A private DENDROBENCH_CACHE and no download attempts: a task test sees only its own files."""
    monkeypatch.setenv("DENDROBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DENDROBENCH_OFFLINE", "1")
    return tmp_path / "cache"


@pytest.fixture
def cli_env(tmp_path):
    """Environment for running the console script in a subprocess: test tasks importable, no bars."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["CI"] = "1"
    env["HF_DATASETS_OFFLINE"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    return env
