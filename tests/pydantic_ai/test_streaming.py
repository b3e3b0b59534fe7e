"""run_stream, iter, run_stream_events and event stream handlers of a DurableAgent."""

from __future__ import annotations

from collections.abc import AsyncIterable

from durable_pydantic_ai import DurableAgent
from pai_support import CallLog, three_tool_agent, unique_name
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import AgentStreamEvent, FunctionToolCallEvent
from pydantic_ai.models.test import TestModel
from pydantic_ai.run import AgentRunResultEvent

from durable_core import Engine, workflow


async def test_run_stream_outside_a_workflow_runs_durably_then_streams_the_result(engine: Engine) -> None:
    log = CallLog()
    durable_agent = DurableAgent(three_tool_agent(unique_name("stream"), log))

    async with durable_agent.run_stream("go", run_id="streamed") as stream:
        output = await stream.get_output()
        messages = stream.all_messages()

    assert output.startswith("done")
    assert len(messages) == 8
    assert len(engine.list_steps("streamed")) == 7
    log.calls.clear()
    async with durable_agent.run_stream("go", run_id="streamed") as stream:
        assert await stream.get_output() == output
    assert log.calls == []


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


async def test_iter_outside_and_inside_a_workflow(engine: Engine) -> None:
    name = unique_name("iter")
    durable_agent = DurableAgent(three_tool_agent(name, CallLog()))

    async with durable_agent.iter("go", run_id="iterated") as run:
        async for _ in run:
            pass
    assert run.result is not None and run.result.output.startswith("done")
    assert len(engine.list_steps("iterated")) == 7

    @workflow(name=f"{name}.iterating")
    async def iterating() -> int:
        nodes = 0
        async with durable_agent.iter("go") as inner:
            async for _ in inner:
                nodes += 1
        return nodes

    handle = await engine.start_workflow_async(iterating)
    assert await handle.get_result_async() >= 8  # user prompt, 4 model requests, 3 tool nodes, end
    assert len(engine.list_steps(handle.workflow_id)) == 7


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
