"""Usage from pydantic-ai's own response objects, recorded with each model-request step, and
budgets on DurableAgent runs (both databases)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from durable_pydantic_ai import DurableAgent
from durable_pydantic_ai._usage import usage_of
from pai_support import unique_name
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from durable_core import Budget, BudgetExceeded, workflow_options
from durable_core.testing import wait_until_waiting

calls: list[int] = []


def usage_agent(requests: int = 3) -> Agent[None, str]:
    """`requests` model requests (a tool call each, then an answer), each reporting its usage."""

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        n = sum(1 for m in messages if m.kind == "response")
        calls.append(n)
        usage = RequestUsage(input_tokens=100 + n, output_tokens=20, cache_read_tokens=5)
        if n < requests - 1:
            return ModelResponse(parts=[ToolCallPart("lookup", {"x": n}, tool_call_id=f"c{n}")], usage=usage)
        return ModelResponse(parts=[TextPart("done")], usage=usage)

    agent = Agent(FunctionModel(model), name=unique_name("usage"))

    @agent.tool_plain
    def lookup(x: int) -> str:
        return f"found {x}"

    return agent


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


def test_each_model_request_records_the_usage_pydantic_ai_reported(engine: Any) -> None:
    durable = DurableAgent(usage_agent(3))
    result = durable.run_sync("go", run_id="usage-run")
    usage = engine.get_workflow_status("usage-run").usage
    assert usage is not None
    assert usage.model_calls == 3 and usage.requests == 3
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (303, 60, 15)
    # pydantic-ai's own run usage agrees with what was recorded
    assert result.usage.input_tokens == usage.input_tokens
    assert result.usage.output_tokens == usage.output_tokens
    # a function model has no price: unknown, never guessed as zero
    assert usage.unpriced == 3 and usage.cost_usd == 0
    assert list(usage.by_model) == ["function:model:"]
    # re-running the finished id makes no model request and counts nothing more
    durable.run_sync("go", run_id="usage-run")
    assert engine.get_workflow_status("usage-run").usage == usage and calls == [0, 1, 2]


def test_cost_comes_from_genai_prices_when_the_model_is_priced() -> None:
    priced = ModelResponse(
        parts=[TextPart("x")],
        usage=RequestUsage(input_tokens=1000, output_tokens=200),
        model_name="gpt-4o",
        provider_name="openai",
    )
    usage = usage_of(priced)
    assert usage.model == "gpt-4o" and usage.provider == "openai"
    assert usage.cost_usd == pytest.approx(float(priced.cost().total_price)) and usage.cost_usd > 0
    unmeasured = ModelResponse(
        parts=[TextPart("x")], usage=RequestUsage(unmeasured_requests=1), model_name="gpt-4o"
    )
    assert usage_of(unmeasured).input_tokens is None and usage_of(unmeasured).cost_usd is None


def test_a_durable_agent_budget_fails_before_the_request_that_would_exceed_it(engine: Any) -> None:
    durable = DurableAgent(usage_agent(4), budget=Budget(max_model_calls=2, on_exceeded="fail"))
    with pytest.raises(BudgetExceeded):
        durable.run_sync("go", run_id="capped")
    assert calls == [0, 1]
    status = engine.get_workflow_status("capped")
    assert status.status == "ERROR" and status.usage is not None and status.usage.model_calls == 2


def test_a_budget_set_around_the_run_takes_precedence_over_the_agents(engine: Any) -> None:
    durable = DurableAgent(usage_agent(4), budget=Budget(max_model_calls=10, on_exceeded="fail"))
    with (
        workflow_options(budget=Budget(max_model_calls=1, on_exceeded="fail")),
        pytest.raises(BudgetExceeded),
    ):
        durable.run_sync("go", run_id="caller-capped")
    assert calls == [0]
    # the agent's own budget governs the next run, which the caller does not cap
    assert durable.run_sync("go", run_id="agent-capped").output == "done"
    assert calls == [0, 0, 1, 2, 3]


def test_a_durable_agent_budget_pauses_until_raised(engine: Any) -> None:
    durable = DurableAgent(usage_agent(3), budget=Budget(max_tokens=200))
    handle_holder: dict[str, Any] = {}

    async def run() -> str:
        return (await durable.run("go", run_id="paused-agent")).output

    import anyio

    runner = threading.Thread(target=lambda: handle_holder.update(out=anyio.run(run)))
    runner.start()
    status = wait_until_waiting(engine, "paused-agent")
    assert status.waiting is not None and status.waiting.kind == "budget"
    assert calls == [0, 1]  # 120 + 121 tokens reached max_tokens=200: no third request
    engine.raise_budget("paused-agent", max_tokens=10_000)
    runner.join(timeout=30)
    assert handle_holder.get("out") == "done"
    assert calls == [0, 1, 2]
