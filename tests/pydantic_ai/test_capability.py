"""The `Durability()` capability inside a user's own `@workflow`, and DurableAgent runs joining one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from durable_pydantic_ai import Durability, DurableAgent
from pai_support import CallLog, three_tool_agent, unique_name
from pydantic_ai import Agent, RunContext
from pydantic_ai.models.test import TestModel

from durable_core import Engine, workflow


def _with_durability(agent: Agent[None, str]) -> Agent[None, str]:
    # Same agent, built with the capability attached at construction.
    return Agent(
        agent.model,
        name=agent.name,
        tools=list(agent._function_toolset.tools.values()),
        capabilities=[Durability()],
    )  # pyright: ignore[reportPrivateUsage]


async def test_capability_makes_model_and_tool_calls_steps_of_the_users_workflow(engine: Engine) -> None:
    name = unique_name("cap")
    log = CallLog()
    agent = _with_durability(three_tool_agent(name, log))
    prepared: list[str] = []

    @workflow(name=f"{name}.ticket")
    async def handle_ticket(text: str) -> str:
        prepared.append(text)
        result = await agent.run(text)
        return result.output

    output = await engine.start_workflow_async(handle_ticket, "go")
    assert (await output.get_result_async()).startswith("done")

    steps = engine.list_steps(output.workflow_id)
    assert [s.name for s in steps] == [
        f"{name}.model.request",
        f"{name}.tool.tool_a",
        f"{name}.model.request",
        f"{name}.tool.tool_b",
        f"{name}.model.request",
        f"{name}.tool.tool_c",
        f"{name}.model.request",
    ]
    assert log.calls == ["model", "tool_a", "model", "tool_b", "model", "tool_c", "model"]


async def test_capability_is_transparent_outside_a_workflow(engine: Engine) -> None:
    log = CallLog()
    agent = _with_durability(three_tool_agent(unique_name("plain"), log))

    result = await agent.run("go")

    assert result.output.startswith("done")
    assert len(log.calls) == 7
    assert engine.list_workflows() == []


async def test_durable_agent_run_inside_a_workflow_joins_it(engine: Engine) -> None:
    name = unique_name("joined")
    durable_agent = DurableAgent(three_tool_agent(name, CallLog()))

    @workflow(name=f"{name}.outer")
    async def outer() -> str:
        first = await durable_agent.run("one")
        second = await durable_agent.run("two")
        return f"{first.output}|{second.output}"

    handle = await engine.start_workflow_async(outer)
    await handle.get_result_async()

    steps = engine.list_steps(handle.workflow_id)
    assert len(steps) == 14  # both runs' 7 steps, in the outer workflow
    assert engine.list_workflows(name=durable_agent.workflow_name) == []
    # Each agent run inside the workflow gets a replay-stable run id derived from the workflow id.
    assert steps[0].name == f"{name}.model.request"


def test_run_sync_inside_a_sync_workflow_joins_it(engine: Engine) -> None:
    name = unique_name("syncwf")
    log = CallLog()
    durable_agent = DurableAgent(three_tool_agent(name, log))

    @workflow(name=f"{name}.sync")
    def answer() -> str:
        return durable_agent.run_sync("go").output

    handle = engine.start_workflow(answer)
    assert handle.get_result(timeout_seconds=30).startswith("done")
    assert [s.name for s in engine.list_steps(handle.workflow_id)][:2] == [
        f"{name}.model.request",
        f"{name}.tool.tool_a",
    ]
    assert len(log.calls) == 7


async def test_agent_level_event_stream_handler_runs_inside_steps(engine: Engine) -> None:
    name = unique_name("handled")
    kinds: list[str] = []

    async def handler(ctx: object, events: Any) -> None:
        async for event in events:
            kinds.append(type(event).__name__)

    durable_agent = DurableAgent(three_tool_agent(name, CallLog()), event_stream_handler=handler)
    await durable_agent.run("go", run_id="agent-handler")

    assert kinds.count("FunctionToolCallEvent") == 3
    names = [s.name.split(".", 1)[1] for s in engine.list_steps("agent-handler")]
    # Model events are handled inside the (streamed) model-request steps, each tool event in its own step.
    assert names.count("model.request_stream") == 4
    assert names.count("event_stream_handler") == 6
    kinds.clear()
    await durable_agent.run("go", run_id="agent-handler")
    assert kinds == []  # a re-run replays nothing into the handler


@dataclass
class Live:
    lock: asyncio.Lock  # not serializable: fine, deps are not workflow inputs in the capability form


async def test_capability_form_takes_deps_the_workflow_builds(engine: Engine) -> None:
    name = unique_name("livedeps")
    agent = Agent(TestModel(call_tools=["guarded"]), name=name, deps_type=Live, capabilities=[Durability()])

    @agent.tool
    async def guarded(ctx: RunContext[Live]) -> str:
        async with ctx.deps.lock:
            return "locked and done"

    @workflow(name=f"{name}.wf")
    async def with_live_deps() -> str:
        result = await agent.run("go", deps=Live(asyncio.Lock()))
        return result.output

    handle = await engine.start_workflow_async(with_live_deps)
    assert "locked and done" in await handle.get_result_async()
    assert [s.name.split(".", 1)[1] for s in engine.list_steps(handle.workflow_id)] == [
        "model.request",
        "tool.guarded",
        "model.request",
    ]
