"""What code running inside a workflow (or an adapter wrapping one) may ask about it.

(`current_engine`, which returns the `Engine` facade, lives in `_engine`.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ._context import current_context, pending_options
from ._management import to_step_info
from ._records import StepInfo
from .errors import StepOutsideWorkflow

__all__ = [
    "current_workflow_started_at",
    "execution_state",
    "pending_workflow_id",
    "recorded_steps",
]


def pending_workflow_id() -> str | None:
    """The id an enclosing `workflow_options(workflow_id=...)` gives the next workflow started here, if any."""
    options = pending_options()
    if options is None or options.workflow_id is None or options._id_used:
        return None
    return options.workflow_id


def current_workflow_started_at() -> datetime:
    """When the running workflow was first started (from its record, stable across recoveries)."""
    ctx = current_context()
    if ctx is None:
        raise StepOutsideWorkflow("current_workflow_started_at() must be called inside a durable workflow.")
    return datetime.fromtimestamp(ctx.created_at / 1000, tz=UTC)


def execution_state() -> dict[str, Any]:
    """A dict private to the running workflow execution, for integrations' replay-stable bookkeeping.

    Shared by every task and thread of the execution (`asyncio.gather` children, an event loop a
    sync body starts), and fresh on each execution of the workflow (recovery, resume, fork), so a
    counter kept in it numbers things the same way on every replay. Key it by your package name.
    """
    ctx = current_context()
    if ctx is None:
        raise StepOutsideWorkflow("execution_state() must be called inside a durable workflow.")
    return ctx.adapter_state


def recorded_steps() -> dict[int, StepInfo]:
    """The steps the running workflow had recorded when this execution started (empty on a first run).

    Served from memory: a recovering workflow loads its record once, at its start.
    """
    ctx = current_context()
    if ctx is None:
        raise StepOutsideWorkflow("recorded_steps() must be called inside a durable workflow.")
    return {step_id: to_step_info(ctx.engine, row) for step_id, row in ctx.recorded.items()}
