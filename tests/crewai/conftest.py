"""CrewAI adapter fixtures: offline CrewAI settings, a network guard, a fresh call log.

`engine` and `database_url` come from tests/conftest.py (SQLite and PostgreSQL).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_core import Engine

os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
os.environ["OTEL_SDK_DISABLED"] = "true"
os.environ["CREWAI_TRACING_ENABLED"] = "false"
os.environ["CREWAI_TESTING"] = "true"

sys.path.insert(0, str(Path(__file__).parent))  # crewai_support, also for the crash subprocesses

_spec = importlib.util.find_spec("durable_crewai")
if _spec is None or _spec.origin is None:  # an editable install made before the package had files
    sys.path.insert(0, str(Path(__file__).parents[2] / "adapters"))

_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def _crewai_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CrewAI writes its own SQLite files (task outputs log); keep them out of the user's data dir."""
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path / "crewai"))


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail any connection that is not to the local database (no model provider, no telemetry)."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in _LOCAL_HOSTS:
            attempts.append(address)
            raise ConnectionRefusedError(f"network access blocked in CrewAI tests: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield attempts
    assert not attempts, f"a CrewAI test tried to reach the network: {attempts}"


@pytest.fixture(autouse=True)
def call_log() -> Iterator[list[str]]:
    """The in-process log of scripted LLM and tool calls, emptied for each test."""
    import crewai_support

    crewai_support.CALLS.clear()
    yield crewai_support.CALLS
    crewai_support.CALLS.clear()


def pytest_configure(config: pytest.Config) -> None:
    # CrewAI warns about its own deprecated fields while it runs; those are not ours to fix.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:crewai.*")


@pytest.fixture
def relaunch(database_url: str) -> Iterator[Callable[[], Engine]]:
    """Launch a fresh Engine on the test database, shutting the previous one down first."""
    launched: list[Engine] = []

    def _relaunch() -> Engine:
        for engine in launched:
            engine.shutdown()
        engine = Engine(database_url, executor_id="crewai-tests", heartbeat_seconds=0.5, lease_seconds=5.0)
        launched.append(engine.launch())
        return engine

    yield _relaunch
    for engine in launched:
        engine.shutdown()
    from crewai_support import RAISE_IN_TOOL

    RAISE_IN_TOOL.clear()
