"""Rows for the storage conformance suites (imported by their modules and conftest)."""

from __future__ import annotations

from typing import Any

__all__ = ["workflow_values"]


def workflow_values(workflow_id: str, **overrides: Any) -> dict[str, Any]:
    """Every column a new workflow row needs (PENDING, owned by "exec-a" at epoch 0)."""
    values: dict[str, Any] = {
        "workflow_id": workflow_id,
        "name": "wf",
        "status": "PENDING",
        "serialization": "json",
        "created_at": 1_000,
        "updated_at": 1_000,
        "executor_id": "exec-a",
        "app_version": "v1",
        "recovery_attempts": 0,
        "priority": 0,
    }
    values.update(overrides)
    return values
