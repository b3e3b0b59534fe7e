"""SQL for queues: claiming ENQUEUED workflows under concurrency and rate limits.

Postgres claims rows with `FOR UPDATE SKIP LOCKED`; when a queue has a global limit
(concurrency or rate) its claimers are serialized by a transaction-scoped advisory lock, so
two workers never both see the same free capacity. SQLite's single writer (`BEGIN
IMMEDIATE`) gives the same guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ._database import Database
from ._rows import WorkflowRow
from ._schema import workflows
from .workflows import row_to_workflow

__all__ = ["ClaimRequest", "QueueStore"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRequest:
    queue_name: str
    executor_id: str
    app_version: str
    names: Sequence[str]  # workflow names this process can run
    max_claims: int  # this worker's free slots
    concurrency: int | None
    rate_limit: int | None
    rate_period_ms: int | None
    by_priority: bool
    now: int


@dataclass(frozen=True, slots=True)
class ClaimResult:
    rows: list[WorkflowRow]  # the claimed workflows, now PENDING and owned by the claimer
    rate_limited_until: int | None  # when the window frees a slot, if the rate limit stopped us


class QueueStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.sql_dialect
        self._pending_sql: dict[int, str] = {}

    def claim(self, request: ClaimRequest) -> ClaimResult:
        def run() -> ClaimResult:
            with self.db.write() as conn:
                return self._claim(conn, request)

        return self.db.retrying(run, what=f"claim from queue {request.queue_name!r}")

    def _claim(self, conn: sa.Connection, r: ClaimRequest) -> ClaimResult:
        budget = r.max_claims
        limited = r.concurrency is not None or r.rate_limit is not None
        if limited:
            self.dialect.lock_for_claims(conn, f"durable_queue:{r.queue_name}")
        if r.concurrency is not None:
            running = conn.execute(
                sa.select(sa.func.count()).where(
                    workflows.c.queue_name == r.queue_name, workflows.c.status == "PENDING"
                )
            ).scalar_one()
            budget = min(budget, r.concurrency - running)
        rate_until: int | None = None
        if r.rate_limit is not None and r.rate_period_ms is not None:
            window_start = r.now - r.rate_period_ms
            starts = (
                conn.execute(
                    sa.select(workflows.c.started_at)
                    .where(workflows.c.queue_name == r.queue_name, workflows.c.started_at > window_start)
                    .order_by(workflows.c.started_at)
                )
                .scalars()
                .all()
            )
            free = r.rate_limit - len(starts)
            if free <= budget and starts:
                # the next slot opens when the oldest start in the window leaves it
                rate_until = starts[max(0, len(starts) - r.rate_limit)] + r.rate_period_ms + 1
            budget = min(budget, free)
        if budget <= 0 or not r.names:
            return ClaimResult([], rate_until)
        if self.dialect.in_process and not self._has_work(conn, r):  # a probe costs no round trip
            return ClaimResult([], rate_until)
        order = (
            (workflows.c.priority.asc(), workflows.c.created_at.asc(), workflows.c.workflow_id.asc())
            if r.by_priority
            else (workflows.c.created_at.asc(), workflows.c.workflow_id.asc())
        )
        select = (
            sa.select(workflows.c.workflow_id)
            .where(
                workflows.c.queue_name == r.queue_name,
                workflows.c.status == "ENQUEUED",
                workflows.c.app_version == r.app_version,
                workflows.c.name.in_(list(r.names)),
            )
            .order_by(*order)
            .limit(budget)
        )
        select = self.dialect.skip_locked(select)
        ids = list(conn.execute(select).scalars())
        if ids:
            conn.execute(
                sa.update(workflows)
                .where(workflows.c.workflow_id.in_(ids), workflows.c.status == "ENQUEUED")
                .values(
                    status="PENDING",
                    executor_id=r.executor_id,
                    owner_epoch=workflows.c.owner_epoch + 1,
                    started_at=r.now,
                    updated_at=r.now,
                    deadline_at=sa.case(
                        (workflows.c.timeout_ms.is_not(None), r.now + workflows.c.timeout_ms),
                        else_=workflows.c.deadline_at,
                    ),
                )
            )
            rows = [
                row_to_workflow(row)
                for row in conn.execute(sa.select(workflows).where(workflows.c.workflow_id.in_(ids)))
            ]
            order = {wid: n for n, wid in enumerate(ids)}
            rows.sort(key=lambda row: order[row.workflow_id])
            return ClaimResult(rows, rate_until)
        return ClaimResult([], rate_until)

    def _has_work(self, conn: sa.Connection, r: ClaimRequest) -> bool:
        return (
            conn.execute(
                sa.select(workflows.c.workflow_id)
                .where(workflows.c.queue_name == r.queue_name, workflows.c.status == "ENQUEUED")
                .limit(1)
            ).first()
            is not None
        )

    def pending_queues(self, queue_names: Sequence[str]) -> set[str]:
        """Which of these queues have ENQUEUED work: the dispatcher's poll (every 20 ms on SQLite),
        a cheap read before taking the write lock, on a raw connection."""
        names = list(queue_names)
        if not names:
            return set()
        statement = self._pending_sql.get(len(names))
        if statement is None:
            marks = ", ".join(f":q{i}" for i in range(len(names)))
            statement = self._pending_sql[len(names)] = self.db.sql(
                f"SELECT DISTINCT queue_name FROM workflows WHERE status = 'ENQUEUED' AND queue_name IN ({marks})"
            )
        rows = self.db.read_rows(statement, {f"q{i}": name for i, name in enumerate(names)})
        return {row[0] for row in rows}

    def requeue(self, workflow_ids: Sequence[str], now: int) -> None:
        """Put claimed-but-not-finished queue workflows back for any worker (shutdown, takeover)."""
        if not workflow_ids:
            return
        with self.db.write() as conn:
            conn.execute(
                sa.update(workflows)
                .where(workflows.c.workflow_id.in_(list(workflow_ids)), workflows.c.status == "PENDING")
                .values(
                    status="ENQUEUED",
                    executor_id=None,
                    updated_at=now,
                    started_at=None,
                    owner_epoch=workflows.c.owner_epoch + 1,
                )
            )

    def owned_queue_workflows(self, executor_id: str) -> list[str]:
        with self.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(workflows.c.workflow_id).where(
                        workflows.c.executor_id == executor_id,
                        workflows.c.status == "PENDING",
                        workflows.c.queue_name.is_not(None),
                    )
                ).scalars()
            )

    def notify(self, queue_name: str) -> None:
        if not self.dialect.notifies:
            return
        with self.db.autocommit_engine.connect() as conn:
            self.dialect.notify(conn, f"queue:{queue_name}")
