"""SQL for step rows: the hot path.

A step is recorded with one statement that also proves ownership: it inserts only while the
workflow row is PENDING and owned by this executor. Zero rows inserted means the workflow was
cancelled or taken over (or, after a lost acknowledgement, that our own earlier attempt
committed), which the caller resolves by reading the workflow row: a step row that exists is
never taken as proof of ownership, since another owner may have written it.

That statement is the only step-row insert: the stores that write a step beside another effect
(a message, an event, a child workflow's row) run it inside their transaction (`record_in`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ._database import Database
from ._rows import StepRow
from ._schema import steps

__all__ = ["StepStore", "step_params"]

_RECORD = (
    "INSERT INTO steps (workflow_id, step_id, name, output, error, serialization, child_workflow_id, "
    "started_at, completed_at, usage) "
    "SELECT :workflow_id, CAST(:step_id AS INTEGER), :name, :output, :error, :serialization, :child_workflow_id, "
    "CAST(:started_at AS BIGINT), CAST(:completed_at AS BIGINT), :usage "
    "WHERE EXISTS (SELECT 1 FROM workflows WHERE workflow_id = :workflow_id AND status = 'PENDING' "
    "AND executor_id = :executor_id AND owner_epoch = CAST(:owner_epoch AS INTEGER)) "
    "ON CONFLICT (workflow_id, step_id) DO NOTHING"
)
_LOAD = (
    "SELECT workflow_id, step_id, name, output, error, serialization, child_workflow_id, started_at, completed_at, "
    "usage FROM steps WHERE workflow_id = :workflow_id ORDER BY step_id"
)


def step_params(
    *,
    workflow_id: str,
    executor_id: str,
    owner_epoch: int,
    step_id: int,
    name: str,
    output: str | None = None,
    error: str | None = None,
    serialization: str = "json",
    child_workflow_id: str | None = None,
    started_at: int,
    completed_at: int,
    usage: str | None = None,
) -> dict[str, Any]:
    """The parameters of the step-row insert: the row, and the ownership it must prove."""
    return {
        "workflow_id": workflow_id,
        "executor_id": executor_id,
        "owner_epoch": owner_epoch,
        "step_id": step_id,
        "name": name,
        "output": output,
        "error": error,
        "serialization": serialization,
        "child_workflow_id": child_workflow_id,
        "started_at": started_at,
        "completed_at": completed_at,
        "usage": usage,
    }


class StepStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._record = db.sql(_RECORD)
        self._load = db.sql(_LOAD)

    def record_in(self, conn: sa.Connection, params: dict[str, Any]) -> bool:
        """The step-row insert inside the caller's transaction (`step_params`); True if inserted."""
        return conn.exec_driver_sql(self._record, params).rowcount == 1

    def record(
        self,
        *,
        workflow_id: str,
        executor_id: str,
        owner_epoch: int,
        step_id: int,
        name: str,
        output: str | None,
        error: str | None,
        serialization: str,
        child_workflow_id: str | None,
        started_at: int,
        completed_at: int,
        usage: str | None = None,
    ) -> bool:
        """Insert the step's outcome if this executor still owns the workflow under `owner_epoch`;
        True if inserted."""
        params = step_params(
            workflow_id=workflow_id,
            executor_id=executor_id,
            owner_epoch=owner_epoch,
            step_id=step_id,
            name=name,
            output=output,
            error=error,
            serialization=serialization,
            child_workflow_id=child_workflow_id,
            started_at=started_at,
            completed_at=completed_at,
            usage=usage,
        )
        return self.db.retrying(lambda: self.db.write_one(self._record, params) == 1, what="record step")

    def load(self, workflow_id: str) -> dict[int, StepRow]:
        """Every recorded step of a workflow, in one query."""

        def run() -> dict[int, StepRow]:
            with self.db.read() as conn:
                rows = conn.exec_driver_sql(self._load, {"workflow_id": workflow_id})
                return {r.step_id: StepRow(**r._asdict()) for r in rows}

        return self.db.retrying(run, what="load steps")

    def get(self, workflow_id: str, step_id: int) -> StepRow | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(steps).where(steps.c.workflow_id == workflow_id, steps.c.step_id == step_id)
            ).first()
        return StepRow(**row._asdict()) if row is not None else None
