"""Every way to kick off a crew is durable: async, native async, for-each, hierarchical, async tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from crewai import Process
from crewai_support import INPUTS, KICKOFF_STEPS, RAISE_IN_TOOL, SimulatedCrash, research_crew
from durable_crewai import crew_workflow_id, durable_kickoff

from durable_core import Engine

FINAL = "Write done ['agents work' is correct]"


async def test_kickoff_async(engine: Engine, call_log: list[str]) -> None:
    output = await research_crew(callbacks=[durable_kickoff]).kickoff_async(inputs=INPUTS)
    assert output.raw == FINAL
    [status] = engine.list_workflows()
    assert [s.name for s in engine.list_steps(status.workflow_id)] == KICKOFF_STEPS
    call_log.clear()

    again = await research_crew(callbacks=[durable_kickoff]).kickoff_async(inputs=INPUTS)

    assert again.raw == FINAL
    assert call_log == []


@pytest.mark.parametrize("native", [False, True], ids=["react", "native"])
async def test_akickoff_native_async(engine: Engine, call_log: list[str], native: bool) -> None:
    output = await research_crew(native=native, callbacks=[durable_kickoff]).akickoff(inputs=INPUTS)
    assert output.raw == FINAL
    assert len(call_log) == 6
    [status] = engine.list_workflows()
    assert status.name == "durable_crewai.akickoff"
    assert [s.name for s in engine.list_steps(status.workflow_id)] == KICKOFF_STEPS
    call_log.clear()

    again = await research_crew(native=native, callbacks=[durable_kickoff]).akickoff(inputs=INPUTS)

    assert again.raw == FINAL
    assert call_log == []


def test_kickoff_for_each_is_one_workflow_per_input(engine: Engine, call_log: list[str]) -> None:
    crew = research_crew(callbacks=[durable_kickoff])
    inputs = [{"topic": "AI"}, {"topic": "databases"}]

    outputs = crew.kickoff_for_each(inputs=inputs)

    assert [o.raw for o in outputs] == [FINAL, FINAL]
    assert {w.workflow_id for w in engine.list_workflows()} == {crew_workflow_id(crew, i) for i in inputs}
    call_log.clear()
    assert [o.raw for o in research_crew(callbacks=[durable_kickoff]).kickoff_for_each(inputs=inputs)] == [
        FINAL,
        FINAL,
    ]
    assert call_log == []


async def test_akickoff_for_each(engine: Engine, call_log: list[str]) -> None:
    inputs = [{"topic": "AI"}, {"topic": "databases"}]
    outputs: Any = await research_crew(callbacks=[durable_kickoff]).akickoff_for_each(inputs=inputs)
    assert [o.raw for o in outputs] == [FINAL, FINAL]
    assert len(engine.list_workflows()) == 2
    call_log.clear()

    await research_crew(callbacks=[durable_kickoff]).akickoff_for_each(inputs=inputs)

    assert call_log == []


def _delegating_plans() -> dict[str, Any]:
    delegate = "Delegate work to coworker"
    return {
        "Crew Manager:Research": [
            (delegate, {"task": "Research AI", "context": "for a report", "coworker": "Researcher"})
        ],
        "Crew Manager:Write": [
            (delegate, {"task": "Write a report on AI", "context": "use the research", "coworker": "Writer"})
        ],
        "Researcher:Research": [("search", {"query": "AI agents"})],
        "Writer:Write": [("fact_check", {"claim": "agents work"})],
    }


def test_hierarchical_delegation_is_recorded_and_replayed(engine: Engine, call_log: list[str]) -> None:
    crew = research_crew(process=Process.hierarchical, plans=_delegating_plans(), callbacks=[durable_kickoff])

    output = crew.kickoff(inputs=INPUTS)

    assert output.raw.startswith("Write done")
    assert call_log[:4] == [
        "llm:Research:Crew Manager",
        "llm:Research:Researcher",
        "tool:search:AI agents",
        "llm:Research:Researcher",
    ]
    [status] = engine.list_workflows()
    names = [s.name for s in engine.list_steps(status.workflow_id)]
    # The coworker's own LLM and tool calls are steps; the delegation itself is not.
    assert names[:6] == [
        "crewai.task",
        "crewai.llm",
        "crewai.llm",
        "crewai.tool.search",
        "crewai.llm",
        "crewai.llm",
    ]
    assert names.count("crewai.task.output") == 2
    calls = len(call_log)
    call_log.clear()

    again = research_crew(
        process=Process.hierarchical, plans=_delegating_plans(), callbacks=[durable_kickoff]
    ).kickoff(inputs=INPUTS)

    assert again.raw == output.raw
    assert call_log == []
    assert calls == names.count("crewai.llm") + names.count("crewai.tool.search") + names.count(
        "crewai.tool.fact_check"
    )


def test_async_execution_tasks_run_one_after_another(engine: Engine, call_log: list[str]) -> None:
    crew = research_crew(callbacks=[durable_kickoff])
    crew.tasks[0].async_execution = True

    output = crew.kickoff(inputs=INPUTS)

    assert output.raw == FINAL
    [status] = engine.list_workflows()
    assert [s.name for s in engine.list_steps(status.workflow_id)] == KICKOFF_STEPS
    call_log.clear()
    again = research_crew(callbacks=[durable_kickoff])
    again.tasks[0].async_execution = True
    assert again.kickoff(inputs=INPUTS).raw == FINAL
    assert call_log == []


def test_parallel_native_delegations_take_turns_and_resume(
    relaunch: Callable[[], Engine], call_log: list[str]
) -> None:
    delegate = "delegate_work_to_coworker"
    plans: dict[str, Any] = {
        "Crew Manager:Research": [
            [
                (delegate, {"task": "Research AI", "context": "facts", "coworker": "Researcher"}),
                (delegate, {"task": "Write a report on AI", "context": "draft", "coworker": "Writer"}),
            ]
        ],
        "Researcher:Research": [("search", {"query": "AI agents"})],
        "Writer:Write": [("fact_check", {"claim": "agents work"})],
    }

    def build() -> Any:
        return research_crew(
            native=True, process=Process.hierarchical, plans=plans, callbacks=[durable_kickoff]
        )

    engine = relaunch()
    RAISE_IN_TOOL.add("fact_check")
    with pytest.raises(SimulatedCrash):
        build().kickoff(inputs=INPUTS)
    [status] = engine.list_workflows()
    # The two coworkers ran one after the other, in the manager's order.
    assert [s.name for s in engine.list_steps(status.workflow_id)] == [
        "crewai.task",
        "crewai.llm",
        "crewai.llm",
        "crewai.tool.search",
        "crewai.llm",
        "crewai.llm",
    ]
    relaunch()
    call_log.clear()

    output = build().kickoff(inputs=INPUTS)

    assert call_log[:3] == ["tool:fact_check:agents work", "llm:Write:Writer", "llm:Research:Crew Manager"]
    assert "results for AI agents" in output.tasks_output[0].raw
    assert "'agents work' is correct" in output.tasks_output[0].raw


def test_crew_replay_is_a_durable_run_of_its_own(engine: Engine, call_log: list[str]) -> None:
    crew = research_crew(callbacks=[durable_kickoff])
    crew.kickoff(inputs=INPUTS)
    call_log.clear()

    replayed = crew.replay(task_id=str(crew.tasks[1].id))

    assert replayed.raw == FINAL
    assert call_log == ["llm:Write:Writer", "tool:fact_check:agents work", "llm:Write:Writer"]
    ids = {w.workflow_id for w in engine.list_workflows()}
    assert ids == {crew_workflow_id(crew, INPUTS), f"{crew_workflow_id(crew, INPUTS)}-replay-1"}
