"""MCP toolsets in a DurableAgent: discovery and tool calls are named steps, replayed, crash-safe.

The MCP server is a real stdio subprocess (tests/apps/pai_mcp_calc_server.py) that appends each tool call it
serves to a file, so the tests count real calls. The model is a scripted FunctionModel.

Run as a script, this file is also the process of the crash test:
argv: database_url agent_name model_log server_calls_file phase ('crash' or 'resume').
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from durable_pydantic_ai import Durability, DurableAgent
from fastmcp.client.transports import PythonStdioTransport
from pai_support import CallLog, responses_so_far, unique_name
from pydantic_ai import Agent
from pydantic_ai.exceptions import UserError
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from durable_core import Engine, workflow
from durable_core.testing import run_script

HERE = Path(__file__).parent
SERVER = HERE.parent / "apps" / "pai_mcp_calc_server.py"
SERVER_INSTRUCTIONS = "Use add for arithmetic."


def mcp_toolset(
    calls_file: Path, *, id: str | None = "calc", include_instructions: bool = False
) -> MCPToolset:
    """The calc server over stdio; it exits when the run's MCP session closes (no keep-alive)."""
    transport = PythonStdioTransport(
        SERVER,
        env={"MCP_CALLS_FILE": str(calls_file)},
        keep_alive=False,
        log_file=calls_file.with_suffix(".stderr"),
    )
    return MCPToolset(transport, id=id, include_instructions=include_instructions)


def server_lines(calls_file: Path) -> list[str]:
    return calls_file.read_text().split() if calls_file.exists() else []


def tool_calls(calls_file: Path) -> list[str]:
    """The MCP tool calls the server really served (without its `server-start` lines)."""
    return [line for line in server_lines(calls_file) if line != "server-start"]


def calc_model(record: Callable[[str], None], crash_at: int | None = None) -> FunctionModel:
    """Asks for add(2, 3), then record('hello'), then answers with what the tools returned.

    `crash_at=n`: the process dies (`os._exit`) in the n-th model request (0-based).
    """

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        record("model")
        step = responses_so_far(messages)
        if step == crash_at:
            os._exit(17)  # a real crash: no cleanup, no exception handlers
        if step == 0:
            return ModelResponse(parts=[ToolCallPart("add", {"a": 2, "b": 3}, tool_call_id="add-1")])
        if step == 1:
            return ModelResponse(parts=[ToolCallPart("record", {"text": "hello"}, tool_call_id="rec-1")])
        returns = [
            str(part.content)
            for message in messages
            for part in message.parts
            if isinstance(part, ToolReturnPart)
        ]
        return ModelResponse(parts=[TextPart("done: " + " | ".join(returns))])

    async def stream_model(
        messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        for part in model(messages, info).parts:
            if isinstance(part, ToolCallPart):
                yield {
                    0: DeltaToolCall(
                        name=part.tool_name, json_args=part.args_as_json_str(), tool_call_id=part.tool_call_id
                    )
                }
            elif isinstance(part, TextPart):
                yield part.content

    return FunctionModel(model, stream_function=stream_model)


def calc_agent(
    name: str, record: Callable[[str], None], calls_file: Path, crash_at: int | None = None
) -> Agent[None, str]:
    return Agent(calc_model(record, crash_at), name=name, toolsets=[mcp_toolset(calls_file)])


EXPECTED_OUTPUT = "done: 5 | recorded hello"


async def test_mcp_discovery_and_tool_calls_are_named_steps_and_a_rerun_calls_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    name = unique_name("mcp")
    log = CallLog()
    calls = tmp_path / "calls.log"
    durable_agent = DurableAgent(calc_agent(name, log, calls))

    result = await durable_agent.run("go", run_id="mcp-run")

    assert result.output == EXPECTED_OUTPUT
    assert log.calls == ["model", "model", "model"]
    assert tool_calls(calls) == ["add:2,3", "record:hello"]
    steps = engine.list_steps("mcp-run")
    assert [s.step_id for s in steps] == list(range(1, 7))
    assert [s.name for s in steps] == [
        f"{name}.mcp.calc.get_tools",
        f"{name}.model.request",
        f"{name}.mcp.calc.tool.add",
        f"{name}.model.request",
        f"{name}.mcp.calc.tool.record",
        f"{name}.model.request",
    ]
    assert all(s.error is None for s in steps)
    assert set(steps[0].output) == {"add", "record"}  # the discovered tool definitions
    assert steps[2].output["result"] == 5
    assert steps[4].output["result"] == "recorded hello"
    assert engine.retrieve_workflow("mcp-run").get_status().status == "SUCCESS"

    log.calls.clear()
    before = server_lines(calls)
    again = await durable_agent.run("go", run_id="mcp-run")

    assert again.output == result.output
    assert again.all_messages() == result.all_messages()
    assert log.calls == []  # no model request
    assert server_lines(calls) == before  # no MCP tool call, not even a server process
    assert len(engine.list_steps("mcp-run")) == 6


async def test_mcp_server_instructions_are_a_recorded_discovery_step(engine: Engine, tmp_path: Path) -> None:
    name = unique_name("mcp-instr")
    calls = tmp_path / "calls.log"
    seen: list[str | None] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(info.instructions)
        return ModelResponse(parts=[TextPart("ok")])

    toolset = mcp_toolset(calls, include_instructions=True)
    durable_agent = DurableAgent(Agent(FunctionModel(model), name=name, toolsets=[toolset]))

    result = await durable_agent.run("go", run_id="instr-run")

    assert result.output == "ok"
    assert len(seen) == 1 and SERVER_INSTRUCTIONS in (seen[0] or "")
    assert [s.name for s in engine.list_steps("instr-run")] == [
        f"{name}.mcp.calc.get_tools",
        f"{name}.mcp.calc.get_instructions",
        f"{name}.model.request",
    ]
    assert tool_calls(calls) == []


async def test_streamed_model_requests_and_mcp_tool_calls_are_steps_inside_a_workflow(
    engine: Engine, tmp_path: Path
) -> None:
    name = unique_name("mcp-stream")
    log = CallLog()
    calls = tmp_path / "calls.log"
    durable_agent = DurableAgent(calc_agent(name, log, calls))

    @workflow(name=f"{name}.streaming")
    async def streaming() -> str:
        async with durable_agent.run_stream("go") as stream:
            return await stream.get_output()

    handle = await engine.start_workflow_async(streaming)

    assert await handle.get_result_async() == EXPECTED_OUTPUT
    assert tool_calls(calls) == ["add:2,3", "record:hello"]
    assert [s.name.split(".", 1)[1] for s in engine.list_steps(handle.workflow_id)] == [
        "mcp.calc.get_tools",
        "model.request_stream",
        "mcp.calc.tool.add",
        "model.request_stream",
        "mcp.calc.tool.record",
        "model.request_stream",
    ]


def test_an_mcp_toolset_without_an_id_is_refused_with_an_error_naming_id(tmp_path: Path) -> None:
    calls = tmp_path / "calls.log"

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart("unused")])

    agent = Agent(FunctionModel(model), name=unique_name("mcp-noid"), toolsets=[mcp_toolset(calls, id=None)])
    with pytest.raises(UserError, match=r"MCPToolset\(\.\.\., id=\.\.\.\)") as refused:
        DurableAgent(agent)
    assert "unique `id`" in str(refused.value)

    # The capability form refuses it when the agent is built.
    with pytest.raises(UserError, match=r"MCPToolset\(\.\.\., id=\.\.\.\)"):
        Agent(
            FunctionModel(model),
            name=unique_name("mcp-noid-cap"),
            toolsets=[mcp_toolset(calls, id=None)],
            capabilities=[Durability()],
        )
    assert server_lines(calls) == []  # refused before any server was started


# -- a real process crash after the MCP tool calls completed ------------------------------------------------


def _run_app(
    database_url: str, name: str, model_log: Path, calls: Path, phase: str
) -> subprocess.CompletedProcess[str]:
    args = (database_url, name, str(model_log), str(calls), phase)
    return run_script(
        __file__, *args, env={"PHASE": phase}, import_paths=[HERE.parent / "apps"], timeout_seconds=90
    )


@pytest.mark.crash
def test_crash_after_the_mcp_tool_calls_resumes_without_calling_the_mcp_server_again(
    database_url: str, tmp_path: Path
) -> None:
    name = unique_name("mcp-crashy")
    model_log = tmp_path / "model.log"
    calls = tmp_path / "calls.log"

    crashed = _run_app(database_url, name, model_log, calls, "crash")
    assert crashed.returncode == 17, crashed.stderr
    # The process died in the third model request, after both MCP tool steps were recorded.
    assert model_log.read_text().split() == ["crash:model"] * 3
    assert tool_calls(calls) == ["add:2,3", "record:hello"]

    resumed = _run_app(database_url, name, model_log, calls, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["output"] == EXPECTED_OUTPUT
    # Only the model request in flight at the crash runs again; each MCP tool ran once in total.
    assert model_log.read_text().split() == ["crash:model"] * 3 + ["resume:model"]
    assert tool_calls(calls) == ["add:2,3", "record:hello"]

    with Engine(database_url) as engine:
        assert [s.name for s in engine.list_steps("mcp-crash-run")] == [
            f"{name}.mcp.calc.get_tools",
            f"{name}.model.request",
            f"{name}.mcp.calc.tool.add",
            f"{name}.model.request",
            f"{name}.mcp.calc.tool.record",
            f"{name}.model.request",
        ]
        assert engine.retrieve_workflow("mcp-crash-run").get_status().status == "SUCCESS"


def _crash_app_main() -> None:
    database_url, name, model_log, calls, phase = sys.argv[1:6]
    agent = calc_agent(name, CallLog(Path(model_log)), Path(calls), crash_at=2 if phase == "crash" else None)
    durable_agent = DurableAgent(agent)  # registered before launch, like any workflow
    engine = Engine(database_url, executor_id=f"mcp-crash-test-{phase}")
    engine.launch()
    try:
        result = asyncio.run(durable_agent.run("go", run_id="mcp-crash-run"))
        print(json.dumps({"output": result.output}))
    finally:
        engine.shutdown()


if __name__ == "__main__":
    _crash_app_main()
