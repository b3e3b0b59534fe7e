"""The per-run `event_stream_handler` of a durable run.

A handler passed to `DurableAgent.run(event_stream_handler=...)` (or `run_stream`) is live-only:
it is not a workflow input, and an exception it raises is logged instead of failing the run. It
never runs around a step, so nothing it does (including calling `@step` functions, or being one)
can take the place of a model request or a tool call in the workflow's step sequence:

- Model events (`PartStartEvent`, `PartDeltaEvent`, ...) reach it live, inside the model-request
  step, while the model streams. Steps it calls there are plain calls of that step's body.
- The other events (tool calls and results, ...) reach it in workflow code once the node that
  produced them has finished, so after that node's steps, with any step it calls run as a plain
  call (the handler is not a workflow input: a replay runs without it, so nothing it does may be in
  the record). A replay in the process that started the run delivers them again.
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import AsyncIterable, AsyncIterator, Generator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic_ai.agent import EventStreamHandler
from pydantic_ai.messages import AgentStreamEvent, ModelResponseStreamEvent
from pydantic_ai.tools import RunContext

from durable_core.extend import steps_inline

from ._logging import logger

__all__ = ["current_run_handler", "fan_out", "guarded", "ignore_events", "run_handler_scope", "workflow_side"]


def _union_members(tp: Any) -> tuple[type[Any], ...]:
    if typing.get_origin(tp) is typing.Annotated:
        return _union_members(typing.get_args(tp)[0])
    args = typing.get_args(tp)
    if args:
        return tuple(member for arg in args for member in _union_members(arg))
    return (tp,)


MODEL_EVENT_TYPES: tuple[type[Any], ...] = _union_members(ModelResponseStreamEvent)
"""The events of a model's response stream: delivered inside the model-request step."""

_run_handler: ContextVar[EventStreamHandler[Any] | None] = ContextVar(
    "durable_pydantic_ai_run_event_handler", default=None
)


def current_run_handler() -> EventStreamHandler[Any] | None:
    """The (guarded) per-run handler of the durable run being executed here, if any."""
    return _run_handler.get()


@contextmanager
def run_handler_scope(handler: EventStreamHandler[Any] | None) -> Generator[None]:
    """Make `handler` the per-run handler that model-request steps deliver live events to."""
    token = _run_handler.set(handler)
    try:
        yield
    finally:
        _run_handler.reset(token)


def guarded(handler: EventStreamHandler[Any]) -> EventStreamHandler[Any]:
    """Keep a per-run handler from failing the durable run it observes (its errors are logged)."""

    async def handle(ctx: RunContext[Any], events: AsyncIterable[AgentStreamEvent]) -> None:
        try:
            await handler(ctx, events)
        except Exception:
            logger.exception("event_stream_handler of a durable run raised; the run continues")

    return handle


async def _replay(events: Sequence[AgentStreamEvent]) -> AsyncIterator[AgentStreamEvent]:
    for event in events:
        yield event


def workflow_side(handler: EventStreamHandler[Any]) -> EventStreamHandler[Any]:
    """The handler pydantic-ai calls in workflow code for each node's stream.

    It runs the node to its end itself (each model request and tool call a step, taken in workflow
    code) and only then hands `handler` the node's events that did not already reach it live
    inside the model-request step.
    """

    async def handle(ctx: RunContext[Any], events: AsyncIterable[AgentStreamEvent]) -> None:
        collected = [event async for event in events if not isinstance(event, MODEL_EVENT_TYPES)]
        if collected:
            with steps_inline():  # live-only code: what it calls is not part of the run's record
                await handler(ctx, _replay(collected))

    return handle


async def ignore_events(ctx: RunContext[Any], events: AsyncIterable[AgentStreamEvent]) -> None:
    """A handler that lets the node's stream run without looking at it."""


_END = object()


def fan_out(handlers: Sequence[EventStreamHandler[Any]]) -> EventStreamHandler[Any]:
    """One handler that feeds the same live stream to each of `handlers`, concurrently."""

    async def handle(ctx: RunContext[Any], events: AsyncIterable[AgentStreamEvent]) -> None:
        queues: list[asyncio.Queue[Any]] = [asyncio.Queue() for _ in handlers]

        async def feed(queue: asyncio.Queue[Any]) -> AsyncIterator[AgentStreamEvent]:
            while (item := await queue.get()) is not _END:
                yield item

        tasks = [
            asyncio.ensure_future(handler(ctx, feed(queue)))
            for handler, queue in zip(handlers, queues, strict=True)
        ]
        try:
            async for event in events:
                for queue in queues:
                    queue.put_nowait(event)
        finally:
            for queue in queues:
                queue.put_nowait(_END)
        await asyncio.gather(*tasks)

    return handle
