"""The two reads of `durable_core` state its public API does not name yet (kept in one place).

Requested from the core as `pending_workflow_id()` and a start-time accessor; until they exist
these read the core's context module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from durable_core import workflow_options

__all__ = ['workflow_id_scope', 'workflow_started_at']


def _pending_options() -> Any:
    try:
        from durable_core._context import pending_options
    except ImportError:  # pragma: no cover - a core without the module
        return None
    return pending_options()


@contextmanager
def workflow_id_scope(workflow_id: str | None) -> Iterator[None]:
    """Name the next workflow `workflow_id` unless an enclosing `workflow_options` already names it.

    Implements DESIGN's precedence `workflow_options(workflow_id=...)` > `run_id` > a new id, and
    keeps the enclosing block's other options (timeout, priority, deduplication).
    """
    options = _pending_options()
    if workflow_id is None:
        with nullcontext():
            yield
        return
    if options is not None and options.workflow_id is not None and not getattr(options, '_id_used', False):
        yield
        return
    kwargs: dict[str, Any] = {}
    if options is not None:
        kwargs = {
            'timeout_seconds': options.timeout_seconds,
            'deduplication_id': options.deduplication_id,
            'priority': options.priority,
        }
    with workflow_options(workflow_id=workflow_id, **kwargs):
        yield


def workflow_started_at() -> datetime | None:
    """When the running workflow was first created, from its record (replay-stable)."""
    try:
        from durable_core._context import current_context
    except ImportError:  # pragma: no cover
        return None
    ctx = current_context()
    if ctx is None:
        return None
    status = ctx.engine.retrieve_workflow(ctx.workflow_id).get_status()
    created: Any = status.created_at
    if isinstance(created, datetime):
        return created
    if isinstance(created, int | float):
        return datetime.fromtimestamp(created / 1000, tz=UTC)
    return None
