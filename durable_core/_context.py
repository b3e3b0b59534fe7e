"""Context variables for the running workflow, the step in progress and pending start options."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._options import WorkflowOptions
    from ._runtime import WorkflowContext

__all__ = ["current_context", "in_step", "in_workflow", "pending_options"]

_current: ContextVar[WorkflowContext | None] = ContextVar("durable_workflow", default=None)
_in_step: ContextVar[bool] = ContextVar("durable_in_step", default=False)
_options: ContextVar[WorkflowOptions | None] = ContextVar("durable_options", default=None)


def current_context() -> WorkflowContext | None:
    """The running workflow's context, or None outside workflows (and inside a step body)."""
    if _in_step.get():
        return None
    return _current.get()


def in_workflow() -> bool:
    """True inside a running durable workflow (outside any step body)."""
    return current_context() is not None


def in_step() -> bool:
    return _in_step.get()


def pending_options() -> WorkflowOptions | None:
    return _options.get()
