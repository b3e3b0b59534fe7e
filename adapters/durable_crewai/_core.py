"""The few durable_core internals the adapter reads, in one place.

Public durable_core covers steps and workflows; the adapter also needs to know whether the
user already named the next workflow (`workflow_options(workflow_id=...)`), and what the
running workflow has on record (to skip completed tasks outright).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from durable_core import Engine
from durable_core._context import current_context, pending_options

__all__ = ["explicit_workflow_id", "recorded_steps"]


def explicit_workflow_id() -> str | None:
    """The id an enclosing `workflow_options(workflow_id=...)` gives the next workflow started, if any."""
    options = pending_options()
    if options is None or options.workflow_id is None or options._id_used:
        return None
    return options.workflow_id


def recorded_steps(workflow_id: str) -> Iterator[tuple[str, Any]]:
    """(name, decoded output) of the running workflow's recorded steps, in step order.

    Empty for a workflow that has just been created; read once per resumed kickoff.
    """
    ctx = current_context()
    if ctx is None or not ctx.recorded:
        return iter(())
    engine: Engine = ctx.engine
    steps = engine.list_steps(workflow_id)
    return iter([(info.name, info.output) for info in sorted(steps, key=lambda info: info.step_id)])
