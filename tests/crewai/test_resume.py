"""Resuming in the same process: skipped tasks, divergence, parallel native tool calls.

A `SimulatedCrash` (a BaseException nothing catches) stops the kickoff mid-task; relaunching an
Engine with the same executor id stands for the restarted process (the subprocess tests in
test_crewai_crash.py do it for real).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from crewai_support import FAILING_LLM_TASKS, RAISE_IN_TOOL, SimulatedCrash, research_crew
from durable_crewai import CrewDivergenceError, durable_kickoff

from durable_core import Engine, NondeterminismError, workflow_options

INPUTS = {"topic": "AI"}


def crash_in(tool: str, build: Callable[[], Any], workflow_id: str | None = None) -> None:
    RAISE_IN_TOOL.add(tool)
    with pytest.raises(SimulatedCrash):
        if workflow_id is None:
            build().kickoff(inputs=INPUTS)
        else:
            with workflow_options(workflow_id=workflow_id):
                build().kickoff(inputs=INPUTS)


def test_completed_tasks_are_skipped_and_their_callbacks_do_not_fire_again(
    relaunch: Callable[[], Engine], call_log: list[str]
) -> None:
    relaunch()
    first_callbacks: list[Any] = []
    crash_in(
        "fact_check", lambda: research_crew(callbacks=[durable_kickoff], task_callback=first_callbacks.append)
    )
    assert [o.agent for o in first_callbacks] == ["Researcher"]
    relaunch()
    call_log.clear()
    callbacks: list[Any] = []

    output = research_crew(callbacks=[durable_kickoff], task_callback=callbacks.append).kickoff(inputs=INPUTS)

    assert call_log == ["tool:fact_check:agents work", "llm:Write:Writer"]
    assert [o.agent for o in callbacks] == ["Writer"]  # task 1 was skipped outright
    assert [t.raw for t in output.tasks_output] == ["Research done [results for AI agents]", output.raw]
    assert output.raw == "Write done ['agents work' is correct]"


def test_a_changed_task_diverges_before_any_of_its_calls(
    relaunch: Callable[[], Engine], call_log: list[str]
) -> None:
    relaunch()
    crash_in("fact_check", lambda: research_crew(callbacks=[durable_kickoff]), workflow_id="diverge-1")
    engine = relaunch()
    call_log.clear()
    changed = research_crew(callbacks=[durable_kickoff], write_description="Write a poem on {topic}")

    with (
        pytest.raises(NondeterminismError, match="diverge-1") as caught,
        workflow_options(workflow_id="diverge-1"),
    ):
        changed.kickoff(inputs=INPUTS)

    assert isinstance(caught.value, CrewDivergenceError)
    assert "Write a poem on AI" in str(caught.value)
    assert call_log == []
    assert engine.get_workflow_status("diverge-1").status == "ERROR"


def test_a_changed_prompt_diverges_at_the_llm_call_before_calling(
    relaunch: Callable[[], Engine], call_log: list[str]
) -> None:
    relaunch()
    crash_in("fact_check", lambda: research_crew(callbacks=[durable_kickoff]), workflow_id="diverge-2")
    relaunch()
    call_log.clear()
    changed = research_crew(callbacks=[durable_kickoff], writer_backstory="Poetic.")

    with (
        pytest.raises(CrewDivergenceError, match=r"diverge-2.*LLM call 1"),
        workflow_options(workflow_id="diverge-2"),
    ):
        changed.kickoff(inputs=INPUTS)

    assert call_log == []


def test_parallel_native_tool_calls_replay_to_their_own_call(
    relaunch: Callable[[], Engine], call_log: list[str]
) -> None:
    plans: dict[str, Any] = {
        "Research": [
            [("lookup", {"query": "slow", "delay": 0.3}), ("lookup", {"query": "fast", "delay": 0.0})],
            ("search", {"query": "AI agents"}),
        ],
        "Write": [],
    }
    expected = "Research done [archive entry for slow | archive entry for fast | results for AI agents]"
    engine = relaunch()
    crash_in("search", lambda: research_crew(native=True, plans=plans, callbacks=[durable_kickoff]))
    # Step ids follow the LLM's order, not the order in which the threads finished.
    [status] = engine.list_workflows()
    tools = [s for s in engine.list_steps(status.workflow_id) if s.name == "crewai.tool.lookup"]
    assert [s.output["value"] for s in tools] == ["archive entry for slow", "archive entry for fast"]
    relaunch()
    call_log.clear()

    output = research_crew(native=True, plans=plans, callbacks=[durable_kickoff]).kickoff(inputs=INPUTS)

    assert call_log[:2] == ["tool:search:AI agents", "llm:Research:Researcher"]
    assert output.tasks_output[0].raw == expected


def test_a_failed_kickoff_is_retried_by_forking_before_the_failure(
    engine: Engine, call_log: list[str]
) -> None:
    FAILING_LLM_TASKS.add("Write")
    try:
        with (
            pytest.raises(RuntimeError, match="provider unavailable"),
            workflow_options(workflow_id="fails-1"),
        ):
            research_crew(callbacks=[durable_kickoff]).kickoff(inputs=INPUTS)
    finally:
        FAILING_LLM_TASKS.clear()
    assert engine.get_workflow_status("fails-1").status == "ERROR"
    steps = engine.list_steps("fails-1")
    first_failure = next(s.step_id for s in steps if s.error is not None)
    call_log.clear()

    fork = engine.fork_workflow("fails-1", first_failure, new_workflow_id="fails-1-retry")
    with workflow_options(workflow_id=fork.workflow_id):
        output = research_crew(callbacks=[durable_kickoff]).kickoff(inputs=INPUTS)

    assert output.raw == "Write done ['agents work' is correct]"
    assert call_log == ["llm:Write:Writer", "tool:fact_check:agents work", "llm:Write:Writer"]
