"""What differs between SQLite and PostgreSQL in the statements of the stores, one class each.

The stores write their SQL once and ask `db.sql_dialect` for the few places where the databases
differ (row locks, advisory locks, NOTIFY, JSON, paramstyle); none of them branches on the
dialect's name.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql.selectable import GenerativeSelect

__all__ = ["NOTIFY_CHANNEL", "PostgresDialect", "SqlDialect", "SqliteDialect", "dialect_for"]

NOTIFY_CHANNEL = "durable_core"
"""The Postgres channel of every wake-up (`listener.Listener` LISTENs on it)."""

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
S = TypeVar("S", bound=GenerativeSelect)


class SqlDialect:
    """The SQL of one database kind, as the stores need it."""

    name: ClassVar[str]
    in_process: ClassVar[bool]
    """An embedded database: a statement costs no round trip (several small ones are cheap)."""
    writable_ctes: ClassVar[bool]
    """Data-modifying statements in WITH (several writes in one atomic statement)."""
    notifies: ClassVar[bool]
    """Other processes' waiters are woken by NOTIFY (else they poll)."""
    lock_owned_row: ClassVar[str]
    """Appended to the SELECT that proves ownership inside a write transaction: locks the workflow
    row so a concurrent cancel or takeover cannot slip between the check and the write."""

    def sql(self, statement: str) -> str:
        """A statement written with ``:name`` parameters, in the driver's paramstyle."""
        return statement

    def insert_ignore(self, table: sa.Table) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING."""
        raise NotImplementedError

    def notify(self, conn: sa.Connection, payload: str) -> None:
        """Wake other processes' waiters on `payload` when `conn`'s transaction commits."""

    def lock_for_claims(self, conn: sa.Connection, key: str) -> None:
        """Serialize, until the transaction ends, the claimers that share `key`."""

    def skip_locked(self, select: S) -> S:
        """`select` locking its rows, skipping rows another transaction holds."""
        return select

    def json_key_equals(self, column: str, key: str, value: Any, name: str, params: dict[str, Any]) -> str:
        """A condition: the JSON text in `column` has `value` at top-level `key` (parameters
        ``:<name>_key`` and ``:<name>_value`` are added to `params`)."""
        raise NotImplementedError

    def begin_migration(self, conn: sa.Connection, schema: str) -> None:
        """Serialize migrators and create the engine's schema (inside the migration transaction)."""


class SqliteDialect(SqlDialect):
    name = "sqlite"
    in_process = True
    writable_ctes = False
    notifies = False
    lock_owned_row = ""  # one writer at a time: BEGIN IMMEDIATE already excludes the others

    def insert_ignore(self, table: sa.Table) -> Any:
        from sqlalchemy.dialects.sqlite import insert

        return insert(table).on_conflict_do_nothing()

    def json_key_equals(self, column: str, key: str, value: Any, name: str, params: dict[str, Any]) -> str:
        params[f"{name}_key"] = '$."' + key.replace('"', '""') + '"'
        params[f"{name}_value"] = value
        return f"json_extract({column}, :{name}_key) = :{name}_value"


class PostgresDialect(SqlDialect):
    name = "postgresql"
    in_process = False
    writable_ctes = True
    notifies = True
    lock_owned_row = " FOR SHARE"

    def sql(self, statement: str) -> str:
        return _NAMED.sub(r"%(\1)s", statement.replace("%", "%%"))

    def insert_ignore(self, table: sa.Table) -> Any:
        from sqlalchemy.dialects.postgresql import insert

        return insert(table).on_conflict_do_nothing()

    def notify(self, conn: sa.Connection, payload: str) -> None:
        conn.exec_driver_sql(f"SELECT pg_notify('{NOTIFY_CHANNEL}', %(p)s)", {"p": payload})

    def lock_for_claims(self, conn: sa.Connection, key: str) -> None:
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%(k)s))", {"k": key})

    def skip_locked(self, select: S) -> S:
        return select.with_for_update(skip_locked=True)

    def json_key_equals(self, column: str, key: str, value: Any, name: str, params: dict[str, Any]) -> str:
        params[f"{name}_key"] = key
        params[f"{name}_value"] = json.dumps(value)
        return f"(CAST({column} AS jsonb) -> :{name}_key) = CAST(:{name}_value AS jsonb)"

    def begin_migration(self, conn: sa.Connection, schema: str) -> None:
        self.lock_for_claims(conn, f"durable_core:migrate:{schema}")
        conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


def dialect_for(name: str) -> SqlDialect:
    return PostgresDialect() if name == "postgresql" else SqliteDialect()
