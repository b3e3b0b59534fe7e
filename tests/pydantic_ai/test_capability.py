"""The `Durability()` capability inside a user's own `@workflow`, and DurableAgent runs joining one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any

from durable_pydantic_ai import Durability, DurableAgent
from pai_support import CallLog, operation_steps, three_tool_agent, unique_name
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import AgentStreamEvent
from pydantic_ai.models.test import TestModel

from durable_core import Engine, step, workflow


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


@step(name="cap.record_events")
async def record_events(ctx: RunContext[None], events: AsyncIterable[AgentStreamEvent]) -> list[str]:
    """A per-run handler that is itself a step: it records what it saw."""
    return [type(event).__name__ async for event in events]


async def test_a_per_run_handler_that_is_a_step_never_takes_a_model_request_or_tool_calls_place(
    engine: Engine,
) -> None:
    name = unique_name("capstep")
    log = CallLog()
    agent = _with_durability(three_tool_agent(name, log))

    @workflow(name=f"{name}.handled")
    async def handled(text: str) -> str:
        return (await agent.run(text, event_stream_handler=record_events)).output

    handle = await engine.start_workflow_async(handled, "go")
    output = await handle.get_result_async()
    assert output.startswith("done")
    assert log.calls == ["model", "tool_a", "model", "tool_b", "model", "tool_c", "model"]

    # The handler runs in workflow code (pydantic-ai: a per-run handler runs workflow-side), so as a
    # step it is recorded; the model requests and tool calls it pulls through its stream are still
    # steps of the workflow, each after the handler step whose stream asked for it.
    steps = engine.list_steps(handle.workflow_id)
    operations = [s.name.removeprefix(f"{name}.") for s in steps if s.name != "cap.record_events"]
    assert operations == operation_steps(streamed=True)
    handler_steps = [s for s in steps if s.name == "cap.record_events"]
    assert len(handler_steps) == 8  # one per node streamed: 4 model requests, 4 tool-call nodes
    assert "PartStartEvent" in handler_steps[0].output and "FunctionToolCallEvent" in handler_steps[1].output

    # The record replays: a fork from the last model request runs only that request again.
    log.calls.clear()
    last_request = max(s.step_id for s in steps if s.name.endswith("model.request_stream"))
    fork = await engine.fork_workflow_async(handle.workflow_id, last_request)
    assert await fork.get_result_async(timeout_seconds=30) == output
    assert log.calls == ["model"]
    # A fork from the first tool call's step: the first model request replays, the rest runs again,
    # each tool once.
    log.calls.clear()
    first_tool = next(s.step_id for s in steps if s.name.endswith("tool.tool_a"))
    fork = await engine.fork_workflow_async(handle.workflow_id, first_tool)
    assert await fork.get_result_async(timeout_seconds=30) == output
    assert log.calls == ["tool_a", "model", "tool_b", "model", "tool_c", "model"]


async def test_a_run_inside_a_users_step_is_plain_even_inside_a_durable_runs_handler(engine: Engine) -> None:
    name = unique_name("nested")
    outer_log, inner_log = CallLog(), CallLog()
    outer = _with_durability(three_tool_agent(f"{name}-outer", outer_log))
    inner = _with_durability(three_tool_agent(f"{name}-inner", inner_log))

    @step(name=f"{name}.summarize")
    async def summarize(ctx: RunContext[None], events: AsyncIterable[AgentStreamEvent]) -> str:
        seen = [type(event).__name__ async for event in events]
        # An agent run begun inside a step's body: that step records its outcome, not its steps.
        return (await inner.run(f"saw {len(seen)} events")).output

    @workflow(name=f"{name}.wf")
    async def wf() -> str:
        return (await outer.run("go", event_stream_handler=summarize)).output

    handle = await engine.start_workflow_async(wf)
    assert (await handle.get_result_async()).startswith("done")
    names = [s.name for s in engine.list_steps(handle.workflow_id)]
    assert not any(n.startswith(f"{name}-inner.") for n in names)  # the inner runs made no steps
    assert sum(n.startswith(f"{name}-outer.") for n in names) == 7
    assert names.count(f"{name}.summarize") == 8
    assert inner_log.calls.count("tool_a") == 8  # one inner run per handler step, each plain
