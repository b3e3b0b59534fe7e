"""SQL for executors: heartbeats, and claiming the workflows of dead executors.

A claim is one UPDATE ... RETURNING guarded by the previous owner's id, so when several
survivors race for the same workflows each row goes to exactly one of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ._database import Database
from ._schema import executors, workflows

__all__ = ["ClaimedWorkflow", "ExecutorRow", "ExecutorStore"]


@dataclass(frozen=True, slots=True)
class ClaimedWorkflow:
    workflow_id: str
    name: str
    recovery_attempts: int
    queue_name: str | None = None
    owner_epoch: int = 0


@dataclass(frozen=True, slots=True)
class ExecutorRow:
    executor_id: str
    hostname: str | None
    pid: int | None
    heartbeat_at: int
    lease_ms: int


class ExecutorStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def heartbeat(
        self,
        executor_id: str,
        *,
        hostname: str,
        pid: int,
        app_version: str,
        lease_ms: int,
        now: int,
        workflow_names: Sequence[str] = (),
        queue_names: Sequence[str] = (),
    ) -> None:
        """Insert or renew this executor's lease, advertising what it can run."""
        names = json.dumps(sorted(workflow_names))
        queues = json.dumps(sorted(queue_names))

        def run() -> None:
            with self.db.write() as conn:
                updated = conn.execute(
                    sa.update(executors)
                    .where(executors.c.executor_id == executor_id)
                    .values(
                        heartbeat_at=now,
                        lease_ms=lease_ms,
                        hostname=hostname,
                        pid=pid,
                        app_version=app_version,
                        workflow_names=names,
                        queue_names=queues,
                    )
                ).rowcount
                if not updated:
                    conn.execute(
                        sa.insert(executors).values(
                            executor_id=executor_id,
                            hostname=hostname,
                            pid=pid,
                            app_version=app_version,
                            started_at=now,
                            heartbeat_at=now,
                            lease_ms=lease_ms,
                            workflow_names=names,
                            queue_names=queues,
                        )
                    )

        self.db.retrying(run, what="heartbeat")

    def advertised(self) -> tuple[set[str], set[str]]:
        """Workflow names and queue names that any known executor has advertised."""
        names: set[str] = set()
        queues: set[str] = set()
        with self.db.read() as conn:
            for r in conn.execute(sa.select(executors.c.workflow_names, executors.c.queue_names)):
                names.update(json.loads(r.workflow_names or "[]"))
                queues.update(json.loads(r.queue_names or "[]"))
        return names, queues

    def live(self, now: int) -> list[tuple[str, str | None, frozenset[str], frozenset[str]]]:
        """(executor id, app version, workflow names, queue names) of each executor whose lease is fresh."""
        stmt = sa.select(
            executors.c.executor_id,
            executors.c.app_version,
            executors.c.workflow_names,
            executors.c.queue_names,
        ).where(executors.c.heartbeat_at + executors.c.lease_ms >= now)
        with self.db.read() as conn:
            return [
                (
                    r.executor_id,
                    r.app_version,
                    frozenset(json.loads(r.workflow_names or "[]")),
                    frozenset(json.loads(r.queue_names or "[]")),
                )
                for r in conn.execute(stmt)
            ]

    def get(self, executor_id: str) -> ExecutorRow | None:
        with self.db.read() as conn:
            r = conn.execute(
                sa.select(
                    executors.c.executor_id,
                    executors.c.hostname,
                    executors.c.pid,
                    executors.c.heartbeat_at,
                    executors.c.lease_ms,
                ).where(executors.c.executor_id == executor_id)
            ).first()
        return (
            ExecutorRow(r.executor_id, r.hostname, r.pid, r.heartbeat_at, r.lease_ms)
            if r is not None
            else None
        )

    def remove(self, executor_id: str) -> None:
        """Forget a dead executor's lease row, unless its row is locked right now.

        On Postgres a process frozen inside its heartbeat transaction keeps that row locked; a plain
        DELETE would wait for it forever and stall the caller's own heartbeats. SKIP LOCKED leaves
        the row for a later round (SQLite has no row locks).
        """
        unlocked = self.db.sql_dialect.skip_locked(
            sa.select(executors.c.executor_id).where(executors.c.executor_id == executor_id)
        )
        with self.db.write() as conn:
            conn.execute(sa.delete(executors).where(executors.c.executor_id.in_(unlocked)))

    def owners_of_pending(self, app_version: str, exclude: str) -> list[tuple[str, ExecutorRow | None]]:
        """Executors (other than `exclude`) owning PENDING workflows of this version, with their lease row."""
        stmt = (
            sa.select(
                workflows.c.executor_id,
                executors.c.hostname,
                executors.c.pid,
                executors.c.heartbeat_at,
                executors.c.lease_ms,
                executors.c.executor_id.label("known"),
            )
            .select_from(workflows.outerjoin(executors, executors.c.executor_id == workflows.c.executor_id))
            .where(
                workflows.c.status == "PENDING",
                workflows.c.app_version == app_version,
                workflows.c.executor_id != exclude,
                workflows.c.executor_id.is_not(None),
            )
            .distinct()
        )
        with self.db.read() as conn:
            result: list[tuple[str, ExecutorRow | None]] = []
            for r in conn.execute(stmt):
                row = (
                    ExecutorRow(r.executor_id, r.hostname, r.pid, r.heartbeat_at, r.lease_ms)
                    if r.known
                    else None
                )
                result.append((r.executor_id, row))
            return result

    def claim(
        self,
        *,
        from_executor: str,
        to_executor: str,
        app_version: str,
        now: int,
        workflow_id: str | None = None,
        names: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        unless_alive_at: int | None = None,
    ) -> list[ClaimedWorkflow]:
        """Move `from_executor`'s PENDING workflows of this version to `to_executor`, counting a recovery."""
        stmt = (
            sa.update(workflows)
            .where(
                workflows.c.status == "PENDING",
                workflows.c.executor_id == from_executor,
                workflows.c.app_version == app_version,
            )
            .values(
                executor_id=to_executor,
                recovery_attempts=workflows.c.recovery_attempts + 1,
                updated_at=now,
                owner_epoch=workflows.c.owner_epoch + 1,
            )
            .returning(
                workflows.c.workflow_id,
                workflows.c.name,
                workflows.c.recovery_attempts,
                workflows.c.queue_name,
                workflows.c.owner_epoch,
            )
        )
        if workflow_id is not None:
            stmt = stmt.where(workflows.c.workflow_id == workflow_id)
        if names is not None:  # only what the claimer can run: a claim it would not run strands the work
            stmt = stmt.where(workflows.c.name.in_(list(names)))
        if exclude:  # workflows the claimer runs right now: claiming them would stop their bodies
            stmt = stmt.where(workflows.c.workflow_id.notin_(list(exclude)))
        if unless_alive_at is not None:
            # the owner was judged dead by its lease on an earlier read: re-check it in this very
            # statement, so a process that heartbeat meanwhile (thawed, or back from a pause) keeps
            # its work
            stmt = stmt.where(
                ~sa.exists().where(
                    executors.c.executor_id == from_executor,
                    executors.c.heartbeat_at + executors.c.lease_ms >= unless_alive_at,
                )
            )

        def run() -> list[ClaimedWorkflow]:
            with self.db.write() as conn:
                return [ClaimedWorkflow(r[0], r[1], r[2], r[3], r[4]) for r in conn.execute(stmt)]

        return self.db.retrying(run, what="claim workflows")
