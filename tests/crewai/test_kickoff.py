"""A kickoff is one durable workflow: recorded steps, zero-call re-runs, ids, failing closed."""

from __future__ import annotations

from typing import Any

import pytest
from crewai_support import INPUTS, KICKOFF_STEPS, research_crew
from durable_crewai import KICKOFF_WORKFLOW, crew_workflow_id, durable_kickoff, instrument

from durable_core import Engine, EngineNotLaunched, NondeterminismError, workflow_options

ALL_CALLS = [
    "llm:Research:Researcher",
    "tool:search:AI agents",
    "llm:Research:Researcher",
    "llm:Write:Writer",
    "tool:fact_check:agents work",
    "llm:Write:Writer",
]


def _only_workflow(engine: Engine) -> str:
    workflows = engine.list_workflows()
    assert len(workflows) == 1, workflows
    assert workflows[0].name == KICKOFF_WORKFLOW
    return workflows[0].workflow_id


@pytest.mark.parametrize("native", [False, True], ids=["react", "native"])
def test_every_llm_and_tool_call_is_a_step_in_call_order(
    engine: Engine, call_log: list[str], native: bool
) -> None:
    crew = research_crew(native=native, callbacks=[durable_kickoff])

    output = crew.kickoff(inputs=INPUTS)

    assert output.raw == "Write done ['agents work' is correct]"
    assert call_log == ALL_CALLS
    workflow_id = _only_workflow(engine)
    assert workflow_id == crew_workflow_id(crew, INPUTS)
    steps = engine.list_steps(workflow_id)
    assert [s.name for s in steps] == KICKOFF_STEPS
    assert [s.step_id for s in steps] == list(range(1, len(KICKOFF_STEPS) + 1))
    assert steps[2].output["value"] == "results for AI agents"
    assert engine.get_workflow_status(workflow_id).status == "SUCCESS"


@pytest.mark.parametrize("native", [False, True], ids=["react", "native"])
def test_rerunning_a_finished_kickoff_makes_no_call(
    engine: Engine, call_log: list[str], native: bool
) -> None:
    first = research_crew(native=native, callbacks=[durable_kickoff]).kickoff(inputs=INPUTS)
    call_log.clear()
    callback_outputs: list[Any] = []

    again = research_crew(
        native=native, callbacks=[durable_kickoff], task_callback=callback_outputs.append
    ).kickoff(inputs=INPUTS)

    assert call_log == []
    assert callback_outputs == []  # completed tasks are not redone, their callbacks do not fire
    assert again.raw == first.raw
    assert [t.raw for t in again.tasks_output] == [t.raw for t in first.tasks_output]
    assert [t.agent for t in again.tasks_output] == ["Researcher", "Writer"]
    assert len(engine.list_workflows()) == 1


def test_other_inputs_are_another_workflow(engine: Engine, call_log: list[str]) -> None:
    crew = research_crew(callbacks=[durable_kickoff])
    crew.kickoff(inputs=INPUTS)
    crew.kickoff(inputs={"topic": "databases"})

    ids = {w.workflow_id for w in engine.list_workflows()}
    assert ids == {crew_workflow_id(crew, INPUTS), crew_workflow_id(crew, {"topic": "databases"})}
    assert len(call_log) == 2 * len(ALL_CALLS)


def test_workflow_options_names_the_kickoff(engine: Engine, call_log: list[str]) -> None:
    crew = research_crew(callbacks=[durable_kickoff])
    with workflow_options(workflow_id="report-42"):
        crew.kickoff(inputs=INPUTS)
    call_log.clear()
    with workflow_options(workflow_id="report-42"):
        again = research_crew(callbacks=[durable_kickoff]).kickoff(inputs=INPUTS)

    assert [w.workflow_id for w in engine.list_workflows()] == ["report-42"]
    assert call_log == []
    assert again.raw.startswith("Write done")


def test_instrument_is_the_explicit_form(engine: Engine, call_log: list[str]) -> None:
    crew = instrument(research_crew(), workflow_id="explicit-1")
    assert instrument(crew) is crew  # idempotent

    crew.kickoff(inputs=INPUTS)

    assert [w.workflow_id for w in engine.list_workflows()] == ["explicit-1"]
    assert [s.name for s in engine.list_steps("explicit-1")] == KICKOFF_STEPS


def test_no_engine_fails_closed_before_any_call(call_log: list[str]) -> None:
    crew = research_crew(callbacks=[durable_kickoff])

    with pytest.raises(EngineNotLaunched, match=r"engine\.launch\(\)"):
        crew.kickoff(inputs=INPUTS)

    assert call_log == []


def test_a_tool_error_is_recorded_and_replayed(engine: Engine, call_log: list[str]) -> None:
    plans = {"Research": [("search", {"query": "AI agents"}), ("missing_tool", {"x": 1})], "Write": []}
    first = research_crew(plans=plans, callbacks=[durable_kickoff]).kickoff(inputs=INPUTS)
    call_log.clear()

    again = research_crew(plans=plans, callbacks=[durable_kickoff]).kickoff(inputs=INPUTS)

    assert call_log == []
    assert again.tasks_output[0].raw == first.tasks_output[0].raw


def test_a_finished_id_is_not_handed_to_another_crew(engine: Engine, call_log: list[str]) -> None:
    with workflow_options(workflow_id="shared-id"):
        research_crew(callbacks=[durable_kickoff]).kickoff(inputs=INPUTS)
    call_log.clear()
    other = research_crew(callbacks=[durable_kickoff], write_description="Write a poem on {topic}")

    with pytest.raises(NondeterminismError, match="shared-id"), workflow_options(workflow_id="shared-id"):
        other.kickoff(inputs=INPUTS)

    assert call_log == []
