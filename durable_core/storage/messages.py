"""SQL for waits and communication: messages, events (with history), streams, wait markers.

Each operation made from inside a workflow commits its effect and the workflow's step row in
one transaction, guarded by ownership, so a replay never sends twice or consumes twice.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .._keys import event_key, message_key
from ._database import Database
from ._results import ReceiveResult, SendResult
from ._schema import event_history, events, messages, streams, workflows
from .steps import StepStore, step_params

__all__ = ["MessageStore", "StepWrite"]

_OWNED = (
    "SELECT 1 FROM workflows WHERE workflow_id = :workflow_id AND status = 'PENDING' "
    "AND executor_id = :executor_id AND owner_epoch = :owner_epoch"
)


class StepWrite:
    """The step row to commit beside an operation's effect."""

    __slots__ = (
        "executor_id",
        "name",
        "output",
        "owner_epoch",
        "serialization",
        "started_at",
        "step_id",
        "workflow_id",
    )

    def __init__(
        self,
        *,
        workflow_id: str,
        executor_id: str,
        owner_epoch: int,
        step_id: int,
        name: str,
        output: str | None,
        serialization: str,
        started_at: int,
    ) -> None:
        self.workflow_id = workflow_id
        self.executor_id = executor_id
        self.owner_epoch = owner_epoch
        self.step_id = step_id
        self.name = name
        self.output = output
        self.serialization = serialization
        self.started_at = started_at


class MessageStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.sql_dialect
        self._owned = db.sql(_OWNED + db.sql_dialect.lock_owned_row)
        self._steps = StepStore(db)

    # -- helpers ------------------------------------------------------------------------

    def _owns(self, conn: sa.Connection, step: StepWrite) -> bool:
        params = {
            "workflow_id": step.workflow_id,
            "executor_id": step.executor_id,
            "owner_epoch": step.owner_epoch,
        }
        # the dialect's row lock: a concurrent cancel or takeover cannot slip between check and write
        return conn.exec_driver_sql(self._owned, params).first() is not None

    def _insert_step(self, conn: sa.Connection, step: StepWrite, now: int, output: str | None = None) -> bool:
        return self._steps.record_in(
            conn,
            step_params(
                workflow_id=step.workflow_id,
                executor_id=step.executor_id,
                owner_epoch=step.owner_epoch,
                step_id=step.step_id,
                name=step.name,
                output=output if output is not None else step.output,
                serialization=step.serialization,
                started_at=step.started_at,
                completed_at=now,
            ),
        )

    def workflow_exists(self, conn: sa.Connection, workflow_id: str) -> bool:
        return (
            conn.execute(
                sa.select(workflows.c.workflow_id).where(workflows.c.workflow_id == workflow_id)
            ).first()
            is not None
        )

    # -- messages -----------------------------------------------------------------------

    def send(
        self,
        *,
        destination_id: str,
        topic: str,
        message: str,
        serialization: str,
        idempotency_key: str | None,
        now: int,
        step: StepWrite | None = None,
    ) -> SendResult:
        """Insert a message (and the sender's step, when sent from a workflow)."""

        def run() -> SendResult:
            with self.db.write() as conn:
                if step is not None and not self._owns(conn, step):
                    return SendResult.NOT_OWNER
                if not self.workflow_exists(conn, destination_id):
                    return SendResult.NO_DESTINATION
                # RETURNING tells a skipped row apart (Postgres reports a rowcount of 1 either way here)
                inserted = (
                    conn.execute(
                        self.dialect.insert_ignore(messages)
                        .values(
                            destination_id=destination_id,
                            topic=topic,
                            message=message,
                            serialization=serialization,
                            idempotency_key=idempotency_key,
                            created_at=now,
                        )
                        .returning(messages.c.message_id)
                    ).first()
                    is not None
                )
                if step is not None:
                    self._insert_step(conn, step, now)
                self.dialect.notify(conn, message_key(destination_id, topic))
                return SendResult.SENT if inserted else SendResult.DUPLICATE

        return self.db.retrying(run, what="send message")

    def consume(
        self, *, topic: str, step: StepWrite, now: int
    ) -> tuple[ReceiveResult, str | None, str | None]:
        """Take the oldest unconsumed message of a topic and record the recv step, atomically.

        Returns (result, message, serialization); the message only when RECEIVED.
        """

        def run() -> tuple[ReceiveResult, str | None, str | None]:
            with self.db.write() as conn:
                if not self._owns(conn, step):
                    return ReceiveResult.NOT_OWNER, None, None
                select = (
                    sa.select(messages.c.message_id, messages.c.message, messages.c.serialization)
                    .where(
                        messages.c.destination_id == step.workflow_id,
                        messages.c.topic == topic,
                        messages.c.consumed_at.is_(None),
                    )
                    .order_by(messages.c.message_id)
                    .limit(1)
                )
                select = self.dialect.skip_locked(select)
                row = conn.execute(select).first()
                if row is None:
                    return ReceiveResult.EMPTY, None, None
                conn.execute(
                    sa.update(messages)
                    .where(messages.c.message_id == row.message_id)
                    .values(consumed_at=now, consumed_by=f"{step.workflow_id}:{step.step_id}")
                )
                self._insert_step(conn, step, now, output=row.message)
                conn.execute(
                    sa.update(workflows)
                    .where(workflows.c.workflow_id == step.workflow_id)
                    .values(wait_topic=None, wait_deadline=None, wait_step=None)
                )
                return ReceiveResult.RECEIVED, row.message, row.serialization

        return self.db.retrying(run, what="receive message")

    def notify(self, payloads: list[str]) -> None:
        """Postgres NOTIFY to wake waiters in other processes."""
        if not self.dialect.notifies:
            return
        with self.db.autocommit_engine.connect() as conn:
            for payload in payloads:
                self.dialect.notify(conn, payload)

    # -- wait markers ---------------------------------------------------------------------

    def begin_wait(
        self,
        *,
        workflow_id: str,
        executor_id: str,
        owner_epoch: int,
        topic: str,
        deadline: int | None,
        step_id: int,
    ) -> bool:
        """Mark the workflow as waiting (for introspection and to keep the deadline across restarts)."""

        def run() -> bool:
            with self.db.write() as conn:
                return (
                    conn.execute(
                        sa.update(workflows)
                        .where(
                            workflows.c.workflow_id == workflow_id,
                            workflows.c.status == "PENDING",
                            workflows.c.executor_id == executor_id,
                            workflows.c.owner_epoch == owner_epoch,
                        )
                        .values(wait_topic=topic, wait_deadline=deadline, wait_step=step_id)
                    ).rowcount
                    == 1
                )

        return self.db.retrying(run, what="record wait")

    def clear_wait(self, workflow_id: str, step_id: int) -> None:
        """Clear the wait marker of step `step_id` (a wait whose step is recorded apart from it)."""

        def run() -> None:
            with self.db.write() as conn:
                conn.execute(
                    sa.update(workflows)
                    .where(workflows.c.workflow_id == workflow_id, workflows.c.wait_step == step_id)
                    .values(wait_topic=None, wait_deadline=None, wait_step=None)
                )

        self.db.retrying(run, what="clear wait")

    def finish_wait(self, *, step: StepWrite, now: int) -> bool:
        """Record the wait's step (timeout result, sleep end) and clear the marker; False if not the owner."""

        def run() -> bool:
            with self.db.write() as conn:
                if not self._owns(conn, step):
                    return False
                self._insert_step(conn, step, now)
                conn.execute(
                    sa.update(workflows)
                    .where(workflows.c.workflow_id == step.workflow_id)
                    .values(wait_topic=None, wait_deadline=None, wait_step=None)
                )
                return True

        return self.db.retrying(run, what="finish wait")

    # -- events ---------------------------------------------------------------------------

    def set_event(self, *, key: str, value: str, serialization: str, step: StepWrite, now: int) -> bool:
        def run() -> bool:
            with self.db.write() as conn:
                if not self._owns(conn, step):
                    return False
                updated = conn.execute(
                    sa.update(events)
                    .where(events.c.workflow_id == step.workflow_id, events.c.key == key)
                    .values(value=value, serialization=serialization, step_id=step.step_id, updated_at=now)
                ).rowcount
                if not updated:
                    conn.execute(
                        sa.insert(events).values(
                            workflow_id=step.workflow_id,
                            key=key,
                            value=value,
                            serialization=serialization,
                            step_id=step.step_id,
                            updated_at=now,
                        )
                    )
                conn.execute(
                    self.dialect.insert_ignore(event_history).values(
                        workflow_id=step.workflow_id,
                        step_id=step.step_id,
                        key=key,
                        value=value,
                        serialization=serialization,
                    )
                )
                self._insert_step(conn, step, now)
                self.dialect.notify(conn, event_key(step.workflow_id, key))
                return True

        return self.db.retrying(run, what="set event")

    def get_event(self, workflow_id: str, key: str) -> tuple[str, str] | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(events.c.value, events.c.serialization).where(
                    events.c.workflow_id == workflow_id, events.c.key == key
                )
            ).first()
        return (row.value, row.serialization) if row is not None else None

    def copy_events_for_fork(self, source_id: str, target_id: str, start_step: int) -> None:
        """Give a fork the events of its source as of `start_step` (history below it, latest per key)."""
        with self.db.write() as conn:
            rows = conn.execute(
                sa.select(event_history)
                .where(event_history.c.workflow_id == source_id, event_history.c.step_id < start_step)
                .order_by(event_history.c.step_id)
            ).all()
            latest: dict[str, Any] = {}
            for r in rows:
                conn.execute(
                    self.dialect.insert_ignore(event_history).values(
                        workflow_id=target_id,
                        step_id=r.step_id,
                        key=r.key,
                        value=r.value,
                        serialization=r.serialization,
                    )
                )
                latest[r.key] = r
            for key, r in latest.items():
                conn.execute(
                    sa.insert(events).values(
                        workflow_id=target_id,
                        key=key,
                        value=r.value,
                        serialization=r.serialization,
                        step_id=r.step_id,
                        updated_at=0,
                    )
                )

    # -- streams --------------------------------------------------------------------------

    def write_stream(
        self, *, key: str, value: str | None, serialization: str, closed: bool, step: StepWrite, now: int
    ) -> bool:
        def run() -> bool:
            with self.db.write() as conn:
                if not self._owns(conn, step):
                    return False
                last = conn.execute(
                    sa.select(sa.func.max(streams.c.offset)).where(
                        streams.c.workflow_id == step.workflow_id, streams.c.key == key
                    )
                ).scalar()
                conn.execute(
                    sa.insert(streams).values(
                        workflow_id=step.workflow_id,
                        key=key,
                        offset=(last or 0) + 1,
                        value=value,
                        serialization=serialization,
                        closed=closed,
                        step_id=step.step_id,
                    )
                )
                self._insert_step(conn, step, now)
                self.dialect.notify(conn, f"stream:{step.workflow_id}:{key}")
                return True

        return self.db.retrying(run, what="write stream")

    def read_stream(self, workflow_id: str, key: str, after: int) -> list[tuple[int, str | None, str, bool]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(streams.c.offset, streams.c.value, streams.c.serialization, streams.c.closed)
                .where(streams.c.workflow_id == workflow_id, streams.c.key == key, streams.c.offset > after)
                .order_by(streams.c.offset)
            )
            return [(r.offset, r.value, r.serialization, bool(r.closed)) for r in rows]
