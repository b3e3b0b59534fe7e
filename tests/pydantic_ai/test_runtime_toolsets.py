"""Per-run toolsets that execute tools, and realtime sessions, are refused inside a durable run.

Their tool calls (or the live connection) could not be steps, so a crash would repeat their side
effects: pydantic-ai's own durable integrations refuse them the same way. Non-executing toolsets
(`ExternalToolset`) are allowed, and so is a `FunctionToolset` whose tools opt out of steps.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from durable_pydantic_ai import Durability, DurableAgent
from fastmcp.client.transports import PythonStdioTransport
from pai_support import CallLog, responses_so_far, unique_name
from pydantic_ai import Agent, FunctionToolset, Tool
from pydantic_ai.capabilities import Toolset
from pydantic_ai.exceptions import UserError
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.realtime import RealtimeModel, RealtimeModelSettings, RealtimeSession
from pydantic_ai.realtime.codec import RealtimeConnection
from pydantic_ai.tools import DeferredToolRequests, ToolDefinition
from pydantic_ai.toolsets import DynamicToolset, ExternalToolset

from durable_core import Engine, workflow

REFUSED = r"`{}` cannot be passed to `run\(toolsets=...\)` at runtime with durable-agents"
CALLS: list[str] = []


def runtime_tool() -> str:
    CALLS.append("runtime_tool")
    return "tool-result"


def call_runtime_tool(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if responses_so_far(messages) == 0:
        return ModelResponse(parts=[ToolCallPart("runtime_tool", {}, tool_call_id="rt-1")])
    return ModelResponse(parts=[TextPart("done")])


def executing_toolset(kind: str) -> Any:
    if kind == "FunctionToolset":
        return FunctionToolset([runtime_tool], id="runtime_fn")
    if kind == "DynamicToolset":
        return DynamicToolset(lambda ctx: FunctionToolset([runtime_tool]), id="runtime_dynamic")
    # Refused before the server would ever start.
    return MCPToolset(
        PythonStdioTransport(Path(__file__).parents[1] / "apps" / "pai_mcp_calc_server.py"), id="runtime_mcp"
    )


@pytest.mark.parametrize("kind", ["FunctionToolset", "DynamicToolset", "MCPToolset"])
async def test_durable_agent_refuses_executing_toolsets_per_run_in_every_entry_point(
    engine: Engine, kind: str
) -> None:
    name = unique_name("refuse")
    durable_agent = DurableAgent(Agent(FunctionModel(call_runtime_tool), name=name))
    CALLS.clear()

    with pytest.raises(UserError, match=REFUSED.format(kind)) as refused:
        await durable_agent.run("go", toolsets=[executing_toolset(kind)])
    assert "pass it to the agent constructor" in str(refused.value)
    assert "`ExternalToolset` can be passed at runtime" in str(refused.value)
    with pytest.raises(UserError, match=REFUSED.format(kind)):
        async with durable_agent.iter("go", toolsets=[executing_toolset(kind)]):
            pass
    with pytest.raises(UserError, match=REFUSED.format(kind)):
        async with durable_agent.run_stream("go", toolsets=[executing_toolset(kind)]):
            pass
    # ... and when a capability passed per run contributes it.
    with pytest.raises(UserError, match=REFUSED.format(kind)):
        await durable_agent.run("go", capabilities=[Toolset(executing_toolset(kind))])

    @workflow(name=f"{name}.inside")
    async def inside() -> str:
        return (await durable_agent.run("go", toolsets=[executing_toolset(kind)])).output

    handle = await engine.start_workflow_async(inside)
    with pytest.raises(UserError, match=REFUSED.format(kind)):
        await handle.get_result_async(timeout_seconds=30)

    assert CALLS == []
    assert engine.list_workflows(name=durable_agent.workflow_name) == []  # refused before starting


def test_run_sync_refuses_them_too(engine: Engine) -> None:
    durable_agent = DurableAgent(Agent(FunctionModel(call_runtime_tool), name=unique_name("sync")))
    with pytest.raises(UserError, match=REFUSED.format("FunctionToolset")):
        durable_agent.run_sync("go", toolsets=[FunctionToolset([runtime_tool], id="runtime_fn")])


@pytest.mark.parametrize("how", ["toolsets", "capabilities", "iter", "run_stream"])
async def test_the_capability_form_refuses_them_inside_a_workflow(engine: Engine, how: str) -> None:
    name = unique_name("capform")
    agent = Agent(FunctionModel(call_runtime_tool), name=name, capabilities=[Durability()])
    CALLS.clear()

    @workflow(name=f"{name}.wf")
    async def run_it() -> str:
        toolset = FunctionToolset([runtime_tool], id="runtime_fn")
        if how == "toolsets":
            return (await agent.run("go", toolsets=[toolset])).output
        if how == "capabilities":
            return (await agent.run("go", capabilities=[Toolset(toolset)])).output
        if how == "iter":
            async with agent.iter("go", toolsets=[toolset]) as run:
                async for _ in run:
                    pass
            return "iterated"
        async with agent.run_stream("go", toolsets=[toolset]) as stream:
            return await stream.get_output()

    handle = await engine.start_workflow_async(run_it)
    with pytest.raises(UserError, match=REFUSED.format("FunctionToolset")):
        await handle.get_result_async(timeout_seconds=30)
    assert CALLS == []

    # Outside a workflow the capability is transparent: the toolset runs as in a plain agent.
    assert (
        await agent.run("go", toolsets=[FunctionToolset([runtime_tool], id="runtime_fn")])
    ).output == "done"
    assert CALLS == ["runtime_tool"]


async def test_non_executing_and_opted_out_toolsets_are_allowed(engine: Engine) -> None:
    def call_external(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[ToolCallPart("external", {"query": "x"}, tool_call_id="ext-1")])

    agent = Agent(
        FunctionModel(call_external), name=unique_name("external"), output_type=[str, DeferredToolRequests]
    )
    external = ExternalToolset(
        [ToolDefinition(name="external", parameters_json_schema={"type": "object", "properties": {}})],
        id="external",
    )
    result = await DurableAgent(agent).run("go", toolsets=[external], run_id="external-run")
    assert result.output == DeferredToolRequests(
        calls=[ToolCallPart("external", {"query": "x"}, tool_call_id="ext-1")]
    )

    CALLS.clear()
    inline = FunctionToolset([Tool(runtime_tool, metadata={"durable": False})], id="inline")
    durable_agent = DurableAgent(Agent(FunctionModel(call_runtime_tool), name=unique_name("inline")))
    assert (await durable_agent.run("go", toolsets=[inline], run_id="inline-run")).output == "done"
    assert CALLS == ["runtime_tool"]
    # The opted-out tool ran inline: the run's steps are its model requests only.
    assert [s.name.split(".", 1)[1] for s in engine.list_steps("inline-run")] == ["model.request"] * 2


class _Connection(RealtimeConnection):
    async def send(self, content: Any) -> None:  # pragma: no cover - nothing is sent
        return None

    async def frames(self) -> AsyncIterator[Any]:  # type: ignore[override]
        return
        yield  # pragma: no cover


class _RealtimeModel(RealtimeModel):
    @property
    def model_name(self) -> str:
        return "fake-realtime"

    @property
    def system(self) -> str:
        return "fake"

    @asynccontextmanager
    async def connect(  # type: ignore[override]
        self,
        *,
        messages: Sequence[ModelMessage],
        model_settings: RealtimeModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> AsyncGenerator[RealtimeConnection]:
        yield _Connection()


async def test_realtime_sessions_are_refused_inside_a_workflow(engine: Engine) -> None:
    name = unique_name("realtime")
    durable_agent = DurableAgent(Agent(FunctionModel(call_runtime_tool), name=name))
    capability_agent = Agent(
        FunctionModel(call_runtime_tool), name=f"{name}-cap", capabilities=[Durability()]
    )

    @workflow(name=f"{name}.session")
    async def open_session(which: str) -> str:
        agent: Any = durable_agent if which == "durable" else capability_agent
        async with agent.realtime(_RealtimeModel()).session():
            return "opened"  # pragma: no cover

    @workflow(name=f"{name}.signaling")
    async def signaling() -> str:
        await durable_agent.realtime(_RealtimeModel()).create_client_secret()
        return "signaled"  # pragma: no cover

    for which in ("durable", "capability"):
        handle = await engine.start_workflow_async(open_session, which)
        with pytest.raises(
            UserError, match=r"realtime session .* cannot be used inside a durable-agents workflow"
        ):
            await handle.get_result_async(timeout_seconds=30)
    handle = await engine.start_workflow_async(signaling)
    with pytest.raises(UserError, match="cannot be used inside a durable-agents workflow"):
        await handle.get_result_async(timeout_seconds=30)

    # Outside a workflow the session is the wrapped agent's, unchanged.
    async with durable_agent.realtime(_RealtimeModel()).session() as session:
        assert isinstance(session, RealtimeSession)


async def test_toolsets_given_to_the_agent_stay_steps(engine: Engine) -> None:
    """The refusal is about toolsets that arrive per run: the agent's own run as steps."""
    log = CallLog()

    def tool() -> str:
        log("tool")
        return "ok"

    agent = Agent(
        FunctionModel(call_runtime_tool),
        name=unique_name("ctor"),
        toolsets=[FunctionToolset([Tool(tool, name="runtime_tool")], id="ctor_fn")],
    )
    durable_agent = DurableAgent(agent)
    assert (await durable_agent.run("go", run_id="ctor-run")).output == "done"
    assert [s.name.split(".", 1)[1] for s in engine.list_steps("ctor-run")] == [
        "model.request",
        "function.ctor_fn.tool.runtime_tool",
        "model.request",
    ]
    assert log.calls == ["tool"]
