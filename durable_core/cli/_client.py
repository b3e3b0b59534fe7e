"""Open an `Engine` for management from a process that has no workflow code.

The CLI and the dashboard inspect and steer workflows that run elsewhere. They must never
resume or claim those workflows themselves: they could not run them (the code is absent) and
a claim would strand them until the claimer's lease expires. `Engine.connect()` is that mode
when the core provides it; until then the engine is launched under an application version
that no workflow has, so recovery matches nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Generator
from contextlib import contextmanager

from .._engine import Engine

__all__ = ["CLIENT_APP_VERSION", "client_engine", "open_engine"]

CLIENT_APP_VERSION = "durable-cli-client"


def open_engine(database_url: str | None) -> Engine:
    """A connected engine for management calls (migrations run, nothing is recovered here)."""
    connect = getattr(Engine, "connect", None)
    if connect is not None:
        engine = Engine(database_url)
        connect(engine)
        return engine
    engine = Engine(
        database_url,
        app_version=CLIENT_APP_VERSION,
        executor_id=f"durable-cli:{socket.gethostname()}:{os.getpid()}",
        # The client never runs workflows, so nobody needs to see it alive often.
        heartbeat_seconds=30.0,
        lease_seconds=60.0,
    )
    engine.launch()
    return engine


@contextmanager
def client_engine(database_url: str | None) -> Generator[Engine]:
    engine = open_engine(database_url)
    try:
        yield engine
    finally:
        engine.shutdown()
