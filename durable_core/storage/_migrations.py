"""Versioned schema migrations, run at launch, safe when many processes launch at once.

Postgres serializes migrators with a transaction-scoped advisory lock; SQLite with its single
writer lock (`BEGIN IMMEDIATE`). A database written by a newer durable-agents is refused
rather than silently misread.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from ..errors import DurableError
from . import _schema
from ._database import Database

__all__ = ["LATEST_VERSION", "migrate"]

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


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "core tables: workflows, steps, messages, events, streams, executors", _v1_core),
    (2, "LangGraph checkpoint tables", _v2_checkpoints),
    (3, "LangGraph checkpoint bodies keep channel versions as given", _v3_checkpoint_versions),
]
LATEST_VERSION = MIGRATIONS[-1][0]

_MIGRATION_TABLE = "durable_schema_migrations"


def migrate(db: Database) -> int:
    """Bring the database to the latest schema version; return that version."""

    def run() -> int:
        with db.write() as conn:
            if db.dialect == "postgresql":
                conn.exec_driver_sql(
                    "SELECT pg_advisory_xact_lock(hashtext(%(key)s))",
                    {"key": f"durable_core:migrate:{db.schema}"},
                )
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"')
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
