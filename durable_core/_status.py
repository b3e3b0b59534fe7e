"""Workflow statuses: one `StrEnum`, and the terminal set defined once.

`WorkflowState` members compare equal to their strings (``WorkflowState.PENDING == "PENDING"``),
so the stored column, `WorkflowStatus.status` and user code comparing with plain strings all agree.
"""

from __future__ import annotations

import time
from enum import StrEnum

__all__ = ["ACTIVE_STATES", "TERMINAL_STATES", "WorkflowState", "now_ms"]


class WorkflowState(StrEnum):
    PENDING = "PENDING"
    """Running (or to be resumed) by the executor the row names."""
    ENQUEUED = "ENQUEUED"
    """Waiting in a queue for a dispatcher to claim it."""
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    RETRIES_EXCEEDED = "RETRIES_EXCEEDED"
    """Parked after `max_recovery_attempts` recoveries."""


TERMINAL_STATES: frozenset[WorkflowState] = frozenset(
    {WorkflowState.SUCCESS, WorkflowState.ERROR, WorkflowState.CANCELLED, WorkflowState.RETRIES_EXCEEDED}
)
"""A workflow in one of these states has its outcome recorded; nothing runs it any more."""

ACTIVE_STATES: frozenset[WorkflowState] = frozenset({WorkflowState.PENDING, WorkflowState.ENQUEUED})
"""Not finished: running, to be resumed, or queued."""


def now_ms() -> int:
    """The current time in epoch milliseconds (the unit of every stored timestamp)."""
    return int(time.time() * 1000)
