"""Versioned schema migrations, run at launch, safe when many processes launch at once.

Postgres serializes migrators with a transaction-scoped advisory lock; SQLite with its single
writer lock (`BEGIN IMMEDIATE`). A database written by a newer durable-agents is refused
rather than silently misread.

Two kinds of tracks: the core's (`MIGRATIONS`, its versions in `durable_schema_migrations`), run
by `migrate` at launch; and one per storage extension (`Extension`: the LangGraph checkpoint
tables), its versions in `durable_extension_migrations` under the extension's track name, run
by `migrate_extension` when the extension's store is first used. An extension's tables never
bump the core's version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import exc

from ..errors import DurableError
from . import _schema
from ._database import Database

__all__ = [
    "LATEST_VERSION",
    "Extension",
    "extension_version",
    "migrate",
    "migrate_extension",
    "schema_version",
]

Migration = Callable[[sa.Connection], None]


def _v1_core(conn: sa.Connection) -> None:
    _schema.metadata.create_all(conn, checkfirst=True)


def _v2_checkpoints(conn: sa.Connection) -> None:
    """Formerly the LangGraph checkpoint tables: now the "langgraph-checkpoints" extension track
    (`checkpoints.CHECKPOINTS`). Kept as a version so existing databases keep their numbering."""


def _v3_checkpoint_versions(conn: sa.Connection) -> None:
    """Formerly a marker of the checkpoint body format: now version 2 of the extension track."""


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
    (2, "LangGraph checkpoint tables (moved to the extension track)", _v2_checkpoints),
    (3, "LangGraph checkpoint bodies (moved to the extension track)", _v3_checkpoint_versions),
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


# -- storage extensions --------------------------------------------------------------------------

_EXTENSION_TABLE = "durable_extension_migrations"


@dataclass(frozen=True)
class Extension:
    """A storage extension's own migration track: `track` names it, `migrations` are its
    (version, description, apply) steps, versions 1, 2, ... in order."""

    track: str
    migrations: Sequence[tuple[int, str, Migration]]

    @property
    def latest(self) -> int:
        return self.migrations[-1][0]


def extension_version(db: Database, track: str) -> int:
    """The version of an extension track in the database, read without a write lock (0: none)."""
    try:
        with db.read() as conn:
            return (
                conn.execute(
                    sa.text(f"SELECT MAX(version) FROM {_EXTENSION_TABLE} WHERE track = :track"),
                    {"track": track},
                ).scalar()
                or 0
            )
    except exc.DBAPIError as error:
        missing = isinstance(error, exc.OperationalError | exc.ProgrammingError)
        if missing and not error.connection_invalidated:
            return 0  # no extension has migrated yet
        raise


def migrate_extension(db: Database, extension: Extension) -> int:
    """Bring an extension's tables to its latest version (once per `Database`); return that version.

    An up-to-date track is only read, so a read-only database opens too. A track written by a
    newer durable-agents is refused.
    """
    done = db.migrated_extensions
    if extension.track in done:
        return extension.latest
    if db.read_only or extension_version(db, extension.track) == extension.latest:
        done.add(extension.track)
        return extension.latest

    def run() -> int:
        with db.write() as conn:
            db.sql_dialect.begin_migration(conn, db.schema)
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {_EXTENSION_TABLE} (track TEXT NOT NULL, version INTEGER NOT NULL, "
                "description TEXT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (track, version))"
            )
            current = (
                conn.execute(
                    sa.text(f"SELECT MAX(version) FROM {_EXTENSION_TABLE} WHERE track = :track"),
                    {"track": extension.track},
                ).scalar()
                or 0
            )
            if current > extension.latest:
                raise DurableError(
                    f"The database {db.safe_url!r} has version {current} of the {extension.track!r} tables, newer "
                    f"than this durable-agents supports ({extension.latest}). Upgrade durable-agents on this machine."
                )
            for version, description, apply in extension.migrations:
                if version <= current:
                    continue
                apply(conn)
                conn.execute(
                    sa.text(
                        f"INSERT INTO {_EXTENSION_TABLE} (track, version, description, applied_at) "
                        "VALUES (:track, :v, :d, :t)"
                    ),
                    {"track": extension.track, "v": version, "d": description, "t": int(time.time() * 1000)},
                )
            return extension.latest

    version = db.retrying(run, what=f"{extension.track} schema migration")
    done.add(extension.track)
    return version
