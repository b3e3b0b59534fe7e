"""run_stream, iter, run_stream_events and event stream handlers of a DurableAgent."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable

import pytest
from durable_pydantic_ai import DurableAgent
from pai_support import CallLog, three_tool_agent, unique_name
from pydantic_ai import Agent, CallToolsNode, RunContext
from pydantic_ai.messages import AgentStreamEvent, FunctionToolCallEvent
from pydantic_ai.models.test import TestModel
from pydantic_ai.run import AgentRunResultEvent

from durable_core import Engine, step, workflow


async def test_run_stream_outside_a_workflow_streams_live_with_streamed_request_steps(engine: Engine) -> None:
    log = CallLog()
    name = unique_name("stream")
    durable_agent = DurableAgent(three_tool_agent(name, log))

    async with durable_agent.run_stream("go", run_id="streamed") as stream:
        # The block is the body of the run's workflow: it runs now, step by step, not after the fact.
        assert engine.retrieve_workflow("streamed").get_status().status == "PENDING"
        # Each streamed model request runs in its step: the six before the answer are recorded; the
        # answer being streamed here is the 7th, recorded when its stream ends (its text reaches this
        # block as it arrives: test_live_tokens.py); the run is not done yet.
        assert len(engine.list_steps("streamed")) in (6, 7)
        chunks = [chunk async for chunk in stream.stream_text(delta=True)]
        output = await stream.get_output()
        messages = stream.all_messages()

    assert "".join(chunks) == output and output.startswith("done")
    assert len(messages) == 8
    assert log.calls == ["model", "tool_a", "model", "tool_b", "model", "tool_c", "model"]
    assert engine.retrieve_workflow("streamed").get_status().status == "SUCCESS"
    assert [s.name.split(".", 1)[1] for s in engine.list_steps("streamed")] == [
        "model.request_stream",
        "tool.tool_a",
        "model.request_stream",
        "tool.tool_b",
        "model.request_stream",
        "tool.tool_c",
        "model.request_stream",
    ]
    log.calls.clear()
    async with durable_agent.run_stream("go", run_id="streamed") as stream:
        assert await stream.get_output() == output
    assert log.calls == []

    # A recovery replays the streamed requests as streamed requests (a fork from the last step).
    fork = await engine.fork_workflow_async("streamed", 7)
    assert (await fork.get_result_async(timeout_seconds=30))["output"] == output
    assert log.calls == ["model"]


async def test_run_stream_inside_a_workflow_streams_live_and_records_streamed_requests(
    engine: Engine,
) -> None:
    name = unique_name("live")
    agent = Agent(TestModel(call_tools=["echo"]), name=name)

    @agent.tool_plain
    def echo(text: str) -> str:
        return text

    durable_agent = DurableAgent(agent)

    @workflow(name=f"{name}.streaming")
    async def streaming() -> str:
        chunks: list[str] = []
        async with durable_agent.run_stream("hi") as stream:
            async for chunk in stream.stream_text(delta=True):
                chunks.append(chunk)
        return "".join(chunks)

    handle = await engine.start_workflow_async(streaming)
    text = await handle.get_result_async()

    assert "echo" in text
    names = [s.name.split(".", 1)[1] for s in engine.list_steps(handle.workflow_id)]
    assert names == ["model.request_stream", "tool.echo", "model.request_stream"]


async def test_iter_outside_a_workflow_yields_the_node_sequence_live(engine: Engine) -> None:
    log = CallLog()
    durable_agent = DurableAgent(three_tool_agent(unique_name("iter"), log))

    nodes: list[tuple[str, int]] = []
    async with durable_agent.iter("go", run_id="iterated") as run:
        async for node in run:
            nodes.append((type(node).__name__, len(engine.list_steps("iterated"))))

    assert run.result is not None and run.result.output.startswith("done")
    # The usual node sequence, each node's steps taken as it runs (steps recorded before each node).
    assert nodes == [
        ("UserPromptNode", 0),
        ("ModelRequestNode", 0),
        ("CallToolsNode", 1),
        ("ModelRequestNode", 2),
        ("CallToolsNode", 3),
        ("ModelRequestNode", 4),
        ("CallToolsNode", 5),
        ("ModelRequestNode", 6),
        ("CallToolsNode", 7),
        ("End", 7),
    ]
    assert engine.retrieve_workflow("iterated").get_status().status == "SUCCESS"
    log.calls.clear()
    async with durable_agent.iter("go", run_id="iterated") as again:  # a finished id: its record
        async for _ in again:
            pass
    assert again.result is not None and again.result.output == run.result.output
    assert log.calls == []


async def test_iter_inside_a_workflow_joins_it(engine: Engine) -> None:
    name = unique_name("iterwf")
    durable_agent = DurableAgent(three_tool_agent(name, CallLog()))

    @workflow(name=f"{name}.iterating")
    async def iterating() -> int:
        nodes = 0
        async with durable_agent.iter("go") as inner:
            async for _ in inner:
                nodes += 1
        return nodes

    handle = await engine.start_workflow_async(iterating)
    assert await handle.get_result_async() == 10  # user prompt, 4 model requests, 4 tool nodes, end
    assert len(engine.list_steps(handle.workflow_id)) == 7


async def test_leaving_iter_early_cancels_the_run_and_an_error_fails_it(engine: Engine) -> None:
    log = CallLog()
    durable_agent = DurableAgent(three_tool_agent(unique_name("leave"), log))

    async with durable_agent.iter("go", run_id="left") as run:
        async for node in run:
            if isinstance(node, CallToolsNode):
                break
    assert engine.retrieve_workflow("left").get_status().status == "CANCELLED"
    assert log.calls == ["model"]

    with pytest.raises(ValueError, match="the caller's own error"):
        async with durable_agent.iter("go", run_id="failed") as run:
            async for node in run:
                if isinstance(node, CallToolsNode):
                    raise ValueError("the caller's own error")
    status = engine.retrieve_workflow("failed").get_status()
    assert status.status == "ERROR" and isinstance(status.error, ValueError)


async def test_run_stream_events_yields_live_events_and_the_result(engine: Engine) -> None:
    durable_agent = DurableAgent(three_tool_agent(unique_name("events"), CallLog()))

    seen: list[object] = []
    async with durable_agent.run_stream_events("go", run_id="events") as events:
        async for event in events:
            seen.append(event)

    tool_calls = [e.part.tool_name for e in seen if isinstance(e, FunctionToolCallEvent)]
    assert tool_calls == ["tool_a", "tool_b", "tool_c"]
    assert isinstance(seen[-1], AgentRunResultEvent)
    assert len(engine.list_steps("events")) == 7


async def test_a_failing_event_stream_handler_never_fails_the_run(engine: Engine) -> None:
    durable_agent = DurableAgent(three_tool_agent(unique_name("handler"), CallLog()))
    received: list[AgentStreamEvent] = []

    async def handler(ctx: RunContext[None], events: AsyncIterable[AgentStreamEvent]) -> None:
        async for event in events:
            received.append(event)
            raise RuntimeError("the UI went away")

    result = await durable_agent.run("go", run_id="handled", event_stream_handler=handler)

    assert result.output.startswith("done")
    assert received  # the handler did run, live
    assert engine.retrieve_workflow("handled").get_status().status == "SUCCESS"


@step(name="record_events")
async def step_handler(ctx: RunContext[None], events: AsyncIterable[AgentStreamEvent]) -> None:
    """A per-run handler that is itself a step (to record what it saw, say)."""
    async for event in events:
        HANDLED.append(type(event).__name__)


HANDLED: list[str] = []


async def test_a_handler_that_is_a_step_never_takes_the_model_requests_place(engine: Engine) -> None:
    name = unique_name("stephandler")
    log = CallLog()
    durable_agent = DurableAgent(three_tool_agent(name, log))
    HANDLED.clear()

    result = await durable_agent.run("go", run_id="step-handled", event_stream_handler=step_handler)

    assert result.output.startswith("done")
    names = [s.name for s in engine.list_steps("step-handled")]
    # The run's steps are exactly its model requests and tool calls, in order: the handler is
    # live-only (a replay runs without it), so its own steps run inline, as inside a step.
    assert names == [
        f"{name}.model.request_stream",
        f"{name}.tool.tool_a",
        f"{name}.model.request_stream",
        f"{name}.tool.tool_b",
        f"{name}.model.request_stream",
        f"{name}.tool.tool_c",
        f"{name}.model.request_stream",
    ]
    assert HANDLED.count("FunctionToolCallEvent") == 3 and "PartStartEvent" in HANDLED
    # The record replays: a fork from the last step re-runs only the last model request.
    log.calls.clear()
    fork = await engine.fork_workflow_async("step-handled", len(names))
    assert (await fork.get_result_async(timeout_seconds=30))["output"] == result.output
    assert log.calls == ["model"]


def test_the_agent_level_handler_is_the_event_stream_handler() -> None:
    async def handler(ctx: RunContext[None], events: AsyncIterable[AgentStreamEvent]) -> None:
        async for _ in events:
            pass

    agent = three_tool_agent(unique_name("prop"), CallLog())
    assert DurableAgent(agent, event_stream_handler=handler).event_stream_handler is handler
    assert DurableAgent(agent).event_stream_handler is None


async def test_iter_and_run_stream_in_a_workflow_fire_the_agents_and_the_runs_handler(engine: Engine) -> None:
    name = unique_name("iterhandlers")
    seen: dict[str, list[str]] = {"agent": [], "run": []}

    def recording(key: str) -> Callable[[RunContext[None], AsyncIterable[AgentStreamEvent]], Awaitable[None]]:
        async def handler(ctx: RunContext[None], events: AsyncIterable[AgentStreamEvent]) -> None:
            async for event in events:
                seen[key].append(type(event).__name__)

        return handler

    durable_agent = DurableAgent(three_tool_agent(name, CallLog()), event_stream_handler=recording("agent"))

    @workflow(name=f"{name}.iterating")
    async def iterating() -> str:
        async with durable_agent.iter("go") as run:
            async for _ in run:
                pass
        assert run.result is not None
        return run.result.output

    handle = await engine.start_workflow_async(iterating)
    assert (await handle.get_result_async()).startswith("done")
    assert seen["agent"].count("FunctionToolCallEvent") == 3
    assert "PartStartEvent" in seen["agent"]

    seen["agent"].clear()

    @workflow(name=f"{name}.streaming")
    async def streaming() -> str:
        async with durable_agent.run_stream("go", event_stream_handler=recording("run")) as stream:
            return await stream.get_output()

    handle = await engine.start_workflow_async(streaming)
    assert (await handle.get_result_async()).startswith("done")
    assert seen["run"].count("FunctionToolCallEvent") == 3 and "PartStartEvent" in seen["run"]
    assert seen["agent"].count("FunctionToolCallEvent") == 3  # the agent's handler fired too, once each
