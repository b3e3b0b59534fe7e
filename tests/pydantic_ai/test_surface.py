"""The public surface: Agent-compatible signatures, `__all__`, and clear errors for bad input."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import durable_pydantic_ai
import pytest
from durable_pydantic_ai import Durability, DurableAgent
from pai_support import CallLog, three_tool_agent, unique_name
from pydantic_ai import Agent, FunctionToolset
from pydantic_ai.exceptions import UserError
from pydantic_ai.models.test import TestModel
from pydantic_ai.toolsets import DynamicToolset

from durable_core import Engine


def _parameters(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    signature = inspect.signature(fn)
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize("method", ["run", "run_sync", "run_stream", "run_stream_events", "iter", "override"])
def test_durable_agent_methods_take_the_same_arguments_as_agent(method: str) -> None:
    assert _parameters(getattr(DurableAgent, method)) == _parameters(getattr(Agent, method))


def test_public_names() -> None:
    assert {"DurableAgent", "Durability"} <= set(durable_pydantic_ai.__all__)
    for name in durable_pydantic_ai.__all__:
        assert getattr(durable_pydantic_ai, name) is not None


def test_duplicate_names_are_refused() -> None:
    name = unique_name("dup")
    first = three_tool_agent(name, CallLog())
    DurableAgent(first)
    DurableAgent(first)  # the same agent again is fine: same workflow, same steps
    with pytest.raises(UserError, match="already named"):
        DurableAgent(three_tool_agent(name, CallLog()))


def test_an_agent_without_a_model_is_refused() -> None:
    with pytest.raises(UserError, match="model"):
        DurableAgent(Agent(name=unique_name()))


async def test_an_unregistered_model_instance_is_refused_at_run_start(engine: Engine) -> None:
    durable_agent = DurableAgent(Agent(TestModel(), name=unique_name()))
    with pytest.raises(UserError, match="not registered"):
        await durable_agent.run("x", model=TestModel())


async def test_a_registered_model_instance_can_be_selected(engine: Engine) -> None:
    alternative = TestModel(custom_output_text="from the alternative")
    durable_agent = DurableAgent(Agent(TestModel(), name=unique_name()), models={"alt": alternative})
    result = await durable_agent.run("x", model=alternative, run_id="alt-model")
    assert result.output == "from the alternative"
    assert "alt" in repr(engine.retrieve_workflow("alt-model").get_status().inputs)

    # Recovery rebuilds the model from its recorded key: a fork re-runs the model request live.
    fork = await engine.fork_workflow_async("alt-model", 1)
    assert (await fork.get_result_async(timeout_seconds=30))["output"] == "from the alternative"


def test_toolsets_without_an_id_are_refused_with_the_fix() -> None:
    toolset = FunctionToolset[Any]()
    with pytest.raises(UserError, match="FunctionToolset\\(id="):
        DurableAgent(Agent(TestModel(), name=unique_name(), toolsets=[toolset]))
    with pytest.raises(UserError, match="FunctionToolset\\(id="):
        Agent(TestModel(), name=unique_name(), toolsets=[toolset], capabilities=[Durability()])


def test_dynamic_toolsets_need_an_id() -> None:
    def build(ctx: Any) -> FunctionToolset[Any]:
        return FunctionToolset[Any]()

    with pytest.raises(UserError, match="id"):
        Agent(TestModel(), name=unique_name(), toolsets=[DynamicToolset(build)], capabilities=[Durability()])


async def test_override_with_a_registered_model(engine: Engine) -> None:
    replacement = TestModel(custom_output_text="overridden")
    durable_agent = DurableAgent(Agent(TestModel(), name=unique_name()), models={"alt": replacement})

    with durable_agent.override(model=replacement):
        result = await durable_agent.run("x", run_id="overridden")

    assert result.output == "overridden"
    assert [s.name.split(".", 1)[1] for s in engine.list_steps("overridden")] == ["model.request"]


def test_a_failed_construction_leaves_the_name_free() -> None:
    name = unique_name("failed")
    with pytest.raises(UserError, match="FunctionToolset\\(id=") as failure:
        DurableAgent(Agent(TestModel(), name=name, toolsets=[FunctionToolset[Any]()]))
    # `failure` keeps the half-built DurableAgent alive (its traceback), as a logged error would.
    durable_agent = DurableAgent(Agent(TestModel(), name=name))  # the name was never taken
    assert durable_agent.name == name
    assert failure.value is not None


def test_two_agents_with_one_name_are_refused_whatever_the_engine_state(database_url: str) -> None:
    # One agent built at import time (no engine yet), the other after `launch()`: both would record
    # their runs as one workflow, and a replay of one's run would execute the other.
    name = unique_name("import-time")
    first = DurableAgent(three_tool_agent(name, CallLog()))
    with Engine(database_url) as engine:
        with pytest.raises(UserError, match="already named"):
            DurableAgent(three_tool_agent(name, CallLog()))
        again = DurableAgent(first.wrapped)  # re-wrapping the same agent stays allowed
        assert again.run_sync("go", run_id="same-agent").output.startswith("done")
        assert len(engine.list_steps("same-agent")) == 7
        later = unique_name("after-launch")
        DurableAgent(three_tool_agent(later, CallLog()))
    with pytest.raises(UserError, match="already named"):  # and after the engine is gone
        DurableAgent(three_tool_agent(later, CallLog()))
