"""Connections: one SQLAlchemy engine per database, tuned per dialect.

SQLite: a file in WAL mode, a busy timeout, `BEGIN IMMEDIATE` for writers (a deferred writer
that read first can fail with SQLITE_BUSY_SNAPSHOT, which no busy handler retries) and
`synchronous=FULL` unless the user trades durability for speed.

Async workflows that run alone in their engine write their SQLite checkpoints on their own event
loop (`Database.inline_writes`), sparing a hand-off to an IO thread and back: only one-statement
writes, only while the write lock is free at once (busy timeout 0) and recent commits took under
`INLINE_WRITE_LIMIT_SECONDS`; anything else raises `WriteWouldWait` before touching the database,
and the caller runs the same write on an IO thread.

PostgreSQL (psycopg 3): the engine's own schema through `search_path`, no pool pre-ping (a
dropped connection surfaces as a disconnect error, which `Database.retrying` absorbs), and a
second, autocommit pool for single-statement writes so a step costs one round trip. Async
workflows write those statements over their event loop's own `AsyncConnection` instead
(`Database.write_on_loop`, see `_loop_writes`), each wait bounded by `write_timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Generator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import make_url

from ..errors import DatabaseUnavailable, DuplicateKey
from ._dialects import NOTIFY_CHANNEL, SqlDialect, dialect_for
from ._loop_writes import AVAILABLE as _LOOP_WRITES_AVAILABLE
from ._loop_writes import LoopConnections, StatementTimedOut, await_on_loop, on_loop, run_on_loop
from ._raw import Fetch, PostgresRaw, RawConnections, SqliteRaw, Statements, WriteWouldWait, driver_disconnect

__all__ = [
    "INLINE_WRITE_LIMIT_SECONDS",
    "NOTIFY_CHANNEL",
    "Database",
    "Dialect",
    "WriteWouldWait",
    "is_memory_url",
    "parse_url",
    "redact_url",
    "sqlite_file",
]

Dialect = Literal["sqlite", "postgresql"]
T = TypeVar("T")
log = logging.getLogger("durable_core.storage")

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Inline writes stop while a one-statement SQLite write takes this long on average (a slow disk's
# fsync, lock waits under concurrency): an event loop must not stall on them.
INLINE_WRITE_LIMIT_SECONDS = 0.002

_inline: ContextVar[bool] = ContextVar("durable_core_inline_write", default=False)

# SQLite checkpoints its WAL into the database file once it holds this many pages (SQLite's own
# default is 1000, 4 MB). A commit that appends past the WAL's end makes the file system record a
# new size, which on ext4 costs every commit of a fresh WAL up to twice a commit that overwrites
# space the WAL already has; a checkpoint lets the WAL start over in that space. A WAL that stays
# small is reused within a few runs of a launch instead of after hundreds (SQLite deletes it when
# the last connection closes), and each checkpoint is short.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 100


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


_SQLITE_URL_HELP = (
    "SQLite URLs have three slashes before a relative path ('sqlite:///agents.db', a file in the "
    "current directory) and four before an absolute one ('sqlite:////var/data/agents.db')"
)
_MEMORY = ("", ":memory:")


def parse_url(url: str) -> sa.URL:
    """The SQLAlchemy URL of a database URL, checked, with the forms newcomers meet normalized.

    ``postgres://`` (what hosting providers hand out) and ``postgresql://`` mean PostgreSQL
    through psycopg 3; ``sqlite://`` and ``sqlite:///:memory:`` an in-memory database. Raises
    `DatabaseUnavailable` with the right form for a URL that cannot work (``sqlite://agents.db``).
    """
    safe = redact_url(url)
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise DatabaseUnavailable(
            f"Invalid database URL {safe!r}: expected e.g. 'sqlite:///durable.db' or "
            "'postgresql+psycopg://user:password@host:5432/dbname'."
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.host:
            right = f"sqlite:///{parsed.host}{'/' + parsed.database if parsed.database else ''}"
            raise DatabaseUnavailable(
                f"Invalid SQLite URL {safe!r}: {parsed.host!r} is read as a host name. "
                f"{_SQLITE_URL_HELP}; did you mean {right!r}?"
            )
        unknown = set(parsed.query) - {"mode"}
        if unknown or parsed.query.get("mode", "ro") != "ro":
            raise DatabaseUnavailable(
                f"Unsupported SQLite URL option in {safe!r}: the only one is '?mode=ro' (open read-only)."
            )
        return parsed
    if backend in ("postgresql", "postgres"):
        driver = parsed.drivername.partition("+")[2] or "psycopg"
        if driver != "psycopg":
            raise DatabaseUnavailable(
                f"Unsupported Postgres driver {driver!r} in {safe!r}: use 'postgresql+psycopg://' "
                "(psycopg 3), or plain 'postgresql://' / 'postgres://'."
            )
        return parsed.set(drivername="postgresql+psycopg")
    raise DatabaseUnavailable(
        f"Unsupported database {safe!r}: durable_core supports SQLite ('sqlite:///durable.db') and "
        "PostgreSQL ('postgresql://user:password@host:5432/dbname')."
    )


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL (None for PostgreSQL and in-memory SQLite); checks the URL."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or (parsed.database or "") in _MEMORY:
        return None
    return parsed.database


def is_memory_url(url: str) -> bool:
    parsed = parse_url(url)
    return parsed.get_backend_name() == "sqlite" and (parsed.database or "") in _MEMORY


class Database:
    """The engine's database: connection pools and transaction helpers for the storage modules.

    Args:
        url: a SQLAlchemy URL, ``sqlite:///path.db`` or ``postgresql+psycopg://user@host/db``.
        schema: the Postgres schema holding the tables (ignored on SQLite).
        sqlite_synchronous: ``"FULL"`` (a committed step survives power loss) or ``"NORMAL"``.
        retry_seconds: how long a statement is retried while the server is unreachable.
        write_timeout: PostgreSQL, writes made from an event loop: seconds one statement may take
            (lock waits included) before it is abandoned and retried as an outage.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = "durable",
        sqlite_synchronous: str = "FULL",
        pool_size: int = 10,
        retry_seconds: float = 120.0,
        write_timeout: float = 10.0,
    ) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"invalid schema name {schema!r}: use letters, digits and underscores")
        if sqlite_synchronous.upper() not in {"FULL", "NORMAL", "OFF", "EXTRA"}:
            raise ValueError("sqlite_synchronous must be 'FULL', 'NORMAL', 'EXTRA' or 'OFF'")
        self.url = url
        self.safe_url = redact_url(url)
        self._sqlite_path: str | None = None
        self._sqlite_synchronous = "FULL"
        self.schema = schema
        self.retry_seconds = retry_seconds
        self._loop_writes: LoopConnections | None = None
        parsed = parse_url(url)
        self.read_only = False
        self._memory_dir: str | None = None
        self._sqlite_uri = False
        if parsed.get_backend_name() == "sqlite":
            self.dialect: Dialect = "sqlite"
            self._sqlite_path = self._sqlite_target(parsed)
            self._sqlite_synchronous = sqlite_synchronous.upper()
            self.sa_engine = self._sqlite_engine(self._sqlite_path, self._sqlite_synchronous)
            self.autocommit_engine = self.sa_engine
            self.raw: RawConnections = SqliteRaw(
                self.sa_engine,
                lambda busy_ms: self._sqlite_connect(busy_timeout_ms=busy_ms),
                writable=not self.read_only,
            )
        else:
            self.dialect = "postgresql"
            self.sa_engine = self._postgres_engine(parsed, pool_size, autocommit=False)
            self.autocommit_engine = self._postgres_engine(parsed, pool_size, autocommit=True)
            self.raw = PostgresRaw(self.autocommit_engine)
            if _LOOP_WRITES_AVAILABLE:
                self._loop_writes = LoopConnections(
                    self._postgres_conninfo(parsed, write_timeout), timeout=write_timeout, keep=pool_size
                )
        self.sql_dialect: SqlDialect = dialect_for(self.dialect)
        """What differs in the stores' SQL between SQLite and PostgreSQL."""
        self.migrated_extensions: set[str] = set()
        """Storage extension tracks brought up to date through this Database (`migrate_extension`)."""
        self._closed = False

    # -- engines -------------------------------------------------------------------------

    def _sqlite_target(self, parsed: sa.URL) -> str:
        """The file (or ``file:`` URI when read-only) the connections open; checks it can be opened.

        In-memory (``sqlite://``, ``sqlite:///:memory:``): a private database file in a new
        temporary directory (on ``/dev/shm``, memory, where it exists), removed by `dispose`, so
        every connection of this engine sees the same data (a ``:memory:`` database is one per
        connection) and nothing is left behind.
        """
        database = parsed.database or ""
        if database in _MEMORY:
            shm = "/dev/shm"
            parent = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
            self._memory_dir = tempfile.mkdtemp(prefix="durable-memory-", dir=parent)
            return os.path.join(self._memory_dir, "durable.db")
        path = os.path.abspath(database)
        directory = os.path.dirname(path)
        where = f"Cannot open the SQLite database {self.safe_url!r} ({path})"
        if not os.path.isdir(directory):
            raise DatabaseUnavailable(f"{where}: directory {directory!r} does not exist.")
        if parsed.query.get("mode") == "ro":
            if not os.path.isfile(path):
                raise DatabaseUnavailable(f"{where}: no database file exists there.")
            self.read_only = True
            self._sqlite_uri = True
            return self._read_only_uri(path)
        if not os.path.exists(path):
            if not os.access(directory, os.W_OK | os.X_OK):
                raise DatabaseUnavailable(
                    f"{where}: the file does not exist and this process cannot create files in "
                    f"{directory!r} (permission denied). Choose a writable directory."
                )
        elif not os.access(path, os.R_OK | os.W_OK) or not (
            os.access(directory, os.W_OK | os.X_OK)
            or all(os.access(path + suffix, os.R_OK | os.W_OK) for suffix in ("-wal", "-shm"))
        ):
            raise DatabaseUnavailable(
                f"{where}: this process cannot write "
                + (
                    f"the file {path!r}"
                    if not os.access(path, os.W_OK)
                    else f"in the directory {directory!r}"
                )
                + " (permission denied; SQLite also needs to create its -wal and -shm files next to it). "
                "To only read it, open it with '?mode=ro' (e.g. 'sqlite:///agents.db?mode=ro')."
            )
        return path

    def _read_only_uri(self, path: str) -> str:
        """A read-only ``file:`` URI for `path`: ``mode=ro``, or ``immutable=1`` when SQLite cannot
        read it that way (a WAL database in a directory this process cannot write, without -shm file)."""
        uri = f"file:{urllib.parse.quote(path)}?mode=ro"
        try:
            probe = sqlite3.connect(uri, uri=True, timeout=5.0)
            try:
                probe.execute("SELECT count(*) FROM sqlite_master").fetchall()
            finally:
                probe.close()
        except sqlite3.DatabaseError as error:
            immutable = uri + "&immutable=1"
            try:
                probe = sqlite3.connect(immutable, uri=True)
                try:
                    probe.execute("SELECT count(*) FROM sqlite_master").fetchall()
                finally:
                    probe.close()
            except sqlite3.DatabaseError:
                raise DatabaseUnavailable(
                    f"Cannot read the SQLite database {self.safe_url!r} ({path}): {error}."
                ) from None
            return immutable
        return uri

    def _sqlite_engine(self, target: str, synchronous: str) -> sa.Engine:
        read_only, uri = self.read_only, self._sqlite_uri

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(target, uri=uri, check_same_thread=False, timeout=30.0)

        engine = sa.create_engine(
            "sqlite://",
            creator=connect,
            poolclass=sa.pool.QueuePool,
            pool_size=8,
            max_overflow=32,
            pool_pre_ping=False,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:  # pyright: ignore[reportUnusedFunction]
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            if not read_only:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={synchronous}")
                cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:  # pyright: ignore[reportUnusedFunction]
            mode = "IMMEDIATE" if conn.get_execution_options().get("durable_write") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    def _postgres_engine(self, parsed: sa.URL, pool_size: int, *, autocommit: bool) -> sa.Engine:
        options = f"-c search_path={self.schema},public"
        kwargs: dict[str, Any] = {}
        if autocommit:
            kwargs["isolation_level"] = "AUTOCOMMIT"
        return sa.create_engine(
            parsed,
            connect_args={"options": options, "connect_timeout": 10, "application_name": "durable-agents"},
            pool_size=pool_size,
            max_overflow=20,
            # the most recently used connection first: hot paths keep landing on connections
            # that already hold their prepared statements, and surplus ones can idle out
            pool_use_lifo=True,
            pool_pre_ping=False,
            pool_reset_on_return=None if autocommit else "rollback",
            **kwargs,
        )

    def _postgres_conninfo(self, parsed: sa.URL, statement_timeout: float) -> str:
        """The libpq connection string of the event-loop connections: the engine's schema, and
        a server-side bound on every statement."""
        from psycopg.conninfo import make_conninfo

        args: dict[str, Any] = {k: v for k, v in parsed.query.items() if isinstance(v, str)}
        for key, value in (
            ("host", parsed.host),
            ("port", parsed.port),
            ("user", parsed.username),
            ("password", parsed.password),
            ("dbname", parsed.database),
        ):
            if value is not None:
                args[key] = str(value)
        args["options"] = (
            f"-c search_path={self.schema},public -c statement_timeout={max(1, int(statement_timeout * 1000))}"
        )
        args["application_name"] = "durable-agents"
        args["connect_timeout"] = str(max(2, int(statement_timeout)))
        return make_conninfo(**args)

    @property
    def write_timeout(self) -> float | None:
        """PostgreSQL: the bound on one statement written from an event loop (None on SQLite)."""
        return None if self._loop_writes is None else self._loop_writes.timeout

    @write_timeout.setter
    def write_timeout(self, seconds: float) -> None:
        """Change the bound (connections opened from now on get the new server-side timeout)."""
        if self._loop_writes is not None:
            self._loop_writes.timeout = seconds
            self._loop_writes.conninfo = self._postgres_conninfo(parse_url(self.url), seconds)
            self._loop_writes.close_idle()

    def loop_connection_count(self) -> int:
        """Open event-loop connections (PostgreSQL), for tests and diagnostics."""
        return 0 if self._loop_writes is None else self._loop_writes.open_count()

    @property
    def sqlite_file(self) -> str | None:
        """The SQLite file the engine uses (a private temporary one for an in-memory URL); None on
        PostgreSQL and for a read-only database, which is opened by ``file:`` URI."""
        return None if self._sqlite_uri else self._sqlite_path

    # -- transactions --------------------------------------------------------------------

    @property
    def write_seconds(self) -> float:
        """SQLite: the moving average of one-statement writes (seconds), lock waits included."""
        return self.raw.write_seconds if isinstance(self.raw, SqliteRaw) else 0.0

    @write_seconds.setter
    def write_seconds(self, seconds: float) -> None:
        if isinstance(self.raw, SqliteRaw):
            self.raw.write_seconds = seconds

    @property
    def writes_inline(self) -> bool:
        """Whether `inline_writes` may be tried now: a SQLite file whose recent writes were fast."""
        return isinstance(self.raw, SqliteRaw) and self.raw.write_seconds < INLINE_WRITE_LIMIT_SECONDS

    @contextmanager
    def inline_writes(self) -> Generator[None, None, None]:
        """Within this block, one-statement writes run on this thread without waiting for SQLite's
        write lock; any other write raises `WriteWouldWait` before it starts."""
        token = _inline.set(True)
        try:
            yield
        finally:
            _inline.reset(token)

    async def write_on_loop(self, fn: Callable[[], T], *, alone: bool) -> T:
        """Run a workflow's checkpoint write `fn` (synchronous store calls) from its event loop.

        PostgreSQL: its one-statement writes go over this loop's `AsyncConnection` while the loop
        runs other tasks. SQLite, only when the workflow runs `alone` and recent writes were fast:
        inline on the loop, without waiting for the write lock. Anything else (a multi-statement
        transaction, a read on PostgreSQL, a busy SQLite lock) raises `WriteWouldWait` before it
        touches the database: the caller runs `fn` again on an IO thread (every write is idempotent).
        """
        if self._loop_writes is not None:
            return await run_on_loop(fn)
        if alone and self.writes_inline:
            token = _inline.set(True)  # `inline_writes()`, without a generator per checkpoint
            try:
                return fn()
            finally:
                _inline.reset(token)
        raise WriteWouldWait("this write runs on an IO thread")

    @contextmanager
    def write(self) -> Generator[sa.Connection, None, None]:
        """One write transaction (BEGIN IMMEDIATE on SQLite), committed on success."""
        if _inline.get() or on_loop():
            raise WriteWouldWait("a multi-statement transaction runs on an IO thread")
        with self.sa_engine.connect() as conn:
            conn.execution_options(durable_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Generator[sa.Connection, None, None]:
        """A read-only transaction."""
        if on_loop():
            raise WriteWouldWait("a PostgreSQL read runs on an IO thread")
        with self.sa_engine.connect() as conn, conn.begin():
            yield conn

    def write_one(self, statement: str, params: dict[str, Any]) -> int:
        """Run one write statement in its own transaction; return the row count.

        The hot path (a step, a workflow start or finish): straight on a driver connection,
        skipping SQLAlchemy's per-statement machinery. On Postgres it is a single autocommit round
        trip (psycopg prepares it after a few uses), over the event loop's own connection when
        called from `write_on_loop`; on SQLite one autocommit statement.
        """
        if on_loop():
            assert self._loop_writes is not None
            return await_on_loop(self._loop_writes.execute(statement, params))
        return self.raw.write_one(statement, params, inline=_inline.get())

    def read_rows(self, statement: str, params: dict[str, Any]) -> list[Any]:
        """Run one read statement (its own snapshot) on a raw DBAPI connection; return its rows.

        For small reads made often, such as the queue dispatcher's poll (every 20 ms on SQLite),
        where SQLAlchemy's per-statement machinery would cost more than the query.
        """
        if on_loop():
            raise WriteWouldWait("a PostgreSQL read runs on an IO thread")
        return self.raw.read_rows(statement, params)

    def execute(self, statements: Statements, *, what: str) -> None:
        """Run write statements as one transaction on a raw driver connection, retried while the
        database is unreachable (they must be idempotent). SQLite: a group commit with concurrent
        callers; Postgres: one statement is one autocommit round trip."""
        if _inline.get() or on_loop():
            raise WriteWouldWait("a raw multi-statement write runs on an IO thread")
        self.retrying(lambda: self.raw.execute(statements), what=what)

    def read_with(self, run: Callable[[Fetch], T], *, what: str, snapshot: bool = False) -> T:
        """`run(fetch)` on a raw driver connection, where `fetch(statement, params)` runs one read
        statement and returns its rows; with `snapshot` they see one snapshot. Retried."""
        if on_loop():
            raise WriteWouldWait("a PostgreSQL read runs on an IO thread")
        return self.retrying(lambda: self.raw.read_with(run, snapshot=snapshot), what=what)

    @contextmanager
    def write_serialized(self) -> Generator[sa.Connection, None, None]:
        """A `write` transaction that also holds the group commit's lock (SQLite), so it never meets
        the group commit's writer in SQLite's busy handler."""
        with self.raw.serialized(), self.write() as conn:
            yield conn

    def _sqlite_connect(self, *, busy_timeout_ms: int = 30000) -> sqlite3.Connection:
        assert self._sqlite_path is not None
        conn = sqlite3.connect(
            self._sqlite_path,
            uri=self._sqlite_uri,
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout_ms / 1000,
        )
        if not self.read_only:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._sqlite_synchronous}")
            conn.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        return conn

    def retrying(self, operation: Callable[[], T], *, what: str = "database operation") -> T:
        """Run `operation`, retrying while the database is unreachable (a server restart, a lock storm).

        Operations passed here must be idempotent: a retry may follow a commit whose
        acknowledgement was lost.
        """
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            try:
                return operation()
            except Exception as error:
                transient = _is_transient(error)
                if not transient and _is_unique_violation(error):
                    raise DuplicateKey(f"{what}: a unique key is taken ({_driver_error(error)})") from error
                if not transient or time.monotonic() > deadline or self._closed:
                    if transient:
                        raise DatabaseUnavailable(
                            f"{what} failed: database {self.safe_url!r} unreachable for "
                            f"{self.retry_seconds:.0f}s: {getattr(error, 'orig', error)}"
                        ) from error
                    raise
                log.warning(
                    "%s: database unavailable (%s); retrying in %.2fs",
                    what,
                    getattr(error, "orig", error),
                    delay,
                )
                if on_loop():  # never block the event loop: it keeps running while we wait
                    await_on_loop(asyncio.sleep(delay))
                else:
                    time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def check_connection(self) -> None:
        """Fail fast, with a clear message, when the database cannot be reached at all."""
        try:
            with self.sa_engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
                conn.rollback()
        except exc.DBAPIError as error:
            if self.dialect == "sqlite":
                raise DatabaseUnavailable(
                    f"Cannot open the SQLite database {self.safe_url!r} ({self._sqlite_path}): {error.orig}. "
                    "Check that the path is a SQLite file this process can read and write."
                ) from None
            raise DatabaseUnavailable(
                f"Cannot connect to the database {self.safe_url!r}: {error.orig}. Check that the server "
                "is running and the URL (host, port, database name, user) is right; set it with "
                "Engine(database_url=...) or the DURABLE_DATABASE_URL environment variable."
            ) from None

    def dispose(self) -> None:
        self._closed = True
        if self._loop_writes is not None:
            self._loop_writes.close()
        self.raw.close()
        self.sa_engine.dispose()
        if self.autocommit_engine is not self.sa_engine:
            self.autocommit_engine.dispose()
        if self._memory_dir is not None:
            shutil.rmtree(self._memory_dir, ignore_errors=True)

    def sql(self, statement: str) -> str:
        """Adapt a statement written with ``:name`` parameters to the driver's paramstyle."""
        return self.sql_dialect.sql(statement)


_TRANSIENT_MARKERS = (
    "database is locked",
    "connection",
    "server closed",
    "terminating",
    "shutting down",
    "starting up",
    "could not receive",
    "consuming input failed",
    "the database system is",
    "database or disk is full",  # SQLite on a full disk: retried, and never a workflow's outcome
    "could not extend file",  # PostgreSQL on a full disk
    "no space left on device",
)


def _driver_error(error: BaseException) -> BaseException:
    return error.orig if isinstance(error, exc.DBAPIError) and error.orig is not None else error


def _is_unique_violation(error: BaseException) -> bool:
    """A driver's unique-constraint violation (SQLAlchemy-wrapped or raw)."""
    raw = _driver_error(error)
    if isinstance(raw, sqlite3.IntegrityError):
        return "UNIQUE constraint failed" in str(raw) or "PRIMARY KEY" in str(raw)
    return getattr(raw, "sqlstate", None) == "23505"  # psycopg: unique_violation


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, StatementTimedOut):
        return True
    if not isinstance(error, exc.DBAPIError):
        module = type(error).__module__
        if module.startswith("psycopg"):
            return driver_disconnect(error)
        if module == "sqlite3":
            text = str(error).lower()
            return "database is locked" in text or "database or disk is full" in text
        return False
    if error.connection_invalidated:
        return True
    if isinstance(error, exc.OperationalError):
        text = str(error.orig).lower()
        return any(marker in text for marker in _TRANSIENT_MARKERS)
    return isinstance(error, exc.InterfaceError)
