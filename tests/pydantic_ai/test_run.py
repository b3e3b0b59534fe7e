"""DurableAgent.run: steps in call order, readable names, ids, and idempotent re-runs."""

from __future__ import annotations

from typing import Any

import pytest
from durable_pydantic_ai import DurableAgent
from pai_support import CallLog, three_tool_agent, unique_name
from pydantic_ai.run import AgentRunResult

from durable_core import Engine, workflow_options


async def test_three_tool_run_records_model_and_tool_steps_in_call_order(engine: Engine) -> None:
    name = unique_name("three")
    log = CallLog()
    durable_agent = DurableAgent(three_tool_agent(name, log))

    result = await durable_agent.run("go", run_id="run-1")

    assert result.output.startswith("done")
    assert log.calls == ["model", "tool_a", "model", "tool_b", "model", "tool_c", "model"]
    steps = engine.list_steps("run-1")
    assert [s.step_id for s in steps] == list(range(1, 8))
    names = [s.name for s in steps]
    assert names == [
        f"{name}.model.request",
        f"{name}.tool.tool_a",
        f"{name}.model.request",
        f"{name}.tool.tool_b",
        f"{name}.model.request",
        f"{name}.tool.tool_c",
        f"{name}.model.request",
    ]
    assert all(s.error is None for s in steps)
    status = engine.retrieve_workflow("run-1").get_status()
    assert status.status == "SUCCESS"
    assert status.name == durable_agent.workflow_name == f"{name}.run"


async def test_rerun_of_a_finished_id_returns_the_typed_result_without_calls(engine: Engine) -> None:
    log = CallLog()
    durable_agent = DurableAgent(three_tool_agent(unique_name(), log))
    first = await durable_agent.run("go", run_id="same")
    log.calls.clear()

    again = await durable_agent.run("go", run_id="same")

    assert log.calls == []
    assert isinstance(again, AgentRunResult)
    assert again.output == first.output
    assert again.all_messages() == first.all_messages()
    assert again.new_messages() == first.new_messages()
    assert again.run_id == first.run_id
    assert len(engine.list_steps("same")) == 7


async def test_workflow_options_id_wins_over_run_id(engine: Engine) -> None:
    durable_agent = DurableAgent(three_tool_agent(unique_name(), CallLog()))

    with workflow_options(workflow_id="from-options"):
        await durable_agent.run("go", run_id="from-run-id")

    assert len(engine.list_steps("from-options")) == 7
    assert [w.workflow_id for w in engine.list_workflows(workflow_ids=["from-run-id"])] == []


async def test_without_ids_each_run_is_a_new_workflow(engine: Engine) -> None:
    durable_agent = DurableAgent(three_tool_agent(unique_name(), CallLog()))

    first = await durable_agent.run("go")
    second = await durable_agent.run("go")

    runs = engine.list_workflows(name=durable_agent.workflow_name)
    assert len(runs) == 2
    assert {w.workflow_id for w in runs} == {first.run_id, second.run_id}
    assert all(w.status == "SUCCESS" for w in runs)


def test_run_sync_is_durable(engine: Engine) -> None:
    log = CallLog()
    durable_agent = DurableAgent(three_tool_agent(unique_name(), log))

    result = durable_agent.run_sync("go", run_id="sync-run")
    log.calls.clear()
    again = durable_agent.run_sync("go", run_id="sync-run")

    assert again.output == result.output
    assert log.calls == []
    assert len(engine.list_steps("sync-run")) == 7


async def test_recorded_inputs_and_output_are_readable_json(engine: Engine) -> None:
    durable_agent = DurableAgent(three_tool_agent(unique_name(), CallLog()))
    await durable_agent.run("go", run_id="json-run")

    status = engine.retrieve_workflow("json-run").get_status()
    inputs: Any = status.inputs
    assert "go" in repr(inputs)
    output: Any = status.output
    assert isinstance(output, dict)
    assert output["output"].startswith("done")
    assert output["messages"][0]["kind"] == "request"


@pytest.mark.parametrize("bad_name", [None, ""])
def test_agent_needs_a_name(bad_name: str | None) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.exceptions import UserError
    from pydantic_ai.models.test import TestModel

    with pytest.raises(UserError, match="unique name"):
        DurableAgent(Agent(TestModel(), name=bad_name))
