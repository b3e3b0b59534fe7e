"""Per-node-task memoization of step calls made inside graph nodes.

LangGraph re-executes only the node that was running at a crash (earlier nodes come from the
checkpoint), and parallel nodes interleave, so step calls inside nodes cannot take ids from the
workflow's global step sequence. Instead each call is keyed by (durable run, node task
namespace, call index within that task execution) and its result stored with the graph's
serializer. A node re-executed in the same durable run (after a crash, or after an `interrupt()`
resume) gets the recorded results back instead of calling the model or tool again.

Outside a node, or outside a `DurableGraph` run, memoized calls are plain calls.

A memoized call declared a model call (``model_call=True``) is also budget-checked before it
runs live and records its usage once it returns, before its memo (see `_usage`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable, Generator
from contextvars import ContextVar
from typing import Any, TypeVar

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.errors import GraphBubbleUp

from durable_core.extend import (
    CheckpointStore,
    MemoRecord,
    RetryPolicy,
    StepDef,
    call_with_retries,
    call_with_retries_async,
    intercept_steps,
    running_workflow,
)

from ._usage import StepUsage, begin_model_call, where_of

__all__ = ["MemoScope", "active_scope", "memo_scope"]

T = TypeVar("T")

_scope: ContextVar[MemoScope | None] = ContextVar("durable_langgraph_memo_scope", default=None)


_DEFAULT_POLICY = RetryPolicy()
_NEVER_RETRIED = (GraphBubbleUp,)  # an interrupt() or a budget refusal in the body


def _task_key() -> tuple[str, str, int] | None:
    """(thread id, task namespace, attempt) of the node task running here, or None outside a node."""
    try:
        from langgraph.runtime import get_runtime

        info = get_runtime().execution_info
    except Exception:
        return None
    if info is None or not info.task_id:
        return None
    return str(info.thread_id or ""), info.checkpoint_ns or info.task_id, info.node_attempt


class MemoScope:
    """The memo table of one durable graph run, preloaded once so fresh calls cost no read."""

    def __init__(self, store: CheckpointStore, serde: SerializerProtocol, run_key: str) -> None:
        self.store = store
        self.serde = serde
        self.run_key = run_key
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, int]] = {}
        self._recorded: dict[tuple[str, int], MemoRecord] = store.load_memos(run_key)

    @property
    def has_memos(self) -> bool:
        """Whether this run recorded (or loaded) any step memo."""
        return bool(self._recorded)

    def _next_index(self, task_ns: str, attempt: int) -> int:
        # A node retried by its RetryPolicy starts counting again, so it replays the calls that
        # succeeded in the failed attempt.
        with self._lock:
            last_attempt, idx = self._counters.get(task_ns, (attempt, 0))
            if last_attempt != attempt:
                idx = 0
            idx += 1
            self._counters[task_ns] = (attempt, idx)
            return idx

    def _lookup(self, name: str, task_ns: str, idx: int) -> tuple[bool, Any]:
        memo = self._recorded.get((task_ns, idx))
        if memo is None or memo.name != name:
            # A different name at this index means the node's code changed: run live.
            return False, None
        return True, self.serde.loads_typed((memo.type, memo.blob if memo.blob is not None else b""))

    def _save(self, name: str, thread_id: str, task_ns: str, idx: int, value: Any) -> None:
        type_, data = self.serde.dumps_typed(value)
        memo = MemoRecord(name, type_, data, False)
        self.store.put_memo(self.run_key, task_ns, idx, thread_id, memo)
        with self._lock:
            self._recorded[(task_ns, idx)] = memo

    def call(
        self,
        name: str,
        fn: Callable[[], T],
        policy: RetryPolicy = _DEFAULT_POLICY,
        *,
        model_call: bool = False,
    ) -> T:
        key = _task_key()
        if key is None:
            return fn()
        thread_id, task_ns, attempt = key
        idx = self._next_index(task_ns, attempt)
        found, value = self._lookup(name, task_ns, idx)
        if found:
            return value
        run = running_workflow() if model_call else None
        if run is None:
            result = call_with_retries(name, fn, policy, never_retry=_NEVER_RETRIED)
        else:
            live = begin_model_call(run)  # the budget refuses it here, before the call
            usage = StepUsage()
            try:
                with usage.active():
                    result = call_with_retries(name, fn, policy, never_retry=_NEVER_RETRIED)
            except Exception as error:
                live.record_failure(name, where_of(task_ns, idx), usage, error)
                raise
            except BaseException:
                live.abandon()
                raise
            live.record(name, where_of(task_ns, idx), usage.usages(result))
        self._save(name, thread_id, task_ns, idx, result)
        return result

    async def acall(
        self,
        name: str,
        fn: Callable[[], Awaitable[T]],
        policy: RetryPolicy = _DEFAULT_POLICY,
        *,
        model_call: bool = False,
    ) -> T:
        key = _task_key()
        if key is None:
            return await fn()
        thread_id, task_ns, attempt = key
        idx = self._next_index(task_ns, attempt)
        found, value = self._lookup(name, task_ns, idx)
        if found:
            return value
        run = running_workflow() if model_call else None
        if run is None:
            result = await call_with_retries_async(name, fn, policy, never_retry=_NEVER_RETRIED)
        else:
            live = await asyncio.to_thread(begin_model_call, run)
            usage = StepUsage()
            where = where_of(task_ns, idx)
            try:
                with usage.active():
                    result = await call_with_retries_async(name, fn, policy, never_retry=_NEVER_RETRIED)
            except Exception as error:
                await asyncio.to_thread(live.record_failure, name, where, usage, error)
                raise
            except BaseException:
                live.abandon()
                raise
            await asyncio.to_thread(live.record, name, where, usage.usages(result))
        await asyncio.to_thread(self._save, name, thread_id, task_ns, idx, result)
        return result


def active_scope() -> MemoScope | None:
    return _scope.get()


@contextlib.contextmanager
def memo_scope(scope: MemoScope) -> Generator[None]:
    """Route step calls made in this context (and contexts copied from it) through `scope`.

    `durable_core.step` functions are routed through the core's step interceptor
    (`durable_core.extend.intercept_steps`), `durable_langgraph.step` functions through `scope`.
    """
    token = _scope.set(scope)
    try:
        with intercept_steps(_intercept_core_step):
            yield
    finally:
        _scope.reset(token)


def _intercept_core_step(defn: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Called by `durable_core.step` wrappers while a graph runs inside a `DurableGraph` workflow."""
    scope = _scope.get()
    fn = defn.fn
    if scope is None:
        return fn(*args, **kwargs)
    policy = RetryPolicy.of_step(defn)
    if defn.is_async or inspect.iscoroutinefunction(fn):
        return scope.acall(defn.name, lambda: fn(*args, **kwargs), policy, model_call=defn.model_call)
    return scope.call(defn.name, lambda: fn(*args, **kwargs), policy, model_call=defn.model_call)
