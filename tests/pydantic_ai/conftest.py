"""Adapter-specific fixtures; `engine` and `database_url` come from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic_ai import models


@pytest.fixture(autouse=True)
def _no_real_model_requests() -> Iterator[None]:
    """No test may reach a model provider; FunctionModel and TestModel are exempt."""
    previous = models.ALLOW_MODEL_REQUESTS
    models.ALLOW_MODEL_REQUESTS = False
    yield
    models.ALLOW_MODEL_REQUESTS = previous
