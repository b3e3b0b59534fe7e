"""Structured outputs, planning, unusual tool results and `@CrewBase` projects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from crewai import Agent, Crew, Task
from crewai.project import CrewBase, agent, before_kickoff, crew, task
from crewai.tools import tool
from crewai_support import RAISE_IN_TOOL, Report, ScriptedLLM, SimulatedCrash, log_call, research_crew
from durable_crewai import durable_kickoff

from durable_core import Engine

INPUTS = {"topic": "AI"}


def test_output_pydantic_is_replayed_as_the_model(engine: Engine, call_log: list[str]) -> None:
    def build() -> Crew:
        llm = ScriptedLLM(model="scripted")
        writer = Agent(role="Writer", goal="Write", backstory="Clear.", llm=llm)
        summary = Task(
            description="Summarize {topic}", expected_output="A report", agent=writer, output_pydantic=Report
        )
        return Crew(agents=[writer], tasks=[summary], before_kickoff_callbacks=[durable_kickoff])

    first = build().kickoff(inputs=INPUTS)
    assert isinstance(first.pydantic, Report)
    [status] = engine.list_workflows()
    assert "crewai.llm" in [s.name for s in engine.list_steps(status.workflow_id)]
    call_log.clear()

    again = build().kickoff(inputs=INPUTS)

    assert call_log == []
    assert isinstance(again.pydantic, Report)
    assert again.pydantic == first.pydantic
    assert isinstance(again.tasks_output[0].pydantic, Report)


def test_planning_is_one_step_and_a_resume_replays_the_plan(
    relaunch: Callable[[], Engine], call_log: list[str]
) -> None:
    def build() -> Crew:
        crew = research_crew(callbacks=[durable_kickoff])
        crew.planning = True
        crew.planning_llm = ScriptedLLM(model="scripted")
        return crew

    engine = relaunch()
    RAISE_IN_TOOL.add("fact_check")
    with pytest.raises(SimulatedCrash):
        build().kickoff(inputs=INPUTS)
    [status] = engine.list_workflows()
    steps = engine.list_steps(status.workflow_id)
    assert steps[0].name == "crewai.planning"
    assert steps[0].output[0].endswith("[plan 1: be brief]")
    assert len(call_log) > 5  # the planner's own LLM call(s), then the crew's
    relaunch()
    call_log.clear()

    again = build()
    output = again.kickoff(inputs=INPUTS)

    assert call_log == ["tool:fact_check:agents work", "llm:Write:Writer"]  # no planner call
    assert again.tasks[0].description.endswith("[plan 1: be brief]")
    assert output.raw.startswith("Write done")


class Opaque:
    def __str__(self) -> str:
        return "an opaque result"


@tool("opaque")
def opaque(query: str) -> Any:
    """Return something JSON cannot hold."""
    log_call(f"tool:opaque:{query}")
    return Opaque()


def test_a_tool_result_json_cannot_hold_is_recorded_as_its_text(engine: Engine, call_log: list[str]) -> None:
    def build() -> Crew:
        crew = research_crew(
            plans={"Research": [("opaque", {"query": "x"})], "Write": []}, callbacks=[durable_kickoff]
        )
        crew.agents[0].tools = [opaque]
        crew.tasks[0].tools = [opaque]
        return crew

    first = build().kickoff(inputs=INPUTS)
    [status] = engine.list_workflows()
    [step] = [s for s in engine.list_steps(status.workflow_id) if s.name == "crewai.tool.opaque"]
    assert step.output["value"] == "an opaque result"
    assert first.tasks_output[0].raw == "Research done [an opaque result]"
    call_log.clear()

    assert build().kickoff(inputs=INPUTS).tasks_output[0].raw == first.tasks_output[0].raw
    assert call_log == []


@CrewBase
class ReportCrew:
    """A `@CrewBase` project: its `@before_kickoff` method delegates to `durable_kickoff`."""

    agents_config: Any = {}
    tasks_config: Any = {}
    agents: list[Any]
    tasks: list[Any]

    @before_kickoff
    def durable(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return durable_kickoff(inputs)

    @agent
    def writer(self) -> Agent:
        return Agent(role="Writer", goal="Write", backstory="Clear.", llm=ScriptedLLM(model="scripted"))

    @task
    def summary(self) -> Task:
        return Task(description="Summarize {topic}", expected_output="A summary", agent=self.writer())

    @crew
    def crew(self) -> Crew:
        return Crew(agents=self.agents, tasks=self.tasks)


def test_a_crewbase_project_delegates_to_durable_kickoff(engine: Engine, call_log: list[str]) -> None:
    first = ReportCrew().crew().kickoff(inputs=INPUTS)
    assert first.raw.startswith("Summarize done")
    assert len(engine.list_workflows()) == 1
    call_log.clear()

    again = ReportCrew().crew().kickoff(inputs=INPUTS)

    assert again.raw == first.raw
    assert call_log == []
