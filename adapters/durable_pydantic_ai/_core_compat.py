"""The adapter's few reads of `durable_core` workflow state, kept in one place."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from durable_core import (
    current_workflow_id,
    current_workflow_started_at,
    pending_workflow_id,
    recv_async,
    set_event_async,
    workflow_options,
)

__all__ = [
    "current_workflow_id",
    "recv_async",
    "set_event_async",
    "steps_inline",
    "workflow_id_scope",
    "workflow_started_at",
]


def _enclosing_options() -> dict[str, Any]:
    """Timeout, priority and deduplication id of an enclosing `workflow_options` block, to keep them.

    A nested `workflow_options` replaces the enclosing one, so DurableAgent re-states them when it
    names the workflow. (Requested from the core: nested blocks inheriting unset fields.)
    """
    try:
        from durable_core._context import pending_options
    except ImportError:  # pragma: no cover - a core that moved it
        return {}
    options = pending_options()
    if options is None:
        return {}
    return {
        "timeout_seconds": options.timeout_seconds,
        "deduplication_id": options.deduplication_id,
        "priority": options.priority,
    }


@contextmanager
def workflow_id_scope(workflow_id: str) -> Generator[None]:
    """Name the next workflow `workflow_id` unless an enclosing `workflow_options` already names it.

    Implements DESIGN's precedence: `workflow_options(workflow_id=...)` > `run_id` > a new id.
    """
    if pending_workflow_id() is not None:
        yield
        return
    with workflow_options(workflow_id=workflow_id, **_enclosing_options()):
        yield


def workflow_started_at() -> datetime:
    """When the running workflow was first started, from its record (stable across recoveries)."""
    return current_workflow_started_at()


def _call_inline(defn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return defn.fn(*args, **kwargs)


@contextmanager
def steps_inline() -> Generator[None]:
    """Inside this block, `@step` functions called in workflow code run as plain calls, unrecorded.

    For live-only code (a per-run event handler) that a replay would not run: steps it called in
    the workflow's sequence would make the replay nondeterministic. Inside a step's body, steps
    already run inline. (Uses the core's step interceptor, the hook adapters use for this.)
    """
    try:
        from durable_core._context import reset_step_interceptor, set_step_interceptor
    except ImportError:  # pragma: no cover - a core that moved it
        yield
        return
    token = set_step_interceptor(_call_inline)
    try:
        yield
    finally:
        reset_step_interceptor(token)
