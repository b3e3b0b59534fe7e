"""The raw fast paths under `Database`: statements straight on driver connections, one class per
dialect (SQLAlchemy's per-statement machinery costs more than a hot-path statement).

Every store reaches them through `Database` (`write_one`, `read_rows`, `execute`, `read_with`),
which adds the retries and the event-loop writes; nothing else opens driver connections.

- `SqliteRaw`: sqlite3 connections from free lists of our own (a pool checkout through SQLAlchemy
  costs about a tenth of a step), inline ones without busy timeout, the moving average of write
  times that gates inline writes, and the group commit of multi-statement writes (one writer
  connection, one lock per database: concurrent writers of one process share a commit, as the
  stock LangGraph SqliteSaver does, instead of meeting in SQLite's busy handler).
- `PostgresRaw`: cursors on the autocommit pool; one statement is one round trip, several run in
  an explicit transaction; reads are prepared on first use.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc

__all__ = ["Fetch", "PostgresRaw", "RawConnections", "SqliteRaw", "Statements", "WriteWouldWait"]

T = TypeVar("T")
Statements = Sequence[tuple[str, Any]]
Fetch = Callable[[str, Any], list[Any]]
"""`fetch(statement, params)`: run one read statement, return its rows."""

_WRITE_AVERAGE_WEIGHT = 0.1


class WriteWouldWait(Exception):
    """An inline write could not run at once (the lock is taken, or it is not a one-statement
    SQLite write). Nothing was written: the caller runs it again on an IO thread."""


class RawConnections:
    """What `Database` needs from a dialect's raw connections."""

    def write_one(self, statement: str, params: dict[str, Any], *, inline: bool) -> int:
        raise NotImplementedError

    def read_rows(self, statement: str, params: Any) -> list[Any]:
        raise NotImplementedError

    def execute(self, statements: Statements) -> None:
        """Run `statements` as one transaction, committed before returning."""
        raise NotImplementedError

    def read_with(self, run: Callable[[Fetch], T], *, snapshot: bool) -> T:
        """`run(fetch)`; with `snapshot` every statement sees one snapshot."""
        raise NotImplementedError

    def serialized(self) -> contextlib.AbstractContextManager[Any]:
        """Held around a multi-statement write that must not meet the group commit in a busy wait."""
        return contextlib.nullcontext()

    def close(self) -> None:
        pass


def wrap_driver_error(engine: sa.Engine, statements: Statements, error: Exception) -> Exception:
    """A driver's error as SQLAlchemy's DBAPIError (what the SQLAlchemy paths raise), so callers and
    the retry loop judge one kind of error."""
    statement = statements[0][0] if statements else ""
    return exc.DBAPIError.instance(
        statement, None, error, engine.dialect.loaded_dbapi.Error, dialect=engine.dialect, ismulti=False
    )


class _PendingWrite:
    """Statements queued for the SQLite group commit, and what became of them."""

    __slots__ = ("done", "error", "statements")

    def __init__(self, statements: Statements) -> None:
        self.statements = statements
        self.done = False
        self.error: BaseException | None = None


class SqliteRaw(RawConnections):
    def __init__(
        self, engine: sa.Engine, connect: Callable[[int], sqlite3.Connection], *, writable: bool
    ) -> None:
        self.engine = engine
        self._connect = connect
        self.writable = writable
        self._free: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._inline_free: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        # moving average of one-statement writes (seconds), lock waits included, isolated spikes left out
        self.write_seconds = 0.0
        self._last_write = 0.0  # the latest write's own time (see `note_write`)
        self._closed = False
        # the group commit: one writer connection, one lock
        self._lock = threading.Lock()
        self._writer: Any = None
        self._pending: list[_PendingWrite] = []
        self._pending_guard = threading.Lock()

    # -- one statement -------------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self, *, inline: bool = False) -> Generator[sqlite3.Connection, None, None]:
        """A sqlite3 connection (autocommit) from our own free list, opened with the engine's
        pragmas; `inline` ones (a list of their own) have no busy timeout."""
        free = self._inline_free if inline else self._free
        try:
            conn = free.get_nowait()
        except queue.Empty:
            conn = self._connect(0 if inline else 30000)
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        if self._closed:
            conn.close()
        else:
            free.put(conn)

    def write_one(self, statement: str, params: dict[str, Any], *, inline: bool) -> int:
        # One autocommit statement: a write statement takes SQLite's write lock when it starts
        # (as BEGIN IMMEDIATE would, waiting out busy_timeout) and commits when it ends, all in
        # one call that releases the GIL once instead of three times. Inline, the connection never
        # waits for the lock, and a failed statement, which left nothing behind, is redone by the
        # caller on an IO thread (with the busy timeout and the retries of `retrying`).
        started = time.perf_counter()
        # `connection(inline=...)`, spelled out: this runs for every step
        free = self._inline_free if inline else self._free
        try:
            conn = free.get_nowait()
        except queue.Empty:
            conn = self._connect(0 if inline else 30000)
        try:
            count = conn.execute(statement, params).rowcount
        except BaseException as error:
            conn.close()
            if inline and isinstance(error, sqlite3.Error):
                raise WriteWouldWait(str(error)) from error
            raise
        if self._closed:
            conn.close()
        else:
            free.put(conn)
        self.note_write(time.perf_counter() - started)
        return count

    def note_write(self, seconds: float) -> None:
        # A slow commit among fast ones (a WAL checkpoint, a hiccup of the disk) moves the average
        # by no more than the commit before it took: only commits slow twice in a row (a slow disk,
        # lock waits under concurrency) take the writes off the event loop, where one spike would
        # otherwise keep them off for the next dozen writes.
        # Unlocked: a lost update between two threads only nudges an average.
        sample = seconds if seconds < self._last_write else self._last_write
        self._last_write = seconds
        self.write_seconds += (sample - self.write_seconds) * _WRITE_AVERAGE_WEIGHT

    def read_rows(self, statement: str, params: Any) -> list[Any]:
        with self.connection() as conn:
            return conn.execute(statement, params).fetchall()

    # -- several statements: the group commit ------------------------------------------------

    def serialized(self) -> contextlib.AbstractContextManager[Any]:
        return self._lock

    def execute(self, statements: Statements) -> None:
        """Commit `statements` as (part of) one transaction before returning: a group commit.

        Callers queue their statements, then take the writer lock; the first to get it commits
        everything queued so far in one transaction (one fsync), and the callers whose work it
        committed return as soon as they get the lock. Every call still returns only once its
        statements are durable; concurrent callers merely share a commit.
        """
        item = _PendingWrite(statements)
        with self._pending_guard:
            self._pending.append(item)
        with self._lock:
            if not item.done:
                with self._pending_guard:
                    batch, self._pending = self._pending, []
                self._commit(batch)
        if item.error is not None:
            raise item.error

    def _commit(self, batch: list[_PendingWrite]) -> None:
        """Under the writer lock: one transaction for the batch; each item is marked done."""
        conn = self._writer_connection()
        try:
            if len(batch) == 1 and len(batch[0].statements) == 1:
                # one statement in autocommit mode is its own write transaction: one driver call
                conn.execute(*batch[0].statements[0])
            else:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for item in batch:
                        for statement, params in item.statements:
                            conn.execute(statement, params)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except Exception as error:
            if len(batch) > 1:  # whose statement failed? each item alone, in its own transaction
                for item in batch:
                    self._commit([item])
                return
            if isinstance(error, sqlite3.Error):
                error = wrap_driver_error(self.engine, batch[0].statements, error)
            batch[0].error = error
        except BaseException as error:
            for item in batch:
                item.error = error
            raise
        finally:
            for item in batch:
                item.done = True

    def _writer_connection(self) -> Any:
        """The group commit's own connection (writes are serialized by the lock anyway)."""
        fairy = self._writer
        if fairy is None:
            fairy = self._writer = self.engine.raw_connection()
        return fairy.driver_connection

    def read_with(self, run: Callable[[Fetch], T], *, snapshot: bool) -> T:
        if self._lock.acquire(blocking=False):
            # The writer connection when it is free: its page cache is still valid after our own
            # writes (another connection's cache is dropped by every commit). Never waits for it.
            try:
                return self._read_on(self._writer_connection(), run, snapshot)
            finally:
                self._lock.release()
        fairy = self.engine.raw_connection()
        try:
            return self._read_on(fairy.driver_connection, run, snapshot)
        finally:
            fairy.close()

    def _read_on(self, conn: Any, run: Callable[[Fetch], T], snapshot: bool) -> T:
        def fetch(statement: str, params: Any) -> list[Any]:
            return list(conn.execute(statement, params).fetchall())

        try:
            if not snapshot:
                return run(fetch)
            conn.execute("BEGIN")
            try:
                result = run(fetch)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")  # ends the read transaction
            return result
        except sqlite3.Error as error:
            raise wrap_driver_error(self.engine, [], error) from error

    def close(self) -> None:
        self._closed = True
        for free in (self._free, self._inline_free):
            while True:
                try:
                    free.get_nowait().close()
                except queue.Empty:
                    break
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


class PostgresRaw(RawConnections):
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine  # the autocommit pool

    @contextlib.contextmanager
    def cursor(
        self, statements: Statements = (), *, wrap: bool = False
    ) -> Generator[tuple[Any, Any], None, None]:
        """A pooled autocommit psycopg connection and a cursor on it; a driver error invalidates the
        connection when it is a disconnect (`wrap`: every driver error, wrapped as SQLAlchemy's)."""
        fairy = self.engine.raw_connection()
        try:
            conn = fairy.driver_connection
            assert conn is not None
            with conn.cursor() as cursor:
                yield conn, cursor
        except Exception as error:
            if wrap and isinstance(error, self.engine.dialect.loaded_dbapi.Error):
                fairy.invalidate(error)
                raise wrap_driver_error(self.engine, statements, error) from error
            if driver_disconnect(error):
                fairy.invalidate()
            raise
        finally:
            fairy.close()

    def write_one(self, statement: str, params: dict[str, Any], *, inline: bool) -> int:
        if inline:
            raise WriteWouldWait("Postgres writes run on an IO thread")
        with self.cursor() as (_conn, cursor):
            cursor.execute(statement, params)
            return cursor.rowcount

    def read_rows(self, statement: str, params: Any) -> list[Any]:
        with self.cursor() as (_conn, cursor):
            cursor.execute(statement, params)
            return list(cursor.fetchall())

    def execute(self, statements: Statements) -> None:
        with self.cursor(statements, wrap=True) as (conn, cursor):
            if len(statements) == 1:
                cursor.execute(*statements[0])
                return
            with conn.transaction():
                for statement, params in statements:
                    cursor.execute(statement, params)

    def read_with(self, run: Callable[[Fetch], T], *, snapshot: bool) -> T:
        # `snapshot`: the Postgres read paths issue one statement, its own snapshot
        with self.cursor(wrap=True) as (conn, cursor):
            # Prepared on first use on each pooled connection (not after psycopg's default 5 uses):
            # planning a one-statement load costs more than running it. Not if the user turned
            # preparing off (prepare_threshold=None, e.g. behind a transaction-mode pooler).
            prepare = None if conn.prepare_threshold is None else True
            return run(
                lambda statement, params: list(cursor.execute(statement, params, prepare=prepare).fetchall())
            )


def driver_disconnect(error: BaseException) -> bool:
    """A raw driver error that means the connection is unusable."""
    module = type(error).__module__
    if module.startswith("psycopg"):
        import psycopg

        return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
    return False
