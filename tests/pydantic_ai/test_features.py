"""Structured output, deps, ModelRetry, parallel tools and usage limits under DurableAgent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from durable_pydantic_ai import DurableAgent
from pai_support import CallLog, responses_so_far, three_tool_agent, unique_name
from pydantic import BaseModel
from pydantic_ai import Agent, ModelRetry, RunContext
from pydantic_ai.exceptions import UsageLimitExceeded, UserError
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import UsageLimits

from durable_core import Engine


class Invoice(BaseModel):
    customer: str
    total: float


async def test_structured_output_is_typed_on_first_run_and_on_rerun(engine: Engine) -> None:
    agent = Agent(
        TestModel(custom_output_args={"customer": "ada", "total": 12.5}),
        name=unique_name(),
        output_type=Invoice,
    )
    durable_agent = DurableAgent(agent)

    first = await durable_agent.run("bill ada", run_id="invoice")
    again = await durable_agent.run("bill ada", run_id="invoice")

    assert first.output == Invoice(customer="ada", total=12.5)
    assert isinstance(again.output, Invoice)
    assert again.output == first.output


@dataclass
class Deps:
    user: str
    discount: int


async def test_deps_are_recorded_and_rebuilt_as_deps_type(engine: Engine) -> None:
    seen: list[object] = []
    agent = Agent(TestModel(call_tools=["whoami"]), name=unique_name("deps"), deps_type=Deps)

    @agent.tool
    def whoami(ctx: RunContext[Deps]) -> str:
        seen.append(ctx.deps)
        return f"{ctx.deps.user}:{ctx.deps.discount}"

    durable_agent = DurableAgent(agent)
    await durable_agent.run("who?", deps=Deps("ada", 10), run_id="with-deps")
    status = engine.retrieve_workflow("with-deps").get_status()
    assert "'user': 'ada'" in repr(status.inputs) or '"user": "ada"' in repr(status.inputs)

    # A fork replays step 1 (the model request) and re-runs the tool from the recorded inputs,
    # exactly what recovery in a fresh process does: deps come back as `Deps`, not a dict.
    fork = await engine.fork_workflow_async("with-deps", 2)
    await fork.get_result_async(timeout_seconds=30)
    assert len(seen) == 2
    assert seen[-1] == Deps("ada", 10)
    assert isinstance(seen[-1], Deps)


async def test_unserializable_deps_fail_at_run_start_with_the_options(engine: Engine) -> None:
    @dataclass
    class Connection:
        lock: asyncio.Lock

    agent = Agent(TestModel(), name=unique_name(), deps_type=Connection)
    durable_agent = DurableAgent(agent)

    with pytest.raises(UserError, match="Durability") as raised:
        await durable_agent.run("x", deps=Connection(asyncio.Lock()))
    assert "deps_type" in str(raised.value)
    assert engine.list_workflows(name=durable_agent.workflow_name) == []


async def test_deps_without_deps_type_are_refused(engine: Engine) -> None:
    durable_agent = DurableAgent(Agent(TestModel(), name=unique_name()))
    with pytest.raises(UserError, match="deps_type"):
        await durable_agent.run("x", deps=Deps("ada", 1))
    # JSON-native deps need no declared type: they come back as they went in.
    result = await durable_agent.run("x", deps={"a": [1, 2]}, run_id="json-deps")
    assert result.output
    assert "[1, 2]" in repr(engine.retrieve_workflow("json-deps").get_status().inputs)


async def test_model_retry_crosses_the_step_as_a_value(engine: Engine) -> None:
    attempts: list[int] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if responses_so_far(messages) < 2:
            return ModelResponse(parts=[ToolCallPart("flaky", {"n": len(attempts)})])
        return ModelResponse(parts=[TextPart("ok")])

    agent = Agent(FunctionModel(model), name=unique_name("retry"))

    @agent.tool_plain
    def flaky(n: int) -> str:
        attempts.append(n)
        if len(attempts) == 1:
            raise ModelRetry("try again")
        return "fine"

    durable_agent = DurableAgent(agent)
    result = await durable_agent.run("go", run_id="retry-run")

    assert result.output == "ok"
    steps = engine.list_steps("retry-run")
    assert [s.name.split(".", 1)[1] for s in steps] == [
        "model.request",
        "tool.flaky",
        "model.request",
        "tool.flaky",
        "model.request",
    ]
    assert all(s.error is None for s in steps)  # ModelRetry is recorded as the step's value
    assert "try again" in repr(steps[1].output)
    attempts.clear()
    await durable_agent.run("go", run_id="retry-run")
    assert attempts == []


async def test_parallel_tool_calls_run_concurrently_and_number_in_call_order(engine: Engine) -> None:
    events: list[str] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if responses_so_far(messages) == 0:
            return ModelResponse(
                parts=[ToolCallPart("slow", {}, tool_call_id="1"), ToolCallPart("fast", {}, tool_call_id="2")]
            )
        return ModelResponse(parts=[TextPart("both done")])

    agent = Agent(FunctionModel(model), name=unique_name("par"))

    @agent.tool_plain
    async def slow() -> str:
        events.append("slow:start")
        await asyncio.sleep(0.2)
        events.append("slow:end")
        return "slow"

    @agent.tool_plain
    async def fast() -> str:
        events.append("fast:start")
        events.append("fast:end")
        return "fast"

    durable_agent = DurableAgent(agent)
    await durable_agent.run("go", run_id="parallel")

    assert events.index("fast:end") < events.index("slow:end")  # concurrent, not sequential
    names = [s.name.split(".", 1)[1] for s in engine.list_steps("parallel")]
    assert names == ["model.request", "tool.slow", "tool.fast", "model.request"]

    # Replaying the record (a fork from the last step) numbers the calls the same way.
    events.clear()
    fork = await engine.fork_workflow_async("parallel", 4)
    assert (await fork.get_result_async(timeout_seconds=30))["output"] == "both done"
    assert events == []


async def test_usage_limits_are_respected_and_recorded(engine: Engine) -> None:
    log = CallLog()
    durable_agent = DurableAgent(three_tool_agent(unique_name("limited"), log))

    with pytest.raises(UsageLimitExceeded):
        await durable_agent.run("go", run_id="limited", usage_limits=UsageLimits(request_limit=2))

    assert log.calls == ["model", "tool_a", "model", "tool_b"]
    status = engine.retrieve_workflow("limited").get_status()
    assert status.status == "ERROR"
    assert "request_limit" in repr(status.inputs)
    log.calls.clear()
    with pytest.raises(UsageLimitExceeded):
        await durable_agent.run("go", run_id="limited", usage_limits=UsageLimits(request_limit=2))
    assert log.calls == []


async def test_dynamic_toolset_discovery_and_calls_are_steps(engine: Engine) -> None:
    from pydantic_ai import FunctionToolset
    from pydantic_ai.toolsets import DynamicToolset

    calls: list[str] = []

    def build(ctx: RunContext[None]) -> FunctionToolset[None]:
        toolset = FunctionToolset[None]()

        @toolset.tool_plain
        def lookup(key: str) -> str:
            calls.append(key)
            return key.upper()

        return toolset

    agent = Agent(
        TestModel(call_tools=["lookup"]),
        name=unique_name("dyn"),
        toolsets=[DynamicToolset(build, id="catalog")],
    )
    durable_agent = DurableAgent(agent)
    await durable_agent.run("find", run_id="dynamic")

    names = [s.name.split(".", 1)[1] for s in engine.list_steps("dynamic")]
    assert "dynamic.catalog.tool.lookup" in names
    assert names[0] == "dynamic.catalog.get_tools"
    assert names.count("model.request") == 2
    assert calls == ["a"]
    calls.clear()
    await durable_agent.run("find", run_id="dynamic")
    assert calls == []


async def test_timeout_counts_from_the_workflow_start(engine: Engine) -> None:
    durable_agent = DurableAgent(three_tool_agent(unique_name("timed"), CallLog()))
    result = await durable_agent.run("go", run_id="timed", timeout=60)
    assert result.output.startswith("done")
    assert len(engine.list_steps("timed")) == 7  # the start time comes from the record, not a step
