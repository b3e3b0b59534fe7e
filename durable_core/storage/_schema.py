"""Tables of the durable_core system database (schema version 1).

Timestamps are epoch milliseconds written by Python. Values are text in the serializer named
in the row's `serialization` column (readable JSON unless the user opted into pickle).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["event_history", "events", "executors", "messages", "metadata", "steps", "streams", "workflows"]

metadata = sa.MetaData()

workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("workflow_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("inputs", sa.Text),
    sa.Column("output", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("serialization", sa.Text, nullable=False, server_default="json"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("started_at", sa.BigInteger),
    sa.Column("queue_name", sa.Text),
    sa.Column("executor_id", sa.Text),
    sa.Column("app_version", sa.Text, nullable=False),
    sa.Column("recovery_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("parent_workflow_id", sa.Text),
    sa.Column("forked_from", sa.Text),
    sa.Column("timeout_ms", sa.BigInteger),
    sa.Column("deadline_at", sa.BigInteger),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("deduplication_id", sa.Text),
    sa.Column("wait_topic", sa.Text),
    sa.Column("wait_deadline", sa.BigInteger),
    sa.Column("wait_step", sa.Integer),
    sa.Column("trace_context", sa.Text),
    # incremented by every change of ownership (claim, resume, dequeue, requeue, cancel): each
    # ownership-proving write names the epoch it runs under, so a body that lost the workflow and
    # got it back (same executor id) is still refused
    sa.Column("owner_epoch", sa.Integer, nullable=False, server_default="0"),
    # a Budget (JSON) set on this workflow, and the workflow whose budget governs this one (itself,
    # or the nearest ancestor that set one): usage is counted over that workflow's tree
    sa.Column("budget", sa.Text),
    sa.Column("budget_owner", sa.Text),
    sa.Index("workflows_status_executor", "status", "executor_id"),
    sa.Index("workflows_created_at", "created_at"),
    sa.Index("workflows_queue", "queue_name", "status", "priority", "created_at"),
    sa.Index("workflows_parent", "parent_workflow_id"),
    sa.Index(
        "workflows_dedup",
        "queue_name",
        "deduplication_id",
        unique=True,
        sqlite_where=sa.text("deduplication_id IS NOT NULL"),
        postgresql_where=sa.text("deduplication_id IS NOT NULL"),
    ),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("workflow_id", sa.Text, primary_key=True),
    sa.Column("step_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("output", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("serialization", sa.Text, nullable=False, server_default="json"),
    sa.Column("child_workflow_id", sa.Text),
    sa.Column("started_at", sa.BigInteger),
    sa.Column("completed_at", sa.BigInteger),
    # model-call steps: a JSON list of the usage their framework reported (empty: nothing reported)
    sa.Column("usage", sa.Text),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("message_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("destination_id", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("serialization", sa.Text, nullable=False, server_default="json"),
    sa.Column("idempotency_key", sa.Text),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("consumed_at", sa.BigInteger),
    sa.Column("consumed_by", sa.Text),
    sa.Index("messages_destination", "destination_id", "topic", "consumed_at", "message_id"),
    sa.Index(
        "messages_idempotency",
        "destination_id",
        "idempotency_key",
        unique=True,
        sqlite_where=sa.text("idempotency_key IS NOT NULL"),
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    ),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("workflow_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text),
    sa.Column("serialization", sa.Text, nullable=False, server_default="json"),
    sa.Column("step_id", sa.Integer),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

event_history = sa.Table(
    "event_history",
    metadata,
    sa.Column("workflow_id", sa.Text, primary_key=True),
    sa.Column("step_id", sa.Integer, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text),
    sa.Column("serialization", sa.Text, nullable=False, server_default="json"),
)

streams = sa.Table(
    "streams",
    metadata,
    sa.Column("workflow_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("offset", sa.Integer, primary_key=True),
    sa.Column("value", sa.Text),
    sa.Column("serialization", sa.Text, nullable=False, server_default="json"),
    sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("step_id", sa.Integer),
)

executors = sa.Table(
    "executors",
    metadata,
    sa.Column("executor_id", sa.Text, primary_key=True),
    sa.Column("hostname", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("app_version", sa.Text),
    sa.Column("started_at", sa.BigInteger),
    sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
    sa.Column("lease_ms", sa.BigInteger, nullable=False),
    sa.Column("workflow_names", sa.Text),
    sa.Column("queue_names", sa.Text),
)
