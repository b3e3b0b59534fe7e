"""Ownership of workflows between executors: who is dead, the lease a claim rechecks, parking.

Every engine renews a lease row. An executor whose lease expired, or that ran on this host in a
process that no longer exists, is dead: its PENDING workflows may be claimed (one guarded UPDATE,
one winner). A workflow recovered more often than its `max_recovery_attempts` is parked.
"""

from __future__ import annotations

import logging
import os

from ._host import EngineHost
from ._keys import done_key
from ._status import WorkflowState, now_ms
from .storage import ClaimedWorkflow, ExecutorRow

__all__ = ["is_dead", "lease_recheck", "park", "process_gone"]

log = logging.getLogger("durable_core.recovery")


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def is_dead(engine: EngineHost, row: ExecutorRow | None, now: int) -> bool:
    if row is None:
        return True
    if row.heartbeat_at + row.lease_ms < now:
        return True
    return process_gone(engine, row)


def process_gone(engine: EngineHost, row: ExecutorRow) -> bool:
    """The executor ran on this host in a process that no longer exists (a certain death)."""
    same_host = row.hostname == engine.hostname and row.pid is not None and row.pid != engine.pid
    return same_host and row.pid is not None and _process_gone(row.pid)


def lease_recheck(engine: EngineHost, row: ExecutorRow | None, now: int) -> int | None:
    """For a claim of `row`'s work: the time its lease must still be expired at when the claim
    runs (None when its death is certain: no lease row at all, or its local process is gone)."""
    if row is None or process_gone(engine, row):
        return None
    return now


def park(engine: EngineHost, claimed: ClaimedWorkflow, limit: int) -> None:
    """Stop crash-looping: mark the workflow RETRIES_EXCEEDED."""
    engine.workflows.update(
        claimed.workflow_id,
        {"status": WorkflowState.RETRIES_EXCEEDED, "updated_at": now_ms(), "deduplication_id": None},
        only_status=(WorkflowState.PENDING,),
    )
    engine.waiters.notify(done_key(claimed.workflow_id))
    log.error(
        "Workflow %s (%s) was recovered %d times (max_recovery_attempts=%d) and is parked as "
        "RETRIES_EXCEEDED; engine.resume_workflow() revives it.",
        claimed.workflow_id,
        claimed.name,
        claimed.recovery_attempts,
        limit,
    )
