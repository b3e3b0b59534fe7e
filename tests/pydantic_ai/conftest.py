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
def _result_shortcut_is_sound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wherever `encode_result` skips the full JSON read-back, the read-back finds the same fixes.

    Every adapter test checks the shortcut against the full round trip, so a value the conservative
    check let through, or a pydantic-ai release that makes a listed field lossy, fails a test.
    """
    shortcut = _inputs._shortcut_fixes  # pyright: ignore[reportPrivateUsage]

    def checked(
        result: AgentRunResult[Any], data: dict[str, Any], output_type: object
    ) -> list[list[Any]] | None:
        fixes = shortcut(result, data, output_type)
        if fixes is None:
            return None
        adapter = _inputs._result_adapter(output_type)  # pyright: ignore[reportPrivateUsage]
        loaded = adapter.validate_python(_inputs._ANY_RESULT.dump_python(result, mode="json"))  # pyright: ignore[reportPrivateUsage]
        live_parts = {"output": result.output, "messages": result.all_messages()}
        loaded_parts = {"output": loaded.output, "messages": loaded.all_messages()}
        assert fixes == find_fixes(live_parts, loaded_parts), (
            "the result shortcut found other fixes than the read-back"
        )
        assert live_parts["messages"] == loaded_parts["messages"]
        return fixes

    monkeypatch.setattr(_inputs, "_shortcut_fixes", checked)
