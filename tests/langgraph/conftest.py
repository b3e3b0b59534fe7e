"""Adapter-specific fixtures; `engine` and `database_url` come from tests/conftest.py."""

from __future__ import annotations

import pytest
from durable_langgraph import DurableCheckpointer

from durable_core import Engine


@pytest.fixture
def saver(engine: Engine) -> DurableCheckpointer:
    """A DurableCheckpointer on the launched test engine (fresh database per test)."""
    return DurableCheckpointer(engine)
