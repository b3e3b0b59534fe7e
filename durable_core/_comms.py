"""Durable waits and communication: sleep, send/recv, events and streams.

Every wait records its deadline before it blocks (on the workflow row, which is also what
`list_workflows(waiting=True)` reads), so after a restart it keeps its original deadline.
Waiters in this process are woken directly; other processes by Postgres LISTEN/NOTIFY, or by a
short poll on SQLite. Each wait has one implementation (`_Wait.poll`) and two thin drivers.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ._context import current_context
from ._records import wait_label
from ._runtime import WorkflowContext, now_ms
from ._serialization import reject_nul
from .errors import SerializationError, StepOutsideWorkflow, WorkflowNotFoundError
from .storage import StepWrite

if TYPE_CHECKING:
    from ._engine import Engine

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


def _workflow_context(operation: str) -> WorkflowContext:
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


def _dumps(engine: Engine, value: Any, what: str) -> str:
    try:
        return engine.serializer.dumps(value)
    except SerializationError as exc:
        raise SerializationError(
            f"{what}: a value of type {type(value).__qualname__} cannot be serialized ({exc.message}); "
            "nothing was sent or recorded."
        ) from exc


def _step_write(ctx: WorkflowContext, step_id: int, name: str, output: str | None, started: int) -> StepWrite:
    return StepWrite(
        workflow_id=ctx.workflow_id,
        executor_id=ctx.executor_id,
        owner_epoch=ctx.owner_epoch,
        step_id=step_id,
        name=name,
        output=output,
        serialization=ctx.engine.serializer.name,
        started_at=started,
    )


def _lost_ownership(ctx: WorkflowContext, step_id: int) -> None:
    ctx.engine.resolve_unrecorded_step(ctx, step_id)


# -- waits -----------------------------------------------------------------------------------


class _Wait:
    """One durable wait inside a workflow: recorded deadline, wake-up keys, and one `poll`."""

    def __init__(
        self,
        ctx: WorkflowContext,
        step_id: int,
        name: str,
        label: str,
        timeout_seconds: float | None,
        keys: list[str],
        attempt: Callable[[StepWrite], tuple[bool, Any]] | None,
        final_output: Callable[[int | None], Any],
    ) -> None:
        self.ctx = ctx
        self.engine = ctx.engine
        self.step_id = step_id
        self.name = name
        self.keys = [*keys, f"wake:{ctx.workflow_id}"]
        self.attempt = attempt
        self.final_output = final_output
        self.started = now_ms()
        resume = ctx.resume_wait
        if resume is not None and resume[0] == step_id:
            self.deadline = resume[1]  # keep the original deadline across a restart
        else:
            self.deadline = None if timeout_seconds is None else self.started + int(timeout_seconds * 1000)
        self.label = label
        self.began = False
        self.polls = 0

    def begin(self) -> None:
        engine = self.ctx.engine
        if not engine.messages.begin_wait(
            workflow_id=self.ctx.workflow_id,
            executor_id=self.ctx.executor_id,
            owner_epoch=self.ctx.owner_epoch,
            topic=self.label,
            deadline=self.deadline,
            step_id=self.step_id,
        ):
            _lost_ownership(self.ctx, self.step_id)
        self.began = True

    def poll(self) -> tuple[bool, Any]:
        """One round: done? and the value. Runs in a thread (blocking database work)."""
        self.ctx.check_alive()
        if not self.began:
            self.begin()
        step = _step_write(self.ctx, self.step_id, self.name, None, self.started)
        if self.attempt is not None:
            done, value = self.attempt(step)
            if done:
                return True, value
        elif self.polls:
            self.ctx.engine.check_still_owner(self.ctx, self.step_id)  # a cancel from another process
        self.polls += 1
        if self.deadline is not None and now_ms() >= self.deadline:
            value = self.final_output(self.deadline)
            step.output = self.ctx.engine.serializer.dumps(value)
            if not self.ctx.engine.messages.finish_wait(step=step, now=now_ms()):
                _lost_ownership(self.ctx, self.step_id)
            return True, value
        return False, None

    def next_timeout(self) -> float | None:
        limits: list[float] = []
        now = now_ms()
        if self.deadline is not None:
            limits.append(max(0.0, (self.deadline - now) / 1000))
        if self.ctx.deadline_ms is not None:
            limits.append(max(0.0, (self.ctx.deadline_ms - now) / 1000))
        if self.attempt is not None:
            limits.append(self.ctx.engine.poll_interval)
        else:
            limits.append(self.ctx.engine.cancel_poll_interval)
        return min(limits) if limits else None


class _Poller(Protocol):
    """A wait, seen by its drivers: the wake-up keys, one blocking `poll`, and how long to sleep."""

    engine: Engine
    keys: list[str]

    def poll(self) -> tuple[bool, Any]: ...

    def next_timeout(self) -> float | None: ...


def _drive_sync(wait: _Poller) -> Any:
    with wait.engine.waiters.register(*wait.keys) as waiter:
        while True:
            done, value = wait.poll()
            if done:
                return value
            waiter.wait(wait.next_timeout())
            waiter.clear()


async def _drive_async(wait: _Poller) -> Any:
    engine = wait.engine
    with engine.waiters.register(*wait.keys) as waiter:
        while True:
            done, value = await engine.run_io(wait.poll)
            if done:
                return value
            await waiter.wait_async(wait.next_timeout())
            waiter.clear()


def _prepare(operation: str, name: str) -> tuple[WorkflowContext, int, Any]:
    """Take the step id; return the recorded outcome if this wait already completed (else a sentinel)."""
    ctx = _workflow_context(operation)
    step_id = ctx.take_step_id()
    row = ctx.begin_step(step_id, name)
    if row is not None:
        return ctx, step_id, (ctx.replay(row, Any),)
    return ctx, step_id, None


def _live_step(ctx: WorkflowContext, name: str) -> int | None:
    """Take the next step id; None when that step is already recorded (replayed: nothing to redo)."""
    step_id = ctx.take_step_id()
    return step_id if ctx.begin_step(step_id, name) is None else None


def _sleep_wait(ctx: WorkflowContext, step_id: int, seconds: float) -> _Wait:
    return _Wait(
        ctx, step_id, "durable.sleep", wait_label("sleep"), seconds, [], None, lambda deadline: deadline
    )


def sleep(seconds: float) -> None:
    """Sleep durably: the wake-up time is recorded first, so a restart sleeps only the remainder."""
    seconds = check_timeout(seconds) or 0.0
    ctx, step_id, recorded = _prepare("sleep", "durable.sleep")
    if recorded is None:
        _drive_sync(_sleep_wait(ctx, step_id, seconds))


async def sleep_async(seconds: float) -> None:
    seconds = check_timeout(seconds) or 0.0
    ctx, step_id, recorded = _prepare("sleep", "durable.sleep")
    if recorded is None:
        await _drive_async(_sleep_wait(ctx, step_id, seconds))


def _recv_wait(ctx: WorkflowContext, step_id: int, topic: str | None, timeout: float | None) -> _Wait:
    name = topic if topic is not None else DEFAULT_TOPIC
    engine = ctx.engine

    def attempt(step: StepWrite) -> tuple[bool, Any]:
        state, message, serialization = engine.messages.consume(topic=name, step=step, now=now_ms())
        if state == "not-owner":
            _lost_ownership(ctx, step_id)
        if state == "received":
            return True, None if message is None else engine.serializer_for(serialization or "json").loads(
                message
            )
        return False, None

    label = wait_label("recv", topic)  # WaitInfo.topic reads back exactly `topic`
    return _Wait(
        ctx,
        step_id,
        "durable.recv",
        label,
        timeout,
        [f"msg:{ctx.workflow_id}:{name}"],
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
    return _drive_sync(_recv_wait(ctx, step_id, topic, timeout))


async def recv_async(topic: str | None = None, timeout_seconds: float | None = 60.0) -> Any:
    reject_nul(topic=topic)
    timeout = check_timeout(timeout_seconds)
    ctx, step_id, recorded = _prepare("recv", "durable.recv")
    if recorded is not None:
        return recorded[0]
    return await _drive_async(_recv_wait(ctx, step_id, topic, timeout))


def _event_wait(
    ctx: WorkflowContext, step_id: int, workflow_id: str, key: str, timeout: float | None
) -> _Wait:
    engine = ctx.engine

    def attempt(step: StepWrite) -> tuple[bool, Any]:
        found = engine.messages.get_event(workflow_id, key)
        if found is None:
            return False, None
        step.output = found[0]
        if not engine.messages.finish_wait(step=step, now=now_ms()):
            _lost_ownership(ctx, step_id)
        return True, engine.serializer_for(found[1]).loads(found[0])

    return _Wait(
        ctx,
        step_id,
        "durable.get_event",
        wait_label("event", f"{workflow_id}:{key}"),
        timeout,
        [f"event:{workflow_id}:{key}"],
        attempt,
        lambda _deadline: None,
    )


def get_event(workflow_id: str, key: str, timeout_seconds: float | None = 60.0) -> Any:
    """The value of another workflow's event `key`, waiting up to the timeout for it to be set (else None)."""
    reject_nul(workflow_id=workflow_id, key=key)
    timeout = check_timeout(timeout_seconds)
    ctx = current_context()
    if ctx is None:
        from ._starting import resolve_engine

        return resolve_engine().get_event(workflow_id, key, timeout_seconds)
    ctx, step_id, recorded = _prepare("get_event", "durable.get_event")
    if recorded is not None:
        return recorded[0]
    return _drive_sync(_event_wait(ctx, step_id, workflow_id, key, timeout))


async def get_event_async(workflow_id: str, key: str, timeout_seconds: float | None = 60.0) -> Any:
    reject_nul(workflow_id=workflow_id, key=key)
    timeout = check_timeout(timeout_seconds)
    ctx = current_context()
    if ctx is None:
        from ._starting import resolve_engine

        return await resolve_engine().get_event_async(workflow_id, key, timeout_seconds)
    ctx, step_id, recorded = _prepare("get_event", "durable.get_event")
    if recorded is not None:
        return recorded[0]
    return await _drive_async(_event_wait(ctx, step_id, workflow_id, key, timeout))


# -- one-shot operations -------------------------------------------------------------------


def _send_op(
    ctx: WorkflowContext, step_id: int, destination_id: str, message: Any, topic: str | None
) -> None:
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
        step=_step_write(ctx, step_id, "durable.send", None, started),
    )
    if state == "not-owner":
        _lost_ownership(ctx, step_id)
    if state == "no-destination":
        error = WorkflowNotFoundError(destination_id)
        ctx.record(step_id, "durable.send", error=error, started_at=started)
        raise error
    engine.waiters.notify(f"msg:{destination_id}:{name}")


def send(destination_id: str, message: Any, topic: str | None = None) -> None:
    """Send a message to a workflow; inside a workflow the send is a step (never sent twice)."""
    reject_nul(destination_id=destination_id, topic=topic)
    ctx = current_context()
    if ctx is None:
        from ._starting import resolve_engine

        resolve_engine().send(destination_id, message, topic)
        return
    step_id = _live_step(ctx, "durable.send")
    if step_id is not None:
        _send_op(ctx, step_id, destination_id, message, topic)


async def send_async(destination_id: str, message: Any, topic: str | None = None) -> None:
    reject_nul(destination_id=destination_id, topic=topic)
    ctx = current_context()
    if ctx is None:
        from ._starting import resolve_engine

        await resolve_engine().send_async(destination_id, message, topic)
        return
    step_id = _live_step(ctx, "durable.send")
    if step_id is not None:
        await ctx.engine.run_io(lambda: _send_op(ctx, step_id, destination_id, message, topic))


def _set_event_op(ctx: WorkflowContext, step_id: int, key: str, value: Any) -> None:
    engine = ctx.engine
    started = now_ms()
    text = _dumps(engine, value, f"set_event({key!r})")
    if not engine.messages.set_event(
        key=key,
        value=text,
        serialization=engine.serializer.name,
        step=_step_write(ctx, step_id, "durable.set_event", None, started),
        now=started,
    ):
        _lost_ownership(ctx, step_id)
    engine.waiters.notify(f"event:{ctx.workflow_id}:{key}")


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


def _stream_op(ctx: WorkflowContext, step_id: int, name: str, key: str, value: Any, closed: bool) -> None:
    engine = ctx.engine
    started = now_ms()
    text = None if closed else _dumps(engine, value, f"write_stream({key!r})")
    if not engine.messages.write_stream(
        key=key,
        value=text,
        serialization=engine.serializer.name,
        closed=closed,
        step=_step_write(ctx, step_id, name, None, started),
        now=started,
    ):
        _lost_ownership(ctx, step_id)
    engine.waiters.notify(f"stream:{ctx.workflow_id}:{key}")


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
    engine: Engine, destination_id: str, message: Any, topic: str | None, idempotency_key: str | None
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
    if state == "no-destination":
        raise WorkflowNotFoundError(destination_id)
    engine.waiters.notify(f"msg:{destination_id}:{name}")


class _EventPoll:
    def __init__(self, engine: Engine, workflow_id: str, key: str, timeout: float | None) -> None:
        self.engine = engine
        self.workflow_id = workflow_id
        self.key = key
        self.keys = [f"event:{workflow_id}:{key}"]
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


def engine_get_event(engine: Engine, workflow_id: str, key: str, timeout_seconds: float | None) -> Any:
    reject_nul(workflow_id=workflow_id, key=key)
    return _drive_sync(_EventPoll(engine, workflow_id, key, check_timeout(timeout_seconds)))


async def engine_get_event_async(
    engine: Engine, workflow_id: str, key: str, timeout_seconds: float | None
) -> Any:
    reject_nul(workflow_id=workflow_id, key=key)
    return await _drive_async(_EventPoll(engine, workflow_id, key, check_timeout(timeout_seconds)))


class _StreamReader:
    def __init__(self, engine: Engine, workflow_id: str, key: str) -> None:
        self.engine = engine
        self.workflow_id = workflow_id
        self.key = key
        self.offset = 0

    def poll(self) -> tuple[list[Any], bool]:
        """New values, and whether the stream is over (closed, or its workflow finished)."""
        from .storage import TERMINAL_STATUSES

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
            if row.status in TERMINAL_STATUSES:
                tail = self.engine.messages.read_stream(self.workflow_id, self.key, self.offset)
                values.extend(
                    self.engine.serializer_for(s).loads(v)
                    for _, v, s, closed in tail
                    if not closed and v is not None
                )
                return values, True
        return values, False


def engine_read_stream(engine: Engine, workflow_id: str, key: str) -> Iterator[Any]:
    reject_nul(workflow_id=workflow_id, key=key)
    reader = _StreamReader(engine, workflow_id, key)
    with engine.waiters.register(f"stream:{workflow_id}:{key}", f"done:{workflow_id}") as waiter:
        while True:
            values, finished = reader.poll()
            yield from values
            if finished:
                return
            if not values:
                waiter.wait(engine.poll_interval)
                waiter.clear()


async def engine_read_stream_async(engine: Engine, workflow_id: str, key: str) -> AsyncIterator[Any]:
    reject_nul(workflow_id=workflow_id, key=key)
    reader = _StreamReader(engine, workflow_id, key)
    with engine.waiters.register(f"stream:{workflow_id}:{key}", f"done:{workflow_id}") as waiter:
        while True:
            values, finished = await engine.run_io(reader.poll)
            for value in values:
                yield value
            if finished:
                return
            if not values:
                await waiter.wait_async(engine.poll_interval)
                waiter.clear()


# for other services of the core (budgets) that wait the same way
Wait = _Wait
drive_sync = _drive_sync
drive_async = _drive_async
lost_ownership = _lost_ownership
