"""In-process hand-off between a `DurableGraph` caller and the workflow body running its segment.

The workflow body runs on an engine thread (or the engine's event loop); the caller waits in
its own thread or loop. A `LiveSegment` carries what cannot go through the database: the live
config and keyword arguments (callbacks, context objects), the graph's real output object,
and streamed chunks; it reaches the body through a `durable_core.extend.LiveHandoff`. The
database (workflow events and status) remains the source of truth when the body runs
elsewhere, e.g. after a recovery by another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from concurrent.futures import Future
from typing import Any

from langchain_core.runnables import RunnableConfig

__all__ = ["END_OF_STREAM", "LiveSegment"]


class _End:
    __slots__ = ()


END_OF_STREAM: Any = _End()


class _Sink:
    """Where streamed chunks go: a thread queue, or an asyncio queue of the caller's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.sync_queue: queue.Queue[Any] = queue.Queue()
        self.async_queue: asyncio.Queue[Any] | None = asyncio.Queue() if loop is not None else None

    def put(self, item: Any) -> None:
        if self.loop is not None and self.async_queue is not None:
            with contextlib.suppress(RuntimeError):  # a closed caller loop: nobody listens any more
                self.loop.call_soon_threadsafe(self.async_queue.put_nowait, item)
        else:
            self.sync_queue.put(item)


class LiveSegment:
    """One segment (a graph run up to completion or an interrupt) awaited by a caller here."""

    def __init__(
        self,
        config: RunnableConfig,
        kwargs: dict[str, Any],
        *,
        stream: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.kwargs = kwargs
        self.sink = _Sink(loop) if stream else None
        self.future: Future[dict[str, Any]] = Future()
        self.output: Any = None
        self.claimed = threading.Event()

    def finish(self, outcome: dict[str, Any]) -> None:
        if self.sink is not None:
            self.sink.put(END_OF_STREAM)
        if not self.future.done():
            self.future.set_result(outcome)

    def fail(self, error: BaseException) -> None:
        if self.sink is not None:
            self.sink.put(END_OF_STREAM)
        if not self.future.done():
            self.future.set_exception(error)
