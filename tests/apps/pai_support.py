"""Agents and scripted models shared by the Pydantic AI adapter tests (and the crash subprocess)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from pydantic import TypeAdapter
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults

TOOLS = ("tool_a", "tool_b", "tool_c")


def operation_steps(*, streamed: bool = False) -> list[str]:
    """The step names (without the agent's prefix) of one run of `three_tool_agent`, in order."""
    request = "model.request_stream" if streamed else "model.request"
    return [request, "tool.tool_a", request, "tool.tool_b", request, "tool.tool_c", request]


def unique_name(prefix: str = "agent") -> str:
    """Agent names are unique per process: each test builds its own."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def responses_so_far(messages: list[ModelMessage]) -> int:
    return sum(1 for message in messages if message.kind == "response")


def three_tool_agent(
    name: str, record: Callable[[str], None], crash_in: str | None = None
) -> Agent[None, str]:
    """Calls tool_a, tool_b, tool_c one after the other, then answers: 4 model requests, 3 tool calls."""

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        record("model")
        step = responses_so_far(messages)
        if step < len(TOOLS):
            return ModelResponse(parts=[ToolCallPart(TOOLS[step], {"x": step}, tool_call_id=f"call-{step}")])
        return ModelResponse(parts=[TextPart("done: " + ",".join(str(m.kind) for m in messages[-1:]))])

    async def stream_model(
        messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        response = model(messages, info)
        for part in response.parts:
            if isinstance(part, ToolCallPart):
                yield {
                    0: DeltaToolCall(
                        name=part.tool_name, json_args=part.args_as_json_str(), tool_call_id=part.tool_call_id
                    )
                }
            elif isinstance(part, TextPart):
                yield part.content

    agent = Agent(FunctionModel(model, stream_function=stream_model), name=name)

    def make(tool: str) -> Callable[[int], str]:
        def run_tool(x: int) -> str:
            record(tool)
            if tool == crash_in:
                os._exit(17)  # a real crash: no cleanup, no exception handlers
            return f"{tool}({x})"

        run_tool.__name__ = tool
        return run_tool

    for tool in TOOLS:
        agent.tool_plain(make(tool))
    return agent


class CallLog:
    """Calls of models and tools, in memory or appended to a file shared with subprocesses."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.calls: list[str] = []

    def __call__(self, call: str) -> None:
        self.calls.append(call)
        if self.path is not None:
            with self.path.open("a") as handle:
                handle.write(f"{os.environ.get('PHASE', '?')}:{call}\n")
                handle.flush()
                os.fsync(handle.fileno())

    def lines(self) -> list[str]:
        assert self.path is not None
        return self.path.read_text().split() if self.path.exists() else []


async def wait_for_decision(ctx: RunContext[None], requests: DeferredToolRequests) -> DeferredToolResults:
    """A `handle_deferred_tool_calls` handler that waits for a decision from elsewhere."""
    from pydantic_ai.external_events import wait_for_external_event

    async def ask(token: str) -> None:
        return None  # a real one would post the token somewhere

    payload = await wait_for_external_event("approval", ask=ask, timeout=None)
    decision = TypeAdapter(DeferredToolResults).validate_python(payload)
    return requests.build_results(approvals=decision.approvals, calls=decision.calls)


def approval_agent(name: str, record: Callable[[str], None], *, form: str) -> Agent[None, object]:
    """A model that asks to delete a file (a tool needing approval), then reports what happened.

    `form='deferred'`: the output type includes `DeferredToolRequests`: a run that defers returns
    them (the two-run pattern of pydantic-ai).
    `form='request_input'`: a `RequestInput` capability waits inside the run.
    `form='in_run'`: the output type is plain `str`, so the run waits inside for the results.
    `form='handler'`: a `HandleDeferredToolCalls` capability waits (`wait_for_external_event`).
    """
    from pydantic_ai.capabilities import HandleDeferredToolCalls, RequestInput

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        record("model")
        if responses_so_far(messages) == 0:
            return ModelResponse(
                parts=[ToolCallPart("delete_file", {"path": "report.txt"}, tool_call_id="del-1")]
            )
        returns = [part for message in messages for part in message.parts if part.part_kind == "tool-return"]
        return ModelResponse(parts=[TextPart(f"finished: {returns[-1].content if returns else 'nothing'}")])

    if form == "deferred":
        agent: Agent[None, object] = Agent(
            FunctionModel(model), name=name, output_type=[str, DeferredToolRequests]
        )
    elif form == "request_input":
        agent = Agent(
            FunctionModel(model), name=name, capabilities=[RequestInput(lambda ctx, requests, token: None)]
        )
    elif form == "handler":
        agent = Agent(
            FunctionModel(model), name=name, capabilities=[HandleDeferredToolCalls(wait_for_decision)]
        )
    else:
        agent = Agent(FunctionModel(model), name=name)

    @agent.tool_plain(requires_approval=True)
    def delete_file(path: str) -> str:
        record("delete_file")
        return f"deleted {path}"

    return agent
