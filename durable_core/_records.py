"""Public records: `WorkflowStatus` and `StepInfo`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["StepInfo", "WaitInfo", "WorkflowStatus"]


@dataclass(frozen=True, kw_only=True)
class WaitInfo:
    """What a waiting workflow is blocked on: a topic (``"recv:<topic>"``, ``"sleep"``,
    ``"event:<workflow>:<key>"``) and the deadline in epoch milliseconds (None: no deadline)."""

    topic: str
    deadline: int | None


@dataclass(frozen=True, kw_only=True)
class WorkflowStatus:
    """One workflow as recorded. Timestamps are epoch milliseconds.

    `inputs` is ``{"args": [...], "kwargs": {...}}``; `output` and `inputs` are decoded by the
    workflow's annotations when its code is registered in this process, else plain JSON.
    """

    workflow_id: str
    name: str
    status: str
    inputs: Any
    output: Any
    error: BaseException | None
    created_at: int
    updated_at: int
    queue_name: str | None
    executor_id: str | None
    app_version: str
    recovery_attempts: int
    parent_workflow_id: str | None
    forked_from: str | None
    waiting: WaitInfo | None
    priority: int = 0
    deadline_at: int | None = None
    started_at: int | None = None
    deduplication_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class StepInfo:
    """One recorded step. `output` is decoded JSON (or the pickled value); `error` the rebuilt exception."""

    step_id: int
    name: str
    output: Any
    error: BaseException | None
    child_workflow_id: str | None
    started_at: int | None
    completed_at: int | None
