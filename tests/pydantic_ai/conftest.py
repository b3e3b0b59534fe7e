"""Adapter-specific fixtures; `engine` and `database_url` come from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from durable_pydantic_ai import _inputs
from durable_pydantic_ai._codec import find_fixes
from pydantic_ai import models
from pydantic_ai.run import AgentRunResult


@pytest.fixture(autouse=True)
def _no_real_model_requests() -> Iterator[None]:
    """No test may reach a model provider; FunctionModel and TestModel are exempt."""
    previous = models.ALLOW_MODEL_REQUESTS
    models.ALLOW_MODEL_REQUESTS = False
    yield
    models.ALLOW_MODEL_REQUESTS = previous


@pytest.fixture(autouse=True)
def _plain_result_shortcut_is_sound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wherever `encode_result` skips the JSON read-back, the read-back would have found nothing.

    Every adapter test checks the shortcut against the full round trip, so a value the conservative
    check let through, or a pydantic-ai release that makes a listed field lossy, fails a test.
    """
    plain = _inputs._is_plain_result  # pyright: ignore[reportPrivateUsage]

    def checked(result: AgentRunResult[Any], output_type: object) -> bool:
        if not plain(result, output_type):
            return False
        adapter = _inputs._result_adapter(output_type)  # pyright: ignore[reportPrivateUsage]
        loaded = adapter.validate_python(_inputs._ANY_RESULT.dump_python(result, mode="json"))  # pyright: ignore[reportPrivateUsage]
        live_parts = {"output": result.output, "messages": result.all_messages()}
        loaded_parts = {"output": loaded.output, "messages": loaded.all_messages()}
        fixes = find_fixes(live_parts, loaded_parts)
        assert fixes == [], f"the plain-result shortcut skipped values JSON loses: {fixes}"
        assert live_parts == loaded_parts
        return True

    monkeypatch.setattr(_inputs, "_is_plain_result", checked)
