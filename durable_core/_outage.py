"""Storage outages: the runs a database outage stopped here, resumed here once it answers again.

A body whose database stays unreachable (or whose disk is full) for longer than the engine's
`db_retry_seconds` stops without an outcome: an outage is never a terminal outcome. The heartbeat
loop calls `resume` on every round; once storage answers, this process resumes those workflows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ._handle import WorkflowHandle
from ._host import EngineHost
from ._recovery import recover
from ._run import WorkflowRun

__all__ = ["Interruptions"]

log = logging.getLogger("durable_core")


class Interruptions:
    """The workflows of one engine stopped by a storage outage, to resume in this process."""

    def __init__(self, engine: EngineHost, database_name: Callable[[], str]) -> None:
        self._engine = engine
        self._database_name = database_name  # for the log line (the URL without its password)
        self._lock = threading.Lock()
        self._stopped: set[str] = set()

    def stopped(self, run: WorkflowRun) -> None:
        """`run`'s body stops at this step: nothing is recorded as its outcome."""
        if run.cancel_reason is None:
            run.cancel_reason = "interrupted: the database is unavailable"
        with self._lock:
            first = not self._stopped
            self._stopped.add(run.workflow_id)
        if first:
            log.warning(
                "The database %s is unavailable: workflow %s (and any other hit) stops at this step and "
                "resumes here once the database answers again.",
                self._database_name(),
                run.workflow_id,
            )

    def resume(self) -> list[WorkflowHandle[Any]]:
        """Resume the stopped workflows that no longer run here (called once storage answers)."""
        engine = self._engine
        with self._lock:
            if not self._stopped:
                return []
            ready = {wid for wid in self._stopped if wid not in engine.active}
            self._stopped -= ready
        if not ready:
            return []
        handles = recover(engine, None)  # every workflow of ours that nothing runs here
        log.warning("The database answers again: resumed %d interrupted workflow(s).", len(handles))
        return handles
