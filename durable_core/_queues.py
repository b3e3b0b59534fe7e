"""Durable queues: `Queue`, `RateLimit`, and the dispatcher that every launched engine runs.

An enqueue writes an ENQUEUED row and wakes the dispatchers: in this process directly, in
others by Postgres NOTIFY (SQLite workers poll every 50 ms). A dispatcher claims as many rows
as its free slots, the queue's global concurrency and its rate limit allow, in priority then
FIFO order, and runs them like any other workflow.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ._context import current_context, pending_options
from ._handle import WorkflowHandle
from ._host import EngineHost, resolve_host
from ._keys import queue_key
from ._registry import WorkflowDef, get_workflow, registered_names
from ._run import Outcome
from ._serialization import reject_nul
from ._starting import definition_of, insert, make_plan, run_recovered
from ._status import WorkflowState, now_ms
from .errors import DuplicateKey, DurableError, EngineNotLaunched, QueueDeduplicatedError
from .storage import ClaimRequest, WorkflowRow

__all__ = ["INTERNAL_QUEUE", "Queue", "RateLimit", "served_queue_names"]

log = logging.getLogger("durable_core.queues")
INTERNAL_QUEUE = "_durable_internal"
_queues: dict[str, Queue] = {}
_lock = threading.Lock()
# per engine: (when read, workflow names, queue names) the live executors advertised
_advertised: weakref.WeakKeyDictionary[EngineHost, tuple[float, set[str], set[str]]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` workflow starts in any sliding window of `period_seconds`, across all processes."""

    limit: int
    period_seconds: float

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"RateLimit.limit must be a positive integer, got {self.limit!r}")
        if not self.period_seconds > 0:
            raise ValueError(f"RateLimit.period_seconds must be positive, got {self.period_seconds!r}")


class Queue:
    """A durable queue, declared at import time in every process that enqueues to it or serves it.

    Example:
        ```python
        indexing = Queue("indexing", worker_concurrency=4, rate_limit=RateLimit(limit=50, period_seconds=60))
        handles = [indexing.enqueue(index_document, doc_id) for doc_id in doc_ids]
        ```

    Args:
        concurrency: at most this many of its workflows run at once across all processes.
        worker_concurrency: at most this many run at once in each process.
        rate_limit: at most `limit` starts per sliding `period_seconds`, across all processes.
        priority_enabled: honour `workflow_options(priority=...)`: lower runs first, FIFO within a priority.
    """

    def __init__(
        self,
        name: str,
        concurrency: int | None = None,
        worker_concurrency: int | None = 10,
        rate_limit: RateLimit | None = None,
        priority_enabled: bool = False,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a queue needs a non-empty name")
        reject_nul(queue_name=name)
        for label, value in (("concurrency", concurrency), ("worker_concurrency", worker_concurrency)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"Queue {name!r}: {label} must be a positive integer or None, got {value!r}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError("rate_limit must be a RateLimit(limit=..., period_seconds=...)")
        self.name = name
        self.concurrency = concurrency
        self.worker_concurrency = worker_concurrency
        self.rate_limit = rate_limit
        self.priority_enabled = priority_enabled
        with _lock:
            _queues[name] = self

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, concurrency={self.concurrency}, worker_concurrency={self.worker_concurrency})"

    def enqueue(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Queue a workflow (or a step, run as a one-step workflow); return its handle at once."""
        engine = resolve_host()
        return enqueue_definition(engine, self, definition_of(fn), args, kwargs)

    async def enqueue_async(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        engine = resolve_host()
        if not engine.launched:
            raise EngineNotLaunched()
        defn = definition_of(fn)
        prepared = _prepare(engine, self.name, defn, args, kwargs)  # planned here, in the caller's context
        return await engine.run_io(prepared)


_INTERNAL = Queue(INTERNAL_QUEUE, worker_concurrency=None)


def served_queue_names(engine: EngineHost) -> list[str]:
    names = engine.queue_names if engine.queue_names is not None else list(_queues)
    return sorted({*names, INTERNAL_QUEUE})


def _prepare(
    engine: EngineHost, queue_name: str, defn: WorkflowDef, args: Any, kwargs: Any
) -> Callable[[], WorkflowHandle[Any]]:
    """Plan the enqueue in the caller's context (ids, options, parent step); return the write to commit.

    Priority is checked against the queue's declaration when this process has one; a client that
    enqueues by name leaves that to the workers' declaration.
    """
    options = pending_options()
    queue = _queues.get(queue_name)
    if (
        options is not None
        and options.priority is not None
        and queue is not None
        and not queue.priority_enabled
    ):
        raise ValueError(
            f"Queue {queue_name!r} was declared without priority_enabled=True; priority is ignored there."
        )
    plan = make_plan(engine, defn, args, kwargs, status=WorkflowState.ENQUEUED, queue_name=queue_name)

    def commit() -> WorkflowHandle[Any]:
        try:
            insert(engine, plan, notify=queue_key(queue_name))
        except DuplicateKey:
            if plan.values.get("deduplication_id"):
                raise QueueDeduplicatedError(queue_name, plan.values["deduplication_id"]) from None
            raise
        engine.wake_queues(queue_name, remote=False)  # the insert already notified other processes
        return WorkflowHandle(engine, plan.workflow_id, defn)

    return commit


def enqueue_definition(
    engine: EngineHost, queue: Queue, defn: WorkflowDef, args: Any, kwargs: Any
) -> WorkflowHandle[Any]:
    if not engine.launched:
        raise EngineNotLaunched()
    return _prepare(engine, queue.name, defn, args, kwargs)()


def enqueue_by_name(
    engine: EngineHost, queue_name: str, workflow_name: str, args: Any, kwargs: Any
) -> WorkflowHandle[Any]:
    """`engine.enqueue`: queue a workflow by name, from a process that may not have its code."""
    reject_nul(queue_name=queue_name, workflow_name=workflow_name)
    if current_context() is not None:
        raise DurableError(
            "engine.enqueue is for client code; inside a workflow use Queue(...).enqueue(fn, ...)"
        )
    names, queues = set(registered_names()), set(_queues)
    if workflow_name not in names or queue_name not in queues:
        cached = _advertised.get(engine)
        if (
            cached is None
            or workflow_name not in cached[1]
            or queue_name not in cached[2]
            or (time.monotonic() - cached[0] > 10)
        ):
            advertised_names, advertised_queues = engine.executors.advertised()
            cached = _advertised[engine] = (time.monotonic(), advertised_names, advertised_queues)
        names.update(cached[1])
        queues.update(cached[2])
    if workflow_name not in names:
        raise DurableError(
            f"Unknown workflow {workflow_name!r}: no engine of this database has registered it. Check the name "
            "(default: the function's __qualname__, or @workflow(name=...)) and that a worker has launched."
        )
    if queue_name not in queues:
        raise DurableError(
            f"Unknown queue {queue_name!r}: declare Queue({queue_name!r}) in the worker processes that serve it."
        )
    defn = get_workflow(workflow_name) or WorkflowDef(
        name=workflow_name, fn=_absent, is_async=False, max_recovery_attempts=None
    )
    return _prepare(engine, queue_name, defn, args, kwargs)()


def _absent(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never called
    raise RuntimeError("this workflow's code is not in this process")


class Dispatcher:
    """Claims queued workflows for one engine and runs them within the queues' limits."""

    def __init__(self, engine: EngineHost) -> None:
        self.engine = engine
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.running: dict[str, set[str]] = {}
        self.rate_limited: set[str] = set()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="durable-queues", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
        self.thread.join(timeout=5)  # from here on this dispatcher starts nothing
        # The workflows it started stop at their next step (the engine is stopping). Wait for them:
        # queue work released while one of its steps still runs here could run that step twice.
        deadline = time.monotonic() + _STOP_WAIT_SECONDS
        while self._running_ids() and time.monotonic() < deadline:
            time.sleep(0.01)
        # Release the queue work this engine claimed but will not finish: any worker may take it
        # now. What still runs here (a step longer than the wait) stays owned by this executor,
        # taken over once its lease expires, as after a crash.
        engine = self.engine
        try:
            still_running = self._running_ids()
            owned = engine.queues.owned_queue_workflows(engine.executor_id)
            engine.queues.requeue([wid for wid in owned if wid not in still_running], now_ms())
        except Exception:  # pragma: no cover - best effort at shutdown
            log.exception("could not release claimed queue work")

    def _running_ids(self) -> set[str]:
        with self.lock:
            return {wid for ids in self.running.values() for wid in ids}

    def _loop(self) -> None:
        while not self.stopped.is_set():
            next_wake = self.engine.poll_interval
            try:
                names = served_queue_names(self.engine)
                if self.engine.database.dialect == "sqlite":
                    # a read first: the claim takes SQLite's write lock, which other writers need
                    names = sorted(self.engine.queues.pending_queues(names) | self.rate_limited)
                for name in names:
                    queue = _queues.get(name)
                    if queue is not None:
                        retry_in = self._dispatch(queue)
                        if retry_in is not None:
                            next_wake = min(next_wake, retry_in)
            except Exception:
                log.exception("queue dispatch failed; retrying")
                next_wake = 1.0
            self.wake.wait(max(0.001, next_wake))
            self.wake.clear()

    def _dispatch(self, queue: Queue) -> float | None:
        engine = self.engine
        if engine.stopping:
            return None
        with self.lock:
            running = len(self.running.get(queue.name, ()))
        free = (queue.worker_concurrency or 1_000_000) - running
        if free <= 0:
            return None
        names = [n for n in registered_names()]
        rate = queue.rate_limit
        now = now_ms()
        result = engine.queues.claim(
            ClaimRequest(
                queue_name=queue.name,
                executor_id=engine.executor_id,
                app_version=engine.app_version,
                names=names,
                max_claims=free,
                concurrency=queue.concurrency,
                rate_limit=rate.limit if rate else None,
                rate_period_ms=int(rate.period_seconds * 1000) if rate else None,
                by_priority=queue.priority_enabled,
                now=now,
            )
        )
        for row in result.rows:
            try:
                self._run(queue.name, row)
            except Exception:  # one workflow that cannot start never strands the rest of the batch
                log.exception(
                    "Queued workflow %s (%s) could not be started; it goes back to queue %r.",
                    row.workflow_id,
                    row.name,
                    queue.name,
                )
                self._done(queue.name, row.workflow_id)
                with contextlib.suppress(Exception):  # else shutdown releases it, or a takeover does
                    engine.queues.requeue([row.workflow_id], now_ms())
        if result.rate_limited_until is not None:
            self.rate_limited.add(queue.name)
            return max(0.0, (result.rate_limited_until - now_ms()) / 1000)
        self.rate_limited.discard(queue.name)
        return None

    def _run(self, queue_name: str, row: WorkflowRow) -> None:
        engine = self.engine
        workflow_id = row.workflow_id
        defn = get_workflow(row.name)
        if defn is None:  # unregistered since the claim: give it back
            engine.queues.requeue([workflow_id], now_ms())
            return
        with self.lock:
            self.running.setdefault(queue_name, set()).add(workflow_id)
        future: Future[Outcome] | None = run_recovered(engine, defn, row)
        if future is None:
            self._done(queue_name, workflow_id)
            return
        future.add_done_callback(lambda _f: self._done(queue_name, workflow_id))

    def _done(self, queue_name: str, workflow_id: str) -> None:
        with self.lock:
            self.running.get(queue_name, set()).discard(workflow_id)
        self.wake.set()


_STOP_WAIT_SECONDS = 10.0
"""How long a stopping dispatcher waits for the workflows it started to stop at their next step."""


def start_dispatcher(engine: EngineHost) -> Dispatcher:
    dispatcher = Dispatcher(engine)
    dispatcher.start()
    engine.add_service(dispatcher.stop)
    return dispatcher
