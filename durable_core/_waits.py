"""In-process wake-ups: a waiter registers under a key before it checks the database, so a
notification that lands between the check and the wait is never lost. Other processes are
reached by Postgres LISTEN/NOTIFY or, failing that, by polling."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Generator
from contextlib import contextmanager

__all__ = ["Waiter", "Waiters"]


class Waiter:
    """One registration; `wait` (threads) or `wait_async` (event loops) block until notified."""

    __slots__ = ("_event", "_loop_futures")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._loop_futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def set(self) -> None:
        self._event.set()
        for loop, future in self._loop_futures:
            loop.call_soon_threadsafe(_resolve, future)

    def clear(self) -> None:
        self._event.clear()

    def wait(self, timeout: float | None) -> bool:
        return self._event.wait(timeout)

    async def wait_async(self, timeout: float | None) -> bool:
        if self._event.is_set():
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        self._loop_futures.append(entry)
        try:
            if self._event.is_set():
                return True
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._loop_futures.remove(entry)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Waiters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: defaultdict[str, set[Waiter]] = defaultdict(set)

    @contextmanager
    def register(self, *keys: str) -> Generator[Waiter, None, None]:
        waiter = Waiter()
        with self._lock:
            for key in keys:
                self._by_key[key].add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                for key in keys:
                    bucket = self._by_key.get(key)
                    if bucket is not None:
                        bucket.discard(waiter)
                        if not bucket:
                            del self._by_key[key]

    def notify(self, key: str) -> None:
        with self._lock:
            waiters = list(self._by_key.get(key, ()))
        for waiter in waiters:
            waiter.set()

    def wake_all(self) -> None:
        with self._lock:
            waiters = [w for bucket in self._by_key.values() for w in bucket]
        for waiter in waiters:
            waiter.set()
