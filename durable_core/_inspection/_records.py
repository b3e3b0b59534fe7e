"""Workflow and step records as plain JSON-native dicts (``--json``, the dashboard's API)."""

from __future__ import annotations

from typing import Any

from .. import Engine, StepInfo, WorkflowStatus
from ._usage import budget_limit, raise_command, usage_dict
from ._values import error_dict, iso_ms, jsonable
from ._waits import answer_command, describe_wait

__all__ = ["show_workflow", "step_dict", "workflow_dict"]


def show_workflow(engine: Engine, workflow_id: str) -> tuple[WorkflowStatus, list[StepInfo]]:
    """A workflow and its recorded steps.

    Raises:
        WorkflowNotFoundError: no workflow has this id.
    """
    return engine.get_workflow_status(workflow_id), engine.list_steps(workflow_id)


def workflow_dict(status: WorkflowStatus, database_option: str = "") -> dict[str, Any]:
    """Every field of a workflow record, JSON-native; times as epoch ms plus ISO text. The
    commands in ``waiting`` (``answer_with``, ``raise_with``) end with `database_option`."""
    waiting = None
    if status.waiting is not None:
        waiting = {
            "kind": status.waiting.kind,
            "topic": status.waiting.topic,
            "detail": status.waiting.detail,
            "deadline": status.waiting.deadline,
            "deadline_iso": iso_ms(status.waiting.deadline),
            "description": describe_wait(status.waiting),
            "answer_with": answer_command(
                status.workflow_id, status.waiting, database_option=database_option
            ),
        }
        if status.waiting.kind == "budget":  # not answered by a message: its budget is raised
            waiting["budget_limit"] = budget_limit(status.waiting)
            waiting["raise_with"] = raise_command(status.workflow_id, status.waiting, database_option)
    usage = usage_dict(status.usage)
    return {
        "workflow_id": status.workflow_id,
        "name": status.name,
        "status": status.status,
        "inputs": jsonable(status.inputs),
        "output": jsonable(status.output),
        "error": error_dict(status.error),
        "created_at": status.created_at,
        "created_at_iso": iso_ms(status.created_at),
        "updated_at": status.updated_at,
        "updated_at_iso": iso_ms(status.updated_at),
        "started_at": status.started_at,
        "queue_name": status.queue_name,
        "executor_id": status.executor_id,
        "app_version": status.app_version,
        "recovery_attempts": status.recovery_attempts,
        "parent_workflow_id": status.parent_workflow_id,
        "forked_from": status.forked_from,
        "stranded": status.stranded,
        "waiting": waiting,
        "priority": status.priority,
        "deadline_at": status.deadline_at,
        "deduplication_id": status.deduplication_id,
        # the workflow's and its descendants' model calls (None: no model call recorded)
        "tokens": None if usage is None else usage["tokens"],
        "cost_usd": None if usage is None else usage["cost_usd"],
        "usage": usage,
    }


def step_dict(step: StepInfo) -> dict[str, Any]:
    """Every field of a recorded step, JSON-native."""
    return {
        "step_id": step.step_id,
        "name": step.name,
        "status": "ERROR" if step.error is not None else "OK",
        "output": jsonable(step.output),
        "error": error_dict(step.error),
        "child_workflow_id": step.child_workflow_id,
        "started_at": step.started_at,
        "completed_at": step.completed_at,
        "duration_ms": None
        if step.started_at is None or step.completed_at is None
        else step.completed_at - step.started_at,
    }
