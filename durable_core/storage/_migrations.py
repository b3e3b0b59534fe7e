"""Versioned schema migrations, run at launch, safe when many processes launch at once.

Postgres serializes migrators with a transaction-scoped advisory lock; SQLite with its single
writer lock (`BEGIN IMMEDIATE`). A database written by a newer durable-agents is refused
rather than silently misread.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy import exc

from ..errors import DurableError
from . import _schema
from ._database import Database

__all__ = ["LATEST_VERSION", "migrate", "schema_version"]

Migration = Callable[[sa.Connection], None]


def _v1_core(conn: sa.Connection) -> None:
    _schema.metadata.create_all(conn, checkfirst=True)


def _v2_checkpoints(conn: sa.Connection) -> None:
    try:
        from .checkpoints import migrate_checkpoints
    except ImportError:  # the LangGraph checkpoint tables are optional
        return
    migrate_checkpoints(conn)


def _v3_checkpoint_versions(conn: sa.Connection) -> None:
    """No table changes: checkpoint bodies from here on keep channel versions as LangGraph gives
    them (a new, short version form). Recorded so that an older durable-agents, which would read
    those bodies wrongly, refuses the database instead."""


def _v4_owner_epoch(conn: sa.Connection) -> None:
    """workflows.owner_epoch: the ownership generation every ownership-proving write names."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("workflows")}
    if "owner_epoch" not in columns:  # databases created before v4 (v1 creates the current tables)
        conn.exec_driver_sql("ALTER TABLE workflows ADD COLUMN owner_epoch INTEGER NOT NULL DEFAULT 0")


def _v5_usage_and_budgets(conn: sa.Connection) -> None:
    """steps.usage (what a model call consumed), workflows.budget and workflows.budget_owner."""
    inspector = sa.inspect(conn)
    for table, column in (("steps", "usage"), ("workflows", "budget"), ("workflows", "budget_owner")):
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "core tables: workflows, steps, messages, events, streams, executors", _v1_core),
    (2, "LangGraph checkpoint tables", _v2_checkpoints),
    (3, "LangGraph checkpoint bodies keep channel versions as given", _v3_checkpoint_versions),
    (
        4,
        "workflows.owner_epoch: ownership generations, so a body that lost a workflow writes nothing",
        _v4_owner_epoch,
    ),
    (5, "usage of model-call steps; budgets over workflow trees", _v5_usage_and_budgets),
]
LATEST_VERSION = MIGRATIONS[-1][0]

_MIGRATION_TABLE = "durable_schema_migrations"


def schema_version(db: Database) -> int:
    """The database's schema version, read without a write lock (0: no durable tables yet)."""
    try:
        with db.read() as conn:
            return conn.exec_driver_sql(f"SELECT MAX(version) FROM {_MIGRATION_TABLE}").scalar() or 0
    except exc.DBAPIError as error:
        missing = isinstance(error, exc.OperationalError | exc.ProgrammingError)
        if missing and not error.connection_invalidated:
            return 0  # no migration table (a new database), or nothing we may read
        raise


def migrate(db: Database) -> int:
    """Bring the database to the latest schema version; return that version.

    An up-to-date database is only read (no write lock), so a read-only one opens too.
    """
    if schema_version(db) == LATEST_VERSION:
        return LATEST_VERSION

    def run() -> int:
        with db.write() as conn:
            db.sql_dialect.begin_migration(conn, db.schema)
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {_MIGRATION_TABLE} "
                "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            )
            current = conn.exec_driver_sql(f"SELECT MAX(version) FROM {_MIGRATION_TABLE}").scalar() or 0
            if current > LATEST_VERSION:
                raise DurableError(
                    f"The database {db.safe_url!r} has schema version {current}, newer than this "
                    f"durable-agents supports ({LATEST_VERSION}). Upgrade durable-agents on this machine."
                )
            for version, description, apply in MIGRATIONS:
                if version <= current:
                    continue
                apply(conn)
                conn.execute(
                    sa.text(
                        f"INSERT INTO {_MIGRATION_TABLE} (version, description, applied_at) "
                        "VALUES (:v, :d, :t)"
                    ),
                    {"v": version, "d": description, "t": int(time.time() * 1000)},
                )
            return LATEST_VERSION

    return db.retrying(run, what="schema migration")
