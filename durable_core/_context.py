"""Context variables for the running workflow, the step in progress and pending start options."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from ._options import _options, pending_options
from ._registry import StepDef
from ._run import WorkflowRun

StepInterceptor = Callable[["StepDef", tuple[Any, ...], dict[str, Any]], Any]

__all__ = [
    "_options",
    "current_context",
    "in_step",
    "in_workflow",
    "pending_options",
    "reset_step_interceptor",
    "set_step_interceptor",
]

_current: ContextVar[WorkflowRun | None] = ContextVar("durable_workflow", default=None)
_in_step: ContextVar[bool] = ContextVar("durable_in_step", default=False)
_interceptor: ContextVar[StepInterceptor | None] = ContextVar("durable_step_interceptor", default=None)


def set_step_interceptor(interceptor: StepInterceptor | None) -> Token[StepInterceptor | None]:
    """Route every @step call in this context to `interceptor(defn, args, kwargs)` instead.

    Adapters use it where the workflow's step sequence is the wrong key (LangGraph memoizes step
    calls per node task). For async steps the interceptor returns an awaitable.
    """
    return _interceptor.set(interceptor)


def reset_step_interceptor(token: Token[StepInterceptor | None]) -> None:
    _interceptor.reset(token)


def current_context() -> WorkflowRun | None:
    """The running workflow's context, or None outside workflows (and inside a step body)."""
    if _in_step.get():
        return None
    return _current.get()


def in_workflow() -> bool:
    """True inside a running durable workflow (outside any step body)."""
    return current_context() is not None


def in_step() -> bool:
    return _in_step.get()
