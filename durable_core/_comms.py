"""Durable waits and communication: sleep, send/recv, events and streams.

Every wait records its deadline before it blocks (on the workflow row, which is also what
`list_workflows(waiting=True)` reads), so after a restart it keeps its original deadline.
Waiters in this process are woken directly; other processes by Postgres LISTEN/NOTIFY, or by a
short poll on SQLite. Each wait has one implementation (`_waiting.Wait.poll`) and two thin drivers.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ._context import current_context
from ._host import EngineHost, resolve_host
from ._keys import done_key, event_key, message_key, stream_key
from ._records import wait_label
from ._run import RunHost, WorkflowRun
from ._serialization import reject_nul
from ._status import TERMINAL_STATES, now_ms
from ._waiting import Wait, drive_async, drive_sync, lost_ownership, step_write
from .errors import SerializationError, StepOutsideWorkflow, WorkflowNotFoundError
from .storage import ReceiveResult, SendResult, StepWrite

__all__ = [
    "close_stream",
    "close_stream_async",
    "current_workflow_id",
    "get_event",
    "get_event_async",
    "recv",
    "recv_async",
    "send",
    "send_async",
    "set_event",
    "set_event_async",
    "sleep",
    "sleep_async",
    "write_stream",
    "write_stream_async",
]

DEFAULT_TOPIC = "__default__"
_MAX_TIMEOUT = 10 * 365 * 24 * 3600.0


def _workflow_context(operation: str) -> WorkflowRun:
    ctx = current_context()
    if ctx is None:
        raise StepOutsideWorkflow(
            f"{operation}() must be called from inside a durable workflow (not outside one, and not inside a "
            f"@step body). Outside workflows use the Engine methods (engine.send, engine.get_event, ...)."
        )
    return ctx


def check_timeout(timeout_seconds: float | None) -> float | None:
    if timeout_seconds is None:
        return None
    if not isinstance(timeout_seconds, int | float) or math.isnan(timeout_seconds) or timeout_seconds < 0:
        raise ValueError(
            f"timeout_seconds must be a number >= 0 (or None for no limit), got {timeout_seconds!r}"
        )
    if timeout_seconds > _MAX_TIMEOUT:
        raise ValueError(f"timeout_seconds={timeout_seconds!r} is more than ten years; use None for no limit")
    return float(timeout_seconds)


def current_workflow_id() -> str:
    """The id of the running workflow."""
    return _workflow_context("current_workflow_id").workflow_id


def _dumps(engine: RunHost, value: Any, what: str) -> str:
    try:
        return engine.serializer.dumps(value)
    except SerializationError as exc:
        raise SerializationError(
            f"{what}: a value of type {type(value).__qualname__} cannot be serialized ({exc.message}); "
            "nothing was sent or recorded."
        ) from exc


def _prepare(operation: str, name: str) -> tuple[WorkflowRun, int, Any]:
    """Take the step id; return the recorded outcome if this wait already completed (else a sentinel)."""
    ctx = _workflow_context(operation)
    step_id = ctx.take_step_id()
    row = ctx.begin_step(step_id, name)
    if row is not None:
        return ctx, step_id, (ctx.replay(row, Any),)
    return ctx, step_id, None


def _live_step(ctx: WorkflowRun, name: str) -> int | None:
    """Take the next step id; None when that step is already recorded (replayed: nothing to redo)."""
    step_id = ctx.take_step_id()
    return step_id if ctx.begin_step(step_id, name) is None else None


def _sleep_wait(ctx: WorkflowRun, step_id: int, seconds: float) -> Wait:
    return Wait(
        ctx, step_id, "durable.sleep", wait_label("sleep"), seconds, [], None, lambda deadline: deadline
    )


def sleep(seconds: float) -> None:
    """Sleep durably: the wake-up time is recorded first, so a restart sleeps only the remainder."""
    seconds = check_timeout(seconds) or 0.0
    ctx, step_id, recorded = _prepare("sleep", "durable.sleep")
    if recorded is None:
        drive_sync(_sleep_wait(ctx, step_id, seconds))


async def sleep_async(seconds: float) -> None:
    seconds = check_timeout(seconds) or 0.0
    ctx, step_id, recorded = _prepare("sleep", "durable.sleep")
    if recorded is None:
        await drive_async(_sleep_wait(ctx, step_id, seconds))


def _recv_wait(ctx: WorkflowRun, step_id: int, topic: str | None, timeout: float | None) -> Wait:
    name = topic if topic is not None else DEFAULT_TOPIC
    engine = ctx.engine

    def attempt(step: StepWrite) -> tuple[bool, Any]:
        state, message, serialization = engine.messages.consume(topic=name, step=step, now=now_ms())
        if state is ReceiveResult.NOT_OWNER:
            lost_ownership(ctx, step_id)
        if state is ReceiveResult.RECEIVED:
            return True, None if message is None else engine.serializer_for(serialization or "json").loads(
                message
            )
        return False, None

    label = wait_label("recv", topic)  # WaitInfo.topic reads back exactly `topic`
    return Wait(
        ctx,
        step_id,
        "durable.recv",
        label,
        timeout,
        [message_key(ctx.workflow_id, name)],
        attempt,
        lambda _deadline: None,
    )


def recv(topic: str | None = None, timeout_seconds: float | None = 60.0) -> Any:
    """Wait for the next message on `topic` (FIFO); None at the timeout. Each message is received once."""
    reject_nul(topic=topic)
    timeout = check_timeout(timeout_seconds)
    ctx, step_id, recorded = _prepare("recv", "durable.recv")
    if recorded is not None:
        return recorded[0]
    return drive_sync(_recv_wait(ctx, step_id, topic, timeout))


async def recv_async(topic: str | None = None, timeout_seconds: float | None = 60.0) -> Any:
    reject_nul(topic=topic)
    timeout = check_timeout(timeout_seconds)
    ctx, step_id, recorded = _prepare("recv", "durable.recv")
    if recorded is not None:
        return recorded[0]
    return await drive_async(_recv_wait(ctx, step_id, topic, timeout))


def _event_wait(ctx: WorkflowRun, step_id: int, workflow_id: str, key: str, timeout: float | None) -> Wait:
    engine = ctx.engine

    def attempt(step: StepWrite) -> tuple[bool, Any]:
        found = engine.messages.get_event(workflow_id, key)
        if found is None:
            return False, None
        step.output = found[0]
        if not engine.messages.finish_wait(step=step, now=now_ms()):
            lost_ownership(ctx, step_id)
        return True, engine.serializer_for(found[1]).loads(found[0])

    return Wait(
        ctx,
        step_id,
        "durable.get_event",
        wait_label("event", f"{workflow_id}:{key}"),
        timeout,
        [event_key(workflow_id, key)],
        attempt,
        lambda _deadline: None,
    )


def get_event(workflow_id: str, key: str, timeout_seconds: float | None = 60.0) -> Any:
    """The value of another workflow's event `key`, waiting up to the timeout for it to be set (else None)."""
    reject_nul(workflow_id=workflow_id, key=key)
    timeout = check_timeout(timeout_seconds)
    ctx = current_context()
    if ctx is None:
        return resolve_host().get_event(workflow_id, key, timeout_seconds)
    ctx, step_id, recorded = _prepare("get_event", "durable.get_event")
    if recorded is not None:
        return recorded[0]
    return drive_sync(_event_wait(ctx, step_id, workflow_id, key, timeout))


async def get_event_async(workflow_id: str, key: str, timeout_seconds: float | None = 60.0) -> Any:
    reject_nul(workflow_id=workflow_id, key=key)
    timeout = check_timeout(timeout_seconds)
    ctx = current_context()
    if ctx is None:
        return await resolve_host().get_event_async(workflow_id, key, timeout_seconds)
    ctx, step_id, recorded = _prepare("get_event", "durable.get_event")
    if recorded is not None:
        return recorded[0]
    return await drive_async(_event_wait(ctx, step_id, workflow_id, key, timeout))


# -- one-shot operations -------------------------------------------------------------------


def _send_op(ctx: WorkflowRun, step_id: int, destination_id: str, message: Any, topic: str | None) -> None:
    engine = ctx.engine
    started = now_ms()
    text = _dumps(engine, message, f"send() to workflow {destination_id!r}")
    name = topic if topic is not None else DEFAULT_TOPIC
    state = engine.messages.send(
        destination_id=destination_id,
        topic=name,
        message=text,
        serialization=engine.serializer.name,
        idempotency_key=f"{ctx.workflow_id}:{step_id}",
        now=started,
        step=step_write(ctx, step_id, "durable.send", None, started),
    )
    if state is SendResult.NOT_OWNER:
        lost_ownership(ctx, step_id)
    if state is SendResult.NO_DESTINATION:
        error = WorkflowNotFoundError(destination_id)
        ctx.record(step_id, "durable.send", error=error, started_at=started)
        raise error
    engine.waiters.notify(message_key(destination_id, name))


def send(destination_id: str, message: Any, topic: str | None = None) -> None:
    """Send a message to a workflow; inside a workflow the send is a step (never sent twice)."""
    reject_nul(destination_id=destination_id, topic=topic)
    ctx = current_context()
    if ctx is None:
        resolve_host().send(destination_id, message, topic)
        return
    step_id = _live_step(ctx, "durable.send")
    if step_id is not None:
        _send_op(ctx, step_id, destination_id, message, topic)


async def send_async(destination_id: str, message: Any, topic: str | None = None) -> None:
    reject_nul(destination_id=destination_id, topic=topic)
    ctx = current_context()
    if ctx is None:
        await resolve_host().send_async(destination_id, message, topic)
        return
    step_id = _live_step(ctx, "durable.send")
    if step_id is not None:
        await ctx.engine.run_io(lambda: _send_op(ctx, step_id, destination_id, message, topic))


def _set_event_op(ctx: WorkflowRun, step_id: int, key: str, value: Any) -> None:
    engine = ctx.engine
    started = now_ms()
    text = _dumps(engine, value, f"set_event({key!r})")
    if not engine.messages.set_event(
        key=key,
        value=text,
        serialization=engine.serializer.name,
        step=step_write(ctx, step_id, "durable.set_event", None, started),
        now=started,
    ):
        lost_ownership(ctx, step_id)
    engine.waiters.notify(event_key(ctx.workflow_id, key))


def set_event(key: str, value: Any) -> None:
    """Publish `value` under `key` for this workflow (last write wins; history kept for forks)."""
    reject_nul(key=key)
    ctx = _workflow_context("set_event")
    step_id = _live_step(ctx, "durable.set_event")
    if step_id is not None:
        _set_event_op(ctx, step_id, key, value)


async def set_event_async(key: str, value: Any) -> None:
    reject_nul(key=key)
    ctx = _workflow_context("set_event")
    step_id = _live_step(ctx, "durable.set_event")
    if step_id is not None:
        await ctx.engine.run_io(lambda: _set_event_op(ctx, step_id, key, value))


def _stream_op(ctx: WorkflowRun, step_id: int, name: str, key: str, value: Any, closed: bool) -> None:
    engine = ctx.engine
    started = now_ms()
    text = None if closed else _dumps(engine, value, f"write_stream({key!r})")
    if not engine.messages.write_stream(
        key=key,
        value=text,
        serialization=engine.serializer.name,
        closed=closed,
        step=step_write(ctx, step_id, name, None, started),
        now=started,
    ):
        lost_ownership(ctx, step_id)
    engine.waiters.notify(stream_key(ctx.workflow_id, key))


def write_stream(key: str, value: Any) -> None:
    """Append a value to this workflow's stream `key` (read with `engine.read_stream`)."""
    reject_nul(key=key)
    ctx = _workflow_context("write_stream")
    step_id = _live_step(ctx, "durable.write_stream")
    if step_id is not None:
        _stream_op(ctx, step_id, "durable.write_stream", key, value, False)


async def write_stream_async(key: str, value: Any) -> None:
    reject_nul(key=key)
    ctx = _workflow_context("write_stream")
    step_id = _live_step(ctx, "durable.write_stream")
    if step_id is not None:
        await ctx.engine.run_io(lambda: _stream_op(ctx, step_id, "durable.write_stream", key, value, False))


def close_stream(key: str) -> None:
    """Mark stream `key` finished: readers stop after its last value."""
    reject_nul(key=key)
    ctx = _workflow_context("close_stream")
    step_id = _live_step(ctx, "durable.close_stream")
    if step_id is not None:
        _stream_op(ctx, step_id, "durable.close_stream", key, None, True)


async def close_stream_async(key: str) -> None:
    reject_nul(key=key)
    ctx = _workflow_context("close_stream")
    step_id = _live_step(ctx, "durable.close_stream")
    if step_id is not None:
        await ctx.engine.run_io(lambda: _stream_op(ctx, step_id, "durable.close_stream", key, None, True))


# -- engine-side (outside workflows) ---------------------------------------------------------


def engine_send(
    engine: EngineHost, destination_id: str, message: Any, topic: str | None, idempotency_key: str | None
) -> None:
    reject_nul(destination_id=destination_id, topic=topic, idempotency_key=idempotency_key)
    name = topic if topic is not None else DEFAULT_TOPIC
    text = _dumps(engine, message, f"send() to workflow {destination_id!r}")
    state = engine.messages.send(
        destination_id=destination_id,
        topic=name,
        message=text,
        serialization=engine.serializer.name,
        idempotency_key=idempotency_key,
        now=now_ms(),
    )
    if state is SendResult.NO_DESTINATION:
        raise WorkflowNotFoundError(destination_id)
    engine.waiters.notify(message_key(destination_id, name))


class _EventPoll:
    def __init__(self, engine: EngineHost, workflow_id: str, key: str, timeout: float | None) -> None:
        self.engine = engine
        self.workflow_id = workflow_id
        self.key = key
        self.keys = [event_key(workflow_id, key)]
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def poll(self) -> tuple[bool, Any]:
        found = self.engine.messages.get_event(self.workflow_id, self.key)
        if found is not None:
            return True, self.engine.serializer_for(found[1]).loads(found[0])
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return True, None
        return False, None

    def next_timeout(self) -> float:
        limit = self.engine.poll_interval
        if self.deadline is not None:
            limit = min(limit, max(0.0, self.deadline - time.monotonic()))
        return limit


def engine_get_event(engine: EngineHost, workflow_id: str, key: str, timeout_seconds: float | None) -> Any:
    reject_nul(workflow_id=workflow_id, key=key)
    return drive_sync(_EventPoll(engine, workflow_id, key, check_timeout(timeout_seconds)))


async def engine_get_event_async(
    engine: EngineHost, workflow_id: str, key: str, timeout_seconds: float | None
) -> Any:
    reject_nul(workflow_id=workflow_id, key=key)
    return await drive_async(_EventPoll(engine, workflow_id, key, check_timeout(timeout_seconds)))


class _StreamReader:
    def __init__(self, engine: EngineHost, workflow_id: str, key: str) -> None:
        self.engine = engine
        self.workflow_id = workflow_id
        self.key = key
        self.offset = 0

    def poll(self) -> tuple[list[Any], bool]:
        """New values, and whether the stream is over (closed, or its workflow finished)."""
        rows = self.engine.messages.read_stream(self.workflow_id, self.key, self.offset)
        values: list[Any] = []
        for offset, value, serialization, closed in rows:
            self.offset = offset
            if closed:
                return values, True
            values.append(
                self.engine.serializer_for(serialization).loads(value) if value is not None else None
            )
        if not rows:
            row = self.engine.workflows.get(self.workflow_id)
            if row is None:
                raise WorkflowNotFoundError(self.workflow_id)
            if row.status in TERMINAL_STATES:
                tail = self.engine.messages.read_stream(self.workflow_id, self.key, self.offset)
                values.extend(
                    self.engine.serializer_for(s).loads(v)
                    for _, v, s, closed in tail
                    if not closed and v is not None
                )
                return values, True
        return values, False


def engine_read_stream(engine: EngineHost, workflow_id: str, key: str) -> Iterator[Any]:
    reject_nul(workflow_id=workflow_id, key=key)
    reader = _StreamReader(engine, workflow_id, key)
    with engine.waiters.register(stream_key(workflow_id, key), done_key(workflow_id)) as waiter:
        while True:
            values, finished = reader.poll()
            yield from values
            if finished:
                return
            if not values:
                waiter.wait(engine.poll_interval)
                waiter.clear()


async def engine_read_stream_async(engine: EngineHost, workflow_id: str, key: str) -> AsyncIterator[Any]:
    reject_nul(workflow_id=workflow_id, key=key)
    reader = _StreamReader(engine, workflow_id, key)
    with engine.waiters.register(stream_key(workflow_id, key), done_key(workflow_id)) as waiter:
        while True:
            values, finished = await engine.run_io(reader.poll)
            for value in values:
                yield value
            if finished:
                return
            if not values:
                await waiter.wait_async(engine.poll_interval)
                waiter.clear()
