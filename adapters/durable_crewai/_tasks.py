"""Each task execution: skipped outright when its outcome is on record, else run inside a task scope.

A task's record is framed by two steps: `crewai.task` (which task, checked on replay before
any of its LLM or tool calls) and `crewai.task.output` (its `TaskOutput`). On resume a task
framed by both is skipped: its recorded steps are replayed by name, without running anything,
only so the step counter moves past them; its output is restored and none of its callbacks,
events or `output_file` writes happen again.

Async tasks (`async_execution=True`) run one after another in a durable kickoff: every step
of a kickoff takes the next step id, so concurrent tasks would interleave their ids
differently on every run.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Generator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from crewai.task import Task
from crewai.tasks.task_output import TaskOutput

from durable_core import in_workflow, step

from ._codec import decode_task_output, encode_task_output
from ._errors import CrewDivergenceError
from ._ownership import owns, set_owned
from ._state import CompletedTask, KickoffRun, TaskScope, arm, current_run, disarm, task_scope
from ._steps import wrap_llm, wrap_tool

__all__ = ["TASK_OUTPUT_STEP", "TASK_STEP", "agent_llms", "wrap_task"]

TASK_STEP = "crewai.task"
TASK_OUTPUT_STEP = "crewai.task.output"


def wrap_task(task: Task) -> None:
    """Route `task`'s three execution entry points through the durable kickoff (idempotent)."""
    if owns(task, "execute_sync"):
        return
    sync = type(task).execute_sync.__get__(task)
    asynchronous = type(task).aexecute_sync.__get__(task)

    def execute_sync(
        agent: Any = None, context: str | None = None, tools: list[Any] | None = None
    ) -> TaskOutput:
        run = current_run()
        if run is None or not in_workflow():
            return sync(agent, context, tools)
        index = _index(run, task)
        completed = run.completed.get(index)
        if completed is not None:
            return _skip(run, task, completed)
        with _task_scope(run, task, index, agent, tools):
            _check_start(run, task, index, step(name=TASK_STEP)(_start_payload)(task, index))
            output = sync(agent, context, tools)
            step(name=TASK_OUTPUT_STEP)(encode_task_output)(output)
            return output

    def execute_async(
        agent: Any = None, context: str | None = None, tools: list[Any] | None = None
    ) -> Future[TaskOutput]:
        if current_run() is None or not in_workflow():
            return type(task).execute_async(task, agent, context, tools)
        future: Future[TaskOutput] = Future()
        try:
            future.set_result(execute_sync(agent, context, tools))
        except Exception as error:
            future.set_exception(error)
        return future

    async def aexecute_sync(
        agent: Any = None, context: str | None = None, tools: list[Any] | None = None
    ) -> TaskOutput:
        run = current_run()
        if run is None or not in_workflow():
            return await asynchronous(agent, context, tools)
        async with run.async_lock():
            index = _index(run, task)
            completed = run.completed.get(index)
            if completed is not None:
                return await _askip(run, task, completed)
            with _task_scope(run, task, index, agent, tools):
                payload = await step(name=TASK_STEP)(_astart_payload)(task, index)
                _check_start(run, task, index, payload)
                output = await asynchronous(agent, context, tools)
                await step(name=TASK_OUTPUT_STEP)(_aencode)(output)
                return output

    set_owned(task, "execute_sync", execute_sync)
    set_owned(task, "execute_async", execute_async)
    set_owned(task, "aexecute_sync", aexecute_sync)


def _index(run: KickoffRun, task: Task) -> int:
    for index, candidate in enumerate(run.crew.tasks):
        if candidate is task:
            return index
    raise ValueError(f"Task {task.description[:60]!r} is not one of the kickoff's tasks.")


def _label(task: Task) -> str:
    return (task.name or task.description)[:80]


def _start_payload(task: Task, index: int) -> dict[str, Any]:
    return {"index": index, "key": task.key, "agent": task.agent.role if task.agent else None}


async def _astart_payload(task: Task, index: int) -> dict[str, Any]:
    return _start_payload(task, index)


async def _aencode(output: TaskOutput) -> dict[str, Any]:
    return encode_task_output(output)


def _check_start(run: KickoffRun, task: Task, index: int, recorded: dict[str, Any]) -> None:
    """A replayed `crewai.task` step must name this very task: checked before any of its calls."""
    if recorded.get("index") != index or recorded.get("key") != task.key:
        raise CrewDivergenceError(
            run.workflow_id,
            0,
            f"{TASK_STEP} #{recorded.get('index')} (key {recorded.get('key')})",
            f"{TASK_STEP} #{index} (key {task.key})",
            task=_label(task),
            call="the task's start",
        )


def _restore(run: KickoffRun, task: Task, completed: CompletedTask, recorded_output: Any) -> TaskOutput:
    if completed.key != task.key:
        raise CrewDivergenceError(
            run.workflow_id,
            0,
            f"{TASK_STEP} #{completed.index} (key {completed.key})",
            f"{TASK_STEP} #{completed.index} (key {task.key})",
            task=_label(task),
            call="the task's start",
        )
    output = decode_task_output(recorded_output or completed.output, task.output_pydantic)
    task.output = output
    return output


def _skip(run: KickoffRun, task: Task, completed: CompletedTask) -> TaskOutput:
    recorded: Any = None
    not_recorded = _not_recorded(run.workflow_id)
    for name in completed.step_names:
        try:
            recorded = step(name=name)(not_recorded)()
        except Exception:  # a recorded tool or LLM failure: it is replayed, and CrewAI handled it then
            recorded = None
    return _restore(run, task, completed, recorded)


async def _askip(run: KickoffRun, task: Task, completed: CompletedTask) -> TaskOutput:
    recorded: Any = None
    not_recorded = _not_recorded(run.workflow_id)

    async def anot_recorded() -> Any:
        return not_recorded()

    for name in completed.step_names:
        try:
            recorded = await step(name=name)(anot_recorded)()
        except Exception:  # see _skip
            recorded = None
    return _restore(run, task, completed, recorded)


def _not_recorded(workflow_id: str) -> Callable[[], Any]:
    """The body of a skip step: it only runs if the record does not hold what it held a moment ago."""

    def skipped_step() -> Any:
        raise CrewDivergenceError(
            workflow_id,
            0,
            "a recorded step of a completed task",
            "no record",
            task="(a completed task)",
            call="skipping its recorded steps",
        )

    return skipped_step


@contextmanager
def _task_scope(
    run: KickoffRun, task: Task, index: int, agent: Any, tools: list[Any] | None
) -> Generator[TaskScope]:
    """Wrap what this task can reach (its agent's LLMs, its tools) and open its scope."""
    agent = agent or task.agent
    llms = _reachable_llms(run, agent)
    all_tools = [*(tools or []), *(task.tools or []), *(getattr(agent, "tools", None) or [])]
    for member in run.crew.agents:  # coworkers reached through delegation
        all_tools += member.tools or []
    for llm in llms:
        wrap_llm(llm)
    for tool in all_tools:
        wrap_tool(tool)
    with task_scope(TaskScope(run=run, index=index, label=_label(task))) as scope:
        snapshot = contextvars.copy_context()
        armed = [*llms, *all_tools]
        arm(armed, snapshot)
        try:
            yield scope
        finally:
            disarm(armed, snapshot)


def _reachable_llms(run: KickoffRun, agent: Any) -> list[Any]:
    crew = run.crew
    candidates = [
        *agent_llms(agent),
        *agent_llms(crew.manager_agent),
        _field(crew, "manager_llm"),
        _field(crew, "function_calling_llm"),
    ]
    for member in crew.agents:  # coworkers reached through delegation
        candidates += agent_llms(member)
    unique: dict[int, Any] = {}
    for llm in candidates:
        if llm is not None and not isinstance(llm, str):
            unique.setdefault(id(llm), llm)
    return list(unique.values())


def agent_llms(agent: Any) -> list[Any]:
    """An agent's LLM objects, read without tripping the deprecation of `function_calling_llm`."""
    return [_field(agent, "llm"), _field(agent, "function_calling_llm")]


def _field(obj: Any, name: str) -> Any:
    return vars(obj).get(name) if obj is not None and hasattr(obj, "__dict__") else None
