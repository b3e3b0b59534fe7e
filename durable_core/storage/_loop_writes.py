"""PostgreSQL checkpoint writes made on a workflow's own event loop, with no IO-thread hop.

An async workflow's hot-path writes (its start, each step, its finish) are synchronous store code
(`StepStore.record`, ...). `run_on_loop` runs that code in a greenlet on the loop's thread; when
it reaches `Database.write_one`, the statement goes over this loop's psycopg `AsyncConnection`
and the greenlet is suspended until the row count is back, so the loop keeps running other tasks
meanwhile (the pattern of SQLAlchemy's asyncio extension).

Every statement has a bounded wait: the server cancels it after `timeout` seconds
(`statement_timeout`, which also covers lock waits), and the client gives up `_NETWORK_GRACE`
seconds later (a hung network), closing the connection. Both surface as a transient error, which
the database's one retry loop retries like any outage and reports as `DatabaseUnavailable` once
its retry window is over.

Connections belong to one event loop each (pytest-asyncio makes one per test): they are closed
when their loop is closed (noticed at the next write from any loop) or collected, and all of them
by `close` (the engine's shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, LiteralString, TypeVar, cast

if TYPE_CHECKING:
    import psycopg

try:
    from greenlet import getcurrent, greenlet
except ImportError:  # greenlet comes with the postgres extra; without it these writes use IO threads

    def getcurrent() -> Any:
        return None

    greenlet = object

AVAILABLE = greenlet is not object

__all__ = ["AVAILABLE", "LoopConnections", "StatementTimedOut", "await_on_loop", "on_loop", "run_on_loop"]

T = TypeVar("T")

_NETWORK_GRACE = 2.0
"""Seconds the client waits past the server-side statement timeout before it drops the connection."""


class StatementTimedOut(Exception):
    """A statement sent from an event loop got no answer within its bound; the connection is dropped.
    Transient: the retry loop retries it like a lost connection."""


class _LoopGreenlet(greenlet):  # type: ignore[misc]  # greenlet has no complete stubs
    """Runs synchronous store code whose database waits are awaited by the loop (`await_on_loop`)."""


def on_loop() -> bool:
    """Whether the caller runs inside `run_on_loop` (its waits must go through `await_on_loop`)."""
    return AVAILABLE and isinstance(getcurrent(), _LoopGreenlet)


def await_on_loop(awaitable: Awaitable[T]) -> T:
    """From code run by `run_on_loop`: suspend it until the loop has awaited `awaitable`."""
    current = getcurrent()
    if not isinstance(current, _LoopGreenlet):
        raise RuntimeError("await_on_loop outside run_on_loop")
    parent = cast(Any, current).parent
    return cast(T, parent.switch(awaitable))


async def run_on_loop(fn: Callable[[], T]) -> T:
    """Run the synchronous `fn` on this thread; each `await_on_loop` it makes is awaited here."""
    driver = getcurrent()
    child = _LoopGreenlet(fn, driver)
    child.gr_context = driver.gr_context  # the caller's context variables, shared both ways
    result: Any = child.switch()
    while not child.dead:
        try:
            value = await result
        except BaseException as error:  # delivered where the store code waits (retries, cleanup)
            result = child.throw(error)
        else:
            result = child.switch(value)
    return cast(T, result)


class _LoopSlot:
    """The connections of one event loop: idle ones, and every open one (to close them all)."""

    __slots__ = ("idle", "open")

    def __init__(self) -> None:
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.open: set[psycopg.AsyncConnection[Any]] = set()

    def close(self) -> None:
        """Close every connection of the loop (synchronously: libpq's finish, no round trip)."""
        conns, self.open, self.idle = list(self.open), set(), []
        for conn in conns:
            _drop(conn)


def _drop(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):  # already gone
        conn.pgconn.finish()


class LoopConnections:
    """Autocommit psycopg `AsyncConnection`s, per event loop, for one-statement writes.

    Args:
        conninfo: the libpq connection string (search_path and statement_timeout included).
        timeout: seconds a statement (or a connect) may take before it is abandoned.
        keep: idle connections kept per loop.
    """

    def __init__(self, conninfo: str, *, timeout: float, keep: int) -> None:
        self.conninfo = conninfo
        self.timeout = timeout
        self.keep = keep
        self._slots: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], _LoopSlot]] = {}
        self._guard = threading.Lock()
        self._closed = False

    def _slot(self, loop: asyncio.AbstractEventLoop) -> _LoopSlot:
        entry = self._slots.get(id(loop))
        if entry is not None and entry[0]() is loop:
            return entry[1]
        slot = _LoopSlot()
        with self._guard:
            # loops closed since: their connections go now (closing never needs the loop)
            for key, (ref, other) in list(self._slots.items()):
                old = ref()
                if old is None or old.is_closed() or key == id(loop):
                    other.close()
                    del self._slots[key]
            self._slots[id(loop)] = (weakref.ref(loop), slot)
        weakref.finalize(loop, slot.close)
        return slot

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        import psycopg

        try:
            return await asyncio.wait_for(
                psycopg.AsyncConnection.connect(self.conninfo, autocommit=True), self.timeout + _NETWORK_GRACE
            )
        except TimeoutError:
            raise StatementTimedOut(f"no connection within {self.timeout + _NETWORK_GRACE:.1f}s") from None

    async def execute(self, statement: str, params: dict[str, Any]) -> int:
        """Run one statement in autocommit on this loop's connection; return its row count."""
        if self._closed:
            raise StatementTimedOut("the database is closed")
        loop = asyncio.get_running_loop()
        slot = self._slot(loop)
        conn = slot.idle.pop() if slot.idle else None
        if conn is None:
            conn = await self._connect()
            slot.open.add(conn)
        task = asyncio.current_task()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            _drop(conn)  # first: psycopg then sees no query to cancel on the server
            if task is not None:
                task.cancel()

        timer = loop.call_later(self.timeout + _NETWORK_GRACE, expire)
        try:
            cursor = await conn.execute(cast(LiteralString, statement), params)
            count = cursor.rowcount
        except asyncio.CancelledError:
            slot.open.discard(conn)
            _drop(conn)
            if expired and task is not None and task.uncancel() == 0:
                raise StatementTimedOut(
                    f"no answer from the database within {self.timeout + _NETWORK_GRACE:.1f}s"
                ) from None
            raise
        except BaseException:
            slot.open.discard(conn)  # its state is unknown: never reused
            _drop(conn)
            raise
        finally:
            timer.cancel()
        if len(slot.idle) < self.keep and not self._closed:
            slot.idle.append(conn)
        else:
            slot.open.discard(conn)
            _drop(conn)
        return count

    def open_count(self) -> int:
        with self._guard:
            return sum(len(slot.open) for _ref, slot in self._slots.values())

    def close_idle(self) -> None:
        """Close the idle connections of every loop (their settings changed)."""
        with self._guard:
            slots = [slot for _ref, slot in self._slots.values()]
        for slot in slots:
            idle, slot.idle = slot.idle, []
            for conn in idle:
                slot.open.discard(conn)
                _drop(conn)

    def close(self) -> None:
        """Close the connections of every loop (the engine's shutdown)."""
        self._closed = True
        with self._guard:
            slots, self._slots = list(self._slots.values()), {}
        for _ref, slot in slots:
            slot.close()
