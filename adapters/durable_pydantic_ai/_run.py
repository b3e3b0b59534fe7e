"""The machinery of one durable run started by `DurableAgent` outside a workflow.

The run's workflow body (`DurableAgent._make_workflow`) runs the agent from its recorded inputs,
unless the call that started it is in this process: then it takes that call's live arguments
(`LIVE_CALLS`), which may hold what cannot be recorded (callables, per-run toolsets), and hands
the `AgentRunResult` back as the live object rather than its JSON. For `iter()` and `run_stream()`
the caller's own block runs the agent (`CallerRun`): the body lends it the workflow's context.
"""

from __future__ import annotations

import asyncio
import contextvars
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.capabilities.abstract import WrapRunHandler
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT, RunContext

from durable_core import recorded_steps
from durable_core.extend import LiveHandoff

__all__ = [
    "LIVE_CALLS",
    "CallerRun",
    "CompletedRun",
    "LiveCall",
    "adopt_context",
    "recorded_streaming",
    "restore_context",
    "retrieve_exception",
]


class CallerRun:
    """The hand-over between `iter()` outside a workflow and the workflow it starts.

    The workflow's body does not run the agent: it hands the caller its execution context (the
    workflow's context variables) and waits, and the caller's `async with` block runs the agent in
    it, live, as the body would. The body then records what the block ended with.
    """

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[contextvars.Context] = loop.create_future()
        self.finished: asyncio.Future[AgentRunResult[Any] | None] = loop.create_future()


@dataclass
class LiveCall:
    """The caller's original run arguments, handed to the workflow body it starts in-process."""

    kwargs: dict[str, Any]
    result: AgentRunResult[Any] | None = None
    caller_run: CallerRun | None = None


LIVE_CALLS: LiveHandoff[LiveCall] = LiveHandoff("durable_pydantic_ai.run")
"""Offered around the workflow call of a run started here; claimed once by its body."""

_MISSING = object()

ContextTokens = list[tuple[ContextVar[Any], contextvars.Token[Any]]]


def adopt_context(context: contextvars.Context) -> ContextTokens:
    """Set every context variable of `context` here too (undone, in reverse, by `restore_context`)."""
    tokens: ContextTokens = []
    for var, value in context.items():
        if var.get(_MISSING) is not value:
            tokens.append((var, var.set(value)))
    return tokens


def restore_context(tokens: ContextTokens) -> None:
    for var, token in reversed(tokens):
        var.reset(token)


def recorded_streaming() -> bool:
    """Whether the run being recovered made streamed model requests (so its replay must too)."""
    return any(info.name.endswith(".model.request_stream") for info in recorded_steps().values())


def retrieve_exception(task: asyncio.Future[Any]) -> None:
    """Done-callback: mark a task's exception retrieved (it is reported to the caller elsewhere)."""
    if not task.cancelled():
        task.exception()


class CompletedRun(AbstractCapability[AgentDepsT]):
    """Short-circuits `iter()` with the recorded result of a finished run (`wrap_run` protocol)."""

    def __init__(self, result: AgentRunResult[Any]) -> None:
        self._result = result

    async def wrap_run(self, ctx: RunContext[AgentDepsT], *, handler: WrapRunHandler) -> AgentRunResult[Any]:
        # `run_stream()` reads a short-circuited run's messages from the run's own history list.
        ctx.messages[:] = self._result.all_messages()
        return self._result
