"""A kickoff as one durable workflow: `instrument(crew)` and the workflow bodies.

CrewAI offers no public seam that wraps a whole kickoff, so the adapter replaces three of the
crew's own methods on the instance: `_execute_tasks` / `_aexecute_tasks` (the part of
`kickoff` / `akickoff` that runs the tasks, for both processes) become a call of the durable
workflow, and `_handle_crew_planning` is deferred into it as a step. Everything `kickoff` does
before (input interpolation, agent setup) is cheap and deterministic, so it simply runs again
on a resume.

The workflow runs in the caller's thread, inside CrewAI's own kickoff (its events, hooks and
context variables stay intact). Re-running the same kickoff finds the workflow by id: a
finished one returns its recorded `CrewOutput` with no LLM or tool call, an unfinished one is
resumed from its record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from crewai import Crew
from crewai.core.providers.human_input import reset_provider, set_provider
from crewai.crews.crew_output import CrewOutput

from durable_core import Budget, Engine, current_workflow_id, step, workflow
from durable_core.extend import (
    LiveHandoff,
    leave_to_caller,
    pending_workflow_id,
    recorded_steps,
    workflow_id_scope,
)

from ._codec import decode_crew_output, encode_crew_output
from ._errors import BudgetStop, CrewDivergenceError
from ._identity import crew_structure_key, default_workflow_id
from ._ownership import owns, set_owned
from ._state import CompletedTask, KickoffRun, kickoff_scope
from ._steps import wrap_llm, wrap_tool
from ._tasks import TASK_OUTPUT_STEP, TASK_STEP, agent_llms, wrap_task
from ._usage import collect_usage
from ._waits import DurableHumanInputProvider

__all__ = ["KICKOFF_WORKFLOW", "instrument", "is_instrumented"]

KICKOFF_WORKFLOW = "durable_crewai.kickoff"
AKICKOFF_WORKFLOW = "durable_crewai.akickoff"
PLANNING_STEP = "crewai.planning"


@dataclass(kw_only=True)
class _LiveCall:
    """The kickoff in progress in this thread: what the workflow body is to run."""

    crew: Crew
    run_tasks: Callable[[], Any]
    planning: bool
    output: CrewOutput | None = None


_live: LiveHandoff[_LiveCall] = LiveHandoff("durable_crewai")


def instrument(crew: Crew, *, workflow_id: str | None = None, budget: Budget | None = None) -> Crew:
    """Make every kickoff of `crew` a durable workflow; returns the same crew.

    Example:
        ```python
        crew = instrument(Crew(agents=[...], tasks=[...]), budget=Budget(max_cost_usd=2.0))
        with Engine("sqlite:///crew.db"):
            crew.kickoff(inputs={"topic": "AI"})   # after a crash, the same line resumes it
        ```

    Every LLM call of a kickoff is a model-call step: it records the tokens, requests, model,
    provider and (when `genai-prices` can price it) cost that CrewAI's provider response
    reported, so `engine.get_workflow_status(id).usage` totals the kickoff (with any crew it
    kicks off inside a task) and a replay never counts a call twice.

    Args:
        crew: the crew to patch in place (tasks, agents' LLMs and tools are wrapped lazily at
            each kickoff, so tasks and tools added later are covered).
        workflow_id: the id of the next kickoff's workflow; `workflow_options(workflow_id=...)`
            around the kickoff takes precedence, the default is a stable hash of the crew's
            tasks, agents, process and inputs.
        budget: a `durable_core.Budget` for each kickoff of this crew (each kickoff has its own),
            checked before every LLM call against what the kickoff has spent. With the default
            ``on_exceeded="pause"`` a kickoff that reached it waits durably (a wait of kind
            ``"budget"``; `crew.kickoff()` blocks meanwhile) until `engine.raise_budget(id, ...)`
            lets it continue, also after a crash and a re-run of the same kickoff; with
            ``"fail"`` the kickoff raises `BudgetExceeded` (recorded as its error) instead of
            making the call. A budget given with `workflow_options(budget=...)` around
            `crew.kickoff(...)` takes precedence; a budget set on an enclosing workflow covers
            the kickoff too. Given again, it replaces the crew's budget (None keeps it); the
            budget of a kickoff already recorded does not change (raise it instead).
    """
    if owns(crew, "_execute_tasks"):
        wrapper = vars(crew)["_execute_tasks"]
        if workflow_id is not None:
            wrapper.workflow_id = workflow_id
        if budget is not None:
            wrapper.budget = budget
        return crew
    sync_execute = type(crew)._execute_tasks.__get__(crew)  # pyright: ignore[reportPrivateUsage]
    async_execute = type(crew)._aexecute_tasks.__get__(crew)  # pyright: ignore[reportPrivateUsage]
    planning_requested: list[bool] = [False]

    def _execute_tasks(tasks: Any, start_index: int | None = 0, was_replayed: bool = False) -> CrewOutput:
        live = _LiveCall(
            crew=crew,
            run_tasks=lambda: sync_execute(tasks, start_index, was_replayed),
            planning=_take(planning_requested),
        )
        chosen = wrapper_id()
        if was_replayed and chosen is None and pending_workflow_id() is None:
            # Crew.replay(task_id): a run of its own, not the kickoff it replays from.
            chosen = f"{default_workflow_id(crew, _inputs_of(crew))}-replay-{start_index}"
        return _durable_call(crew, live, chosen, _execute_tasks.budget)  # type: ignore[attr-defined]

    async def _aexecute_tasks(
        tasks: Any, start_index: int | None = 0, was_replayed: bool = False
    ) -> CrewOutput:
        live = _LiveCall(
            crew=crew,
            run_tasks=lambda: async_execute(tasks, start_index, was_replayed),
            planning=_take(planning_requested),
        )
        return await _adurable_call(crew, live, wrapper_id(), _execute_tasks.budget)  # type: ignore[attr-defined]

    def _handle_crew_planning() -> None:
        planning_requested[0] = True  # planned inside the workflow, as a step

    def wrapper_id() -> str | None:  # the id given to instrument() names the next kickoff only
        chosen: str | None = getattr(_execute_tasks, "workflow_id", None)
        _execute_tasks.workflow_id = None  # type: ignore[attr-defined]
        return chosen

    set_owned(crew, "_execute_tasks", _execute_tasks)
    set_owned(crew, "_aexecute_tasks", _aexecute_tasks)
    set_owned(crew, "_handle_crew_planning", _handle_crew_planning)
    if workflow_id is not None:
        _execute_tasks.workflow_id = workflow_id  # type: ignore[attr-defined]
    _execute_tasks.budget = budget  # type: ignore[attr-defined]
    _prepare(crew)
    return crew


def is_instrumented(crew: Crew) -> bool:
    return owns(crew, "_execute_tasks")


def _take(flag: list[bool]) -> bool:
    requested, flag[0] = flag[0], False
    return requested


def _prepare(crew: Crew) -> None:
    """Wrap what can be reached before the kickoff runs; tasks re-check lazily at execution."""
    for task in crew.tasks:
        wrap_task(task)
        for tool in task.tools or []:
            wrap_tool(tool)
    for agent in [*crew.agents, *([crew.manager_agent] if crew.manager_agent else [])]:
        for llm in agent_llms(agent):
            wrap_llm(llm)
        for tool in agent.tools or []:
            wrap_tool(tool)
    for llm in (vars(crew).get("manager_llm"), vars(crew).get("function_calling_llm"), crew.planning_llm):
        wrap_llm(llm)


def _call_plan(
    crew: Crew, chosen: str | None, budget: Budget | None
) -> tuple[str, AbstractContextManager[str]]:
    """(the crew's structure key, the scope that starts the kickoff under its id and budget; it
    yields the id). The id: the caller's `workflow_options`, else `chosen`, else the default."""
    _prepare(crew)
    workflow_id = pending_workflow_id() or chosen or default_workflow_id(crew, _inputs_of(crew))
    return crew_structure_key(crew), workflow_id_scope(workflow_id, budget=budget)


def _durable_call(crew: Crew, live: _LiveCall, chosen: str | None, budget: Budget | None) -> CrewOutput:
    key, scope = _call_plan(crew, chosen, budget)
    with _live.offer(live), scope as workflow_id:
        recorded = crewai_kickoff(key, _inputs_of(crew))
    return _result(crew, live, recorded, workflow_id, key)


async def _adurable_call(
    crew: Crew, live: _LiveCall, chosen: str | None, budget: Budget | None
) -> CrewOutput:
    key, scope = _call_plan(crew, chosen, budget)
    with _live.offer(live), scope as workflow_id:
        recorded = await crewai_akickoff(key, _inputs_of(crew))
    return _result(crew, live, recorded, workflow_id, key)


def _result(crew: Crew, live: _LiveCall, recorded: dict[str, Any], workflow_id: str, key: str) -> CrewOutput:
    if live.output is not None:
        return live.output
    _check_same_crew(workflow_id, key, crew)
    # The kickoff had finished before: rebuild its output with no LLM or tool call. CrewAI's
    # own end-of-kickoff bookkeeping (OUTPUT / EXECUTION_END hooks, the completed event) still
    # runs, so the EXECUTION_START this kickoff dispatched is paired as usual.
    output = decode_crew_output(recorded, [task.output_pydantic for task in crew.tasks])
    for task, task_output in zip(crew.tasks, output.tasks_output, strict=False):
        task.output = task_output
    return crew._create_crew_output(output.tasks_output)  # pyright: ignore[reportPrivateUsage]


def _inputs_of(crew: Crew) -> dict[str, Any] | None:
    """The kickoff's interpolated inputs (CrewAI keeps them on the crew; no public accessor)."""
    return crew._inputs  # pyright: ignore[reportPrivateUsage]


def _check_same_crew(workflow_id: str, key: str, crew: Crew) -> None:
    """A finished kickoff's result is only handed to the crew that recorded it."""
    status = Engine.current().get_workflow_status(workflow_id)
    recorded = status.inputs if isinstance(status.inputs, dict) else {}
    args = [*(recorded.get("args") or []), None, None]
    kwargs = recorded.get("kwargs") or {}
    recorded_key, recorded_inputs = kwargs.get("crew", args[0]), kwargs.get("inputs", args[1])
    if recorded_key != key or (recorded_inputs or {}) != (_inputs_of(crew) or {}):
        raise CrewDivergenceError(
            workflow_id,
            0,
            f"a kickoff of crew {recorded_key} with inputs {recorded_inputs}",
            f"a kickoff of crew {key} with inputs {_inputs_of(crew)}",
            task=_label(crew),
            call="the kickoff (its workflow id was recorded for another crew or other inputs)",
        )


def _label(crew: Crew) -> str:
    return crew.name or ", ".join(task.name or task.description[:40] for task in crew.tasks)


@workflow(name=KICKOFF_WORKFLOW, auto_recover=False)
def crewai_kickoff(crew: str, inputs: dict[str, Any] | None) -> dict[str, Any]:
    """The durable kickoff (sync `kickoff`, `kickoff_async`, `kickoff_for_each`)."""
    live = _claim_live()
    try:
        with _kickoff_run(live):
            if live.planning:
                _plan(live.crew)
            output: CrewOutput = live.run_tasks()
    except BudgetStop as stop:  # a budget refused an LLM call: the kickoff ends with BudgetExceeded
        raise stop.error from None
    live.output = output
    return encode_crew_output(output)


@workflow(name=AKICKOFF_WORKFLOW, auto_recover=False)
async def crewai_akickoff(crew: str, inputs: dict[str, Any] | None) -> dict[str, Any]:
    """The durable native-async kickoff (`akickoff`, `akickoff_for_each`)."""
    live = _claim_live()
    try:
        with _kickoff_run(live):
            if live.planning:  # CrewAI's planner is sync code that may start its own event loop
                await asyncio.to_thread(_plan, live.crew)
            pending: Awaitable[CrewOutput] = live.run_tasks()
            output = await pending
    except BudgetStop as stop:
        raise stop.error from None
    live.output = output
    return encode_crew_output(output)


def _claim_live() -> _LiveCall:
    live = _live.claim()  # claimed once: a crew kicked off inside a task starts its own workflow
    if live is None:
        # Run by an engine (resumed, forked, dequeued) without the crew: leave the workflow
        # PENDING (nothing is recorded) for the next `crew.kickoff(...)` to resume.
        leave_to_caller("a durable CrewAI kickoff resumes when the same crew.kickoff(...) runs again")
    return live


@contextmanager
def _kickoff_run(live: _LiveCall) -> Generator[KickoffRun]:
    workflow_id = current_workflow_id()
    run = KickoffRun(workflow_id=workflow_id, crew=live.crew, completed=_completed_tasks())
    provider_token = set_provider(DurableHumanInputProvider())
    try:
        with kickoff_scope(run):
            yield run
    finally:
        reset_provider(provider_token)


def _completed_tasks() -> dict[int, CompletedTask]:
    """Tasks framed by a `crewai.task` and a `crewai.task.output` step in the record."""
    completed: dict[int, CompletedTask] = {}
    opened: tuple[int, str] | None = None
    names: list[str] = []
    recorded = recorded_steps()  # as of this execution's start; empty for a new kickoff
    for name, output in [(recorded[i].name, recorded[i].output) for i in sorted(recorded)]:
        if name == TASK_STEP and isinstance(output, dict):
            opened, names = (int(output.get("index", -1)), str(output.get("key"))), []
        if opened is None:
            continue
        names.append(name)
        if name == TASK_OUTPUT_STEP and isinstance(output, dict):
            index, key = opened
            completed[index] = CompletedTask(index=index, key=key, step_names=tuple(names), output=output)
            opened = None
    return completed


def _plan(crew: Crew) -> None:
    """CrewAI's planning (`Crew(planning=True)`) as one step; a replay restores the planned tasks.

    The planner calls an LLM, so the step is a model-call step: budget-checked first, with the
    usage of the planner's LLM calls (all of them, as one model call).
    """

    def crewai_planning() -> list[str]:
        with collect_usage(lambda: [crew.planning_llm]):
            type(crew)._handle_crew_planning(crew)  # pyright: ignore[reportPrivateUsage]
        return [task.description for task in crew.tasks]

    descriptions = step(name=PLANNING_STEP, model_call=True)(crewai_planning)()
    for task, description in zip(crew.tasks, descriptions, strict=False):
        task.description = description
