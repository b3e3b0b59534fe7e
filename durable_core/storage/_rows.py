"""Plain records returned by the storage modules."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StepRow", "WorkflowRow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowRow:
    workflow_id: str
    name: str
    status: str
    inputs: str | None
    output: str | None
    error: str | None
    serialization: str
    created_at: int
    updated_at: int
    started_at: int | None
    queue_name: str | None
    executor_id: str | None
    app_version: str
    recovery_attempts: int
    parent_workflow_id: str | None
    forked_from: str | None
    timeout_ms: int | None
    deadline_at: int | None
    priority: int
    deduplication_id: str | None
    wait_topic: str | None
    wait_deadline: int | None
    wait_step: int | None
    trace_context: str | None
    owner_epoch: int = 0
    budget: str | None = None
    budget_owner: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRow:
    workflow_id: str
    step_id: int
    name: str
    output: str | None
    error: str | None
    serialization: str
    child_workflow_id: str | None
    started_at: int | None
    completed_at: int | None
    usage: str | None = None
