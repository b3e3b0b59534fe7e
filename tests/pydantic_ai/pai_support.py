"""Agents and scripted models shared by the Pydantic AI adapter tests (and the crash subprocess)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

TOOLS = ('tool_a', 'tool_b', 'tool_c')


def unique_name(prefix: str = 'agent') -> str:
    """Agent names are unique per process: each test builds its own."""
    return f'{prefix}-{uuid.uuid4().hex[:8]}'


def responses_so_far(messages: list[ModelMessage]) -> int:
    return sum(1 for message in messages if message.kind == 'response')


def three_tool_agent(name: str, record: Callable[[str], None], crash_in: str | None = None) -> Agent[None, str]:
    """Calls tool_a, tool_b, tool_c one after the other, then answers: 4 model requests, 3 tool calls."""

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        record('model')
        step = responses_so_far(messages)
        if step < len(TOOLS):
            return ModelResponse(parts=[ToolCallPart(TOOLS[step], {'x': step}, tool_call_id=f'call-{step}')])
        return ModelResponse(parts=[TextPart('done: ' + ','.join(str(m.kind) for m in messages[-1:]))])

    agent = Agent(FunctionModel(model), name=name)

    def make(tool: str) -> Callable[[int], str]:
        def run_tool(x: int) -> str:
            record(tool)
            if tool == crash_in:
                os._exit(17)  # a real crash: no cleanup, no exception handlers
            return f'{tool}({x})'

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
            with self.path.open('a') as handle:
                handle.write(f'{os.environ.get("PHASE", "?")}:{call}\n')
                handle.flush()
                os.fsync(handle.fileno())

    def lines(self) -> list[str]:
        assert self.path is not None
        return self.path.read_text().split() if self.path.exists() else []
