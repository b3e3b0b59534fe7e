"""The few durable_core internals the adapter reads, in one place.

Public durable_core covers steps and workflows; the adapter also needs to know whether the
user already named the next workflow (`workflow_options(workflow_id=...)`), and what the
running workflow has on record (to skip completed tasks outright).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from durable_core import Budget, Engine, workflow_options
from durable_core._context import current_context, pending_options

__all__ = ["explicit_workflow_id", "kickoff_options", "recorded_steps"]


def explicit_workflow_id() -> str | None:
    """The id an enclosing `workflow_options(workflow_id=...)` gives the next workflow started, if any."""
    options = pending_options()
    if options is None or options.workflow_id is None or options._id_used:
        return None
    return options.workflow_id


def kickoff_options(workflow_id: str | None, budget: Budget | None) -> AbstractContextManager[Any]:
    """The `workflow_options` a kickoff starts under: its id, and the caller's budget or `budget`.

    A kickoff started inside a workflow that has a budget is governed by that budget instead.
    `workflow_id` None: the caller's own `workflow_options(workflow_id=...)` names the kickoff;
    it gets `budget` unless the caller's block sets one. Else a nested block (which would not
    inherit the caller's budget) takes over the caller's pending budget, consuming it as the
    workflow start would have.
    """
    options = pending_options()
    enclosing = current_context()
    if enclosing is not None and enclosing.budget_owner is not None:
        budget = None  # kicked off inside a workflow under a budget: that budget governs this kickoff
    if workflow_id is None:
        if budget is not None and options is not None and options.budget is None:
            options.budget = budget  # consumed by the start, like a budget the caller set
        return nullcontext()
    if options is not None and options.budget is not None:
        budget, options.budget = options.budget, None
    return workflow_options(workflow_id=workflow_id, budget=budget)


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
