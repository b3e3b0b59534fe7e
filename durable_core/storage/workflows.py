"""SQL for workflow rows: create, read, finish, cancel, list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .._status import TERMINAL_STATES
from ._database import NOTIFY_CHANNEL, Database
from ._rows import WorkflowRow
from ._schema import steps, workflows
from .steps import StepStore, step_params

__all__ = ["ParentStep", "WorkflowStore"]

# a new row starts at ownership epoch 0 (the column default); only ownership changes bump it
_COLUMNS = [c.name for c in workflows.columns if c.name != "owner_epoch"]
_INSERT = (
    f"INSERT INTO workflows ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
    "ON CONFLICT (workflow_id) DO NOTHING"
)
_FINISH = (
    "UPDATE workflows SET status = :status, output = :output, error = :error, serialization = :serialization, "
    "updated_at = :now, deduplication_id = NULL, wait_topic = NULL, wait_deadline = NULL, wait_step = NULL "
    "WHERE workflow_id = :workflow_id AND status = 'PENDING' AND executor_id = :executor_id "
    "AND owner_epoch = :owner_epoch"
)


_OWNED = (
    "SELECT 1 FROM workflows WHERE workflow_id = :workflow_id AND status = 'PENDING' "
    "AND executor_id = :executor_id AND owner_epoch = :owner_epoch"
)


@dataclass(frozen=True, slots=True)
class ParentStep:
    """The parent's "start child" step, written with the child's row by the parent's owner."""

    workflow_id: str
    step_id: int
    name: str
    executor_id: str
    owner_epoch: int


def _created(rowcount: int) -> bool:
    return rowcount == 1


def row_to_workflow(row: sa.Row[Any]) -> WorkflowRow:
    return WorkflowRow(**row._asdict())


class WorkflowStore:
    """Workflow rows. Every method is one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.sql_dialect
        self._steps = StepStore(db)
        self._insert = db.sql(_INSERT)
        self._owned = db.sql(_OWNED + db.sql_dialect.lock_owned_row)
        self._finish = db.sql(_FINISH)
        self._insert_notify: str | None = None
        if self.dialect.notifies and self.dialect.writable_ctes:  # the NOTIFY rides along
            self._insert_notify = db.sql(
                f"WITH created AS ({_INSERT} RETURNING workflow_id) "
                f"SELECT pg_notify('{NOTIFY_CHANNEL}', :notify_payload) FROM created"
            )
            self._finish = db.sql(
                f"WITH finished AS ({_FINISH} RETURNING workflow_id) "
                f"SELECT pg_notify('{NOTIFY_CHANNEL}', 'done:' || workflow_id) FROM finished"
            )

    def insert(
        self,
        values: dict[str, Any],
        *,
        parent_step: ParentStep | None = None,
        notify: str | None = None,
    ) -> bool | None:
        """Create the row unless the id exists; return True if this call created it.

        `parent_step` records the parent's "start child" step in the same transaction, so the
        parent never loses track of a child it created; that transaction first proves the parent
        is still owned by the caller's execution and returns None (writing nothing) if it is not.
        """
        params = {c: values.get(c) for c in _COLUMNS}
        if parent_step is None:
            # one statement, one round trip (and on Postgres the NOTIFY rides along)
            if notify is not None and self._insert_notify is not None:
                statement = self._insert_notify
                params["notify_payload"] = notify
            else:
                statement = self._insert
            return self.db.retrying(
                lambda: _created(self.db.write_one(statement, params)), what="start workflow"
            )

        def run() -> bool | None:
            with self.db.write() as conn:
                owner = {
                    "workflow_id": parent_step.workflow_id,
                    "executor_id": parent_step.executor_id,
                    "owner_epoch": parent_step.owner_epoch,
                }
                if conn.exec_driver_sql(self._owned, owner).first() is None:
                    return None
                created = conn.exec_driver_sql(self._insert, params).rowcount == 1
                # the parent's "start child" step, in the same transaction
                self._steps.record_in(
                    conn,
                    step_params(
                        workflow_id=parent_step.workflow_id,
                        executor_id=parent_step.executor_id,
                        owner_epoch=parent_step.owner_epoch,
                        step_id=parent_step.step_id,
                        name=parent_step.name,
                        child_workflow_id=values["workflow_id"],
                        started_at=values["created_at"],
                        completed_at=values["created_at"],
                    ),
                )
                if created and notify is not None:
                    self.dialect.notify(conn, notify)
                return created

        return self.db.retrying(run, what="start workflow")

    def get(self, workflow_id: str) -> WorkflowRow | None:
        def run() -> WorkflowRow | None:
            with self.db.read() as conn:
                row = conn.execute(sa.select(workflows).where(workflows.c.workflow_id == workflow_id)).first()
            return row_to_workflow(row) if row is not None else None

        return self.db.retrying(run, what="read workflow")

    def finish(
        self,
        workflow_id: str,
        executor_id: str,
        *,
        owner_epoch: int,
        status: str,
        output: str | None,
        error: str | None,
        serialization: str,
        now: int,
    ) -> bool:
        """Record the outcome if this executor still owns the PENDING workflow."""
        params = {
            "workflow_id": workflow_id,
            "executor_id": executor_id,
            "owner_epoch": owner_epoch,
            "status": status,
            "output": output,
            "error": error,
            "serialization": serialization,
            "now": now,
        }
        return self.db.retrying(lambda: self.db.write_one(self._finish, params) == 1, what="finish workflow")

    def update(
        self, workflow_id: str, values: dict[str, Any], *, only_status: Sequence[str] | None = None
    ) -> bool:
        """Set columns of one workflow, optionally only while it has one of `only_status`."""
        if "status" in values or "executor_id" in values:  # a change of ownership
            values = {**values, "owner_epoch": workflows.c.owner_epoch + 1}
        stmt = sa.update(workflows).where(workflows.c.workflow_id == workflow_id).values(**values)
        if only_status is not None:
            stmt = stmt.where(workflows.c.status.in_(list(only_status)))

        def run() -> bool:
            with self.db.write() as conn:
                return conn.execute(stmt).rowcount == 1

        return self.db.retrying(run, what="update workflow")

    def reopen_failed(self, workflow_id: str, values: dict[str, Any]) -> bool:
        """Take an ERROR workflow back (set `values`, clear its outcome) to run it again from its failure.

        In the same transaction the step whose error ended it, if its last recorded step holds an
        error, is deleted so that this step runs again; every earlier step keeps its record and
        replays. False (nothing changed) if the workflow is not in ERROR.
        """
        stmt = (
            sa.update(workflows)
            .where(workflows.c.workflow_id == workflow_id, workflows.c.status == "ERROR")
            .values(**values, output=None, error=None, owner_epoch=workflows.c.owner_epoch + 1)
        )
        last_step = (
            sa.select(sa.func.max(steps.c.step_id))
            .where(steps.c.workflow_id == workflow_id)
            .scalar_subquery()
        )
        drop_failed = sa.delete(steps).where(
            steps.c.workflow_id == workflow_id, steps.c.step_id == last_step, steps.c.error.is_not(None)
        )

        def run() -> bool:
            with self.db.write() as conn:
                if conn.execute(stmt).rowcount != 1:
                    return False
                conn.execute(drop_failed)
                return True

        return self.db.retrying(run, what="reopen a failed workflow")

    def cancel_tree(self, workflow_id: str, now: int) -> list[str]:
        """Cancel a workflow and its descendants that have not finished; return the ids cancelled."""

        def run() -> list[str]:
            cancelled: list[str] = []
            with self.db.write() as conn:
                frontier = [workflow_id]
                seen: set[str] = set()
                while frontier:
                    seen.update(frontier)
                    result = conn.execute(
                        sa.update(workflows)
                        .where(workflows.c.workflow_id.in_(frontier))
                        .where(workflows.c.status.notin_([str(state) for state in TERMINAL_STATES]))
                        .values(
                            status="CANCELLED",
                            updated_at=now,
                            deduplication_id=None,
                            owner_epoch=workflows.c.owner_epoch + 1,
                        )
                        .returning(workflows.c.workflow_id)
                    )
                    cancelled.extend(r[0] for r in result)
                    children = conn.execute(
                        sa.select(workflows.c.workflow_id).where(workflows.c.parent_workflow_id.in_(frontier))
                    )
                    frontier = [r[0] for r in children if r[0] not in seen]
            return cancelled

        return self.db.retrying(run, what="cancel workflow")

    def overdue(self, now: int) -> list[str]:
        """PENDING workflows past their deadline."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(workflows.c.workflow_id).where(
                    workflows.c.status == "PENDING",
                    workflows.c.deadline_at.is_not(None),
                    workflows.c.deadline_at < now,
                )
            )
            return [r[0] for r in rows]

    def count(
        self,
        *,
        status: str | None = None,
        queue_name: str | None = None,
        name: str | None = None,
        parent_workflow_id: str | None = None,
    ) -> int:
        conditions = _filters(
            status=status, queue_name=queue_name, name=name, parent_workflow_id=parent_workflow_id
        )
        stmt = sa.select(sa.func.count()).select_from(workflows).where(*conditions)
        with self.db.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        name: str | Sequence[str] | None = None,
        queue_name: str | Sequence[str] | None = None,
        workflow_ids: Sequence[str] | None = None,
        created_after: int | None = None,
        created_before: int | None = None,
        waiting: bool | None = None,
        parent_workflow_id: str | None = None,
        app_version: str | None = None,
        executor_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[WorkflowRow]:
        stmt = sa.select(workflows).where(
            *_filters(
                status=status,
                name=name,
                queue_name=queue_name,
                workflow_ids=workflow_ids,
                created_after=created_after,
                created_before=created_before,
                waiting=waiting,
                parent_workflow_id=parent_workflow_id,
                app_version=app_version,
                executor_id=executor_id,
            )
        )
        order = (
            (workflows.c.created_at.desc(), workflows.c.workflow_id.desc())
            if newest_first
            else (workflows.c.created_at.asc(), workflows.c.workflow_id.asc())
        )
        stmt = stmt.order_by(*order).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.db.read() as conn:
            return [row_to_workflow(r) for r in conn.execute(stmt)]

    def copy_for_fork(self, source_id: str, values: dict[str, Any], start_step: int) -> None:
        """Create a forked workflow row and copy the source's steps below `start_step`, in one transaction."""
        params = {c: values.get(c) for c in _COLUMNS}
        with self.db.write() as conn:
            conn.exec_driver_sql(self._insert, params)
            conn.execute(
                sa.insert(steps).from_select(
                    [c.name for c in steps.columns if c.name != "usage"],
                    sa.select(
                        sa.literal(values["workflow_id"]).label("workflow_id"),
                        # a fork spent nothing on the steps it copies: their usage stays the source's
                        *[c for c in steps.columns if c.name not in ("workflow_id", "usage")],
                    ).where(steps.c.workflow_id == source_id, steps.c.step_id < start_step),
                )
            )


def _any_of(column: sa.ColumnElement[Any], value: str | Sequence[str]) -> sa.ColumnElement[bool]:
    return column == value if isinstance(value, str) else column.in_(list(value))


def _filters(
    *,
    status: str | Sequence[str] | None = None,
    name: str | Sequence[str] | None = None,
    queue_name: str | Sequence[str] | None = None,
    workflow_ids: Sequence[str] | None = None,
    created_after: int | None = None,
    created_before: int | None = None,
    waiting: bool | None = None,
    parent_workflow_id: str | None = None,
    app_version: str | None = None,
    executor_id: str | None = None,
) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions shared by `list` and `count` (a None filter matches everything)."""
    w = workflows.c
    conditions: list[sa.ColumnElement[bool]] = []
    if status is not None:
        conditions.append(_any_of(w.status, status))
    if name is not None:
        conditions.append(_any_of(w.name, name))
    if queue_name is not None:
        conditions.append(_any_of(w.queue_name, queue_name))
    if workflow_ids is not None:
        conditions.append(w.workflow_id.in_(list(workflow_ids)))
    if created_after is not None:
        conditions.append(w.created_at >= created_after)
    if created_before is not None:
        conditions.append(w.created_at < created_before)
    if waiting is True:
        conditions.append(sa.and_(w.status == "PENDING", w.wait_topic.is_not(None)))
    elif waiting is False:
        conditions.append(sa.or_(w.wait_topic.is_(None), w.status != "PENDING"))
    if parent_workflow_id is not None:
        conditions.append(w.parent_workflow_id == parent_workflow_id)
    if app_version is not None:
        conditions.append(w.app_version == app_version)
    if executor_id is not None:
        conditions.append(w.executor_id == executor_id)
    return conditions
