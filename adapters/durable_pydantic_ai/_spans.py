"""`StepSpans`: durable step spans around Pydantic AI's own `chat ...` and `execute_tool ...` spans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_ai.capabilities import AbstractCapability, CapabilityOrdering, Instrumentation
from pydantic_ai.capabilities.abstract import (
    ValidatedToolArgs,
    WrapModelRequestHandler,
    WrapToolExecuteHandler,
)
from pydantic_ai.messages import ModelResponse, ToolCallPart
from pydantic_ai.models import ModelRequestContext
from pydantic_ai.tools import AgentDepsT, RunContext, ToolDefinition

from durable_core import early_step_span, in_workflow

from ._steps import in_step

__all__ = ["StepSpans"]


def _journaled() -> bool:
    """Whether a model request or tool call made here becomes a step (see `Durability.in_durable_context`)."""
    return in_workflow() and not in_step()


@dataclass
class StepSpans(AbstractCapability[AgentDepsT]):
    """Opens each durable step's span outside Pydantic AI's instrumentation spans.

    Pydantic AI's `Instrumentation` capability wraps every model request and tool call from the
    outside, while durability capabilities run innermost, at the call itself. With this capability
    (ordered to wrap `Instrumentation`) the trace reads `step <agent>.model.request` >
    `chat <model>` and `step <agent>.tool.<name>` > `execute_tool <name>`: the durable step is the
    parent, as in the rest of the workflow's trace. A streamed request (`run_stream`, event
    handlers) is consumed in another task than the one `chat` is opened in, so its one step span,
    `step <agent>.model.request_stream`, is the child of `chat` instead. A step replayed from the record leaves no span
    (neither ours nor Pydantic AI's). `DurableAgent` adds it by itself; with the `Durability`
    capability in your own workflow, add it beside: `capabilities=[Durability(), StepSpans()]`.

    It does nothing without OpenTelemetry tracing, outside workflows, and for tools that run
    without a step (`metadata={'durable': False}`).
    """

    def get_ordering(self) -> CapabilityOrdering:
        return CapabilityOrdering(position="outermost", wraps=(Instrumentation,))

    async def wrap_model_request(
        self,
        ctx: RunContext[AgentDepsT],
        *,
        request_context: ModelRequestContext,
        handler: WrapModelRequestHandler,
    ) -> ModelResponse:
        if not _journaled() or request_context.streaming:
            # A streamed request's step starts in the task that consumes the stream, not in this one,
            # so it could not adopt a span opened here: it opens its own, under `chat`, and a span
            # opened here would only be a second, unrecorded one.
            return await handler(request_context)
        agent_name = ctx.agent.name if ctx.agent is not None else None
        with early_step_span(f"{agent_name or 'agent'}.model.request"):
            return await handler(request_context)

    async def wrap_tool_execute(
        self,
        ctx: RunContext[AgentDepsT],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: ValidatedToolArgs,
        handler: WrapToolExecuteHandler,
    ) -> Any:
        if not _journaled() or (tool_def.metadata or {}).get("durable") is False:
            return await handler(args)
        agent_name = ctx.agent.name if ctx.agent is not None else None
        with early_step_span(f"{agent_name or 'agent'}.tool.{call.tool_name}"):
            return await handler(args)
