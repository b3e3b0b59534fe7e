"""Per-kickoff and per-task state, carried in context variables.

CrewAI copies the context into the threads it starts (async tasks, parallel native tool
calls, `asyncio.to_thread`), so a wrapper deep inside an agent loop finds the kickoff and the
task it belongs to without any global registry.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import contextmanager
from contextvars import Context, ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from crewai import Crew

__all__ = [
    "CompletedTask",
    "KickoffRun",
    "TaskScope",
    "ToolOrder",
    "arm",
    "armed_context",
    "current_run",
    "current_scope",
    "disarm",
    "kickoff_scope",
    "nested_scope",
    "step_body",
    "task_scope",
]


@dataclass(frozen=True, kw_only=True)
class CompletedTask:
    """A task whose outcome is on record: the recorded step names it spans and its output."""

    index: int
    key: str
    step_names: tuple[str, ...]
    output: dict[str, Any]


@dataclass(kw_only=True)
class KickoffRun:
    """One execution (first run or replay) of a durable kickoff."""

    workflow_id: str
    crew: Crew
    completed: dict[int, CompletedTask] = field(default_factory=dict[int, "CompletedTask"])
    _async_lock: asyncio.Lock | None = None

    def async_lock(self) -> asyncio.Lock:
        """Serializes `async_execution` tasks in `akickoff` (created in the running loop)."""
        if self._async_lock is None:
            import asyncio

            self._async_lock = asyncio.Lock()
        return self._async_lock


@dataclass(kw_only=True)
class TaskScope:
    """One task execution inside a kickoff: names calls in errors and orders parallel tool calls."""

    run: KickoffRun
    index: int
    label: str
    llm_calls: int = 0
    tool_order: ToolOrder | None = None


class ToolOrder:
    """Makes parallel native tool calls take their step ids in the LLM's order, not thread order.

    CrewAI runs several tool calls from one LLM answer on a thread pool; step ids are handed
    out in call order, so without this a replay could give one call's recorded result to another.
    Each call waits until the calls listed before it in the answer have finished. A call that
    never reaches its tool (blocked by a hook, served from CrewAI's cache) is skipped after
    `grace_seconds` without progress.
    """

    grace_seconds = 2.0

    def __init__(self, expected: list[tuple[str, str]]) -> None:
        self._expected = expected
        self._claimed = [False] * len(expected)
        self._done = [False] * len(expected)
        self._cond = threading.Condition()

    def claim(self, name: str, args_key: str) -> int | None:
        """The index of this call in the LLM's answer (exact match first, then by tool name)."""
        with self._cond:
            for exact in (True, False):
                for index, (exp_name, exp_args) in enumerate(self._expected):
                    if self._claimed[index] or exp_name != name or (exact and exp_args != args_key):
                        continue
                    self._claimed[index] = True
                    return index
        return None

    def wait_turn(self, index: int) -> None:
        with self._cond:
            while not all(self._done[:index]):
                before = sum(self._done)
                if not self._cond.wait(self.grace_seconds) and sum(self._done) == before:
                    for earlier in range(index):  # no progress: the unclaimed earlier calls never came
                        if not self._claimed[earlier]:
                            self._done[earlier] = True

    def finish(self, index: int) -> None:
        with self._cond:
            self._done[index] = True
            self._cond.notify_all()


_run: ContextVar[KickoffRun | None] = ContextVar("durable_crewai_run", default=None)


@contextmanager
def kickoff_scope(run: KickoffRun) -> Generator[KickoffRun]:
    """The kickoff execution running in this context (and the threads CrewAI starts from it)."""
    token = _run.set(run)
    try:
        yield run
    finally:
        _run.reset(token)


_scope: ContextVar[TaskScope | None] = ContextVar("durable_crewai_scope", default=None)


@contextmanager
def task_scope(scope: TaskScope) -> Generator[TaskScope]:
    """The task execution running in this context (and the threads CrewAI starts from it)."""
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def current_run() -> KickoffRun | None:
    return _run.get()


def current_scope() -> TaskScope | None:
    return _scope.get()


_armed_lock = threading.Lock()
_armed: dict[int, list[Context]] = {}


def arm(objects: list[Any], context: Context) -> None:
    """Let the wrappers of `objects` find the task's context from threads that lost it."""
    with _armed_lock:
        for obj in objects:
            _armed.setdefault(id(obj), []).append(context)


def disarm(objects: list[Any], context: Context) -> None:
    with _armed_lock:
        for obj in objects:
            stack = _armed.get(id(obj))
            if stack and context in stack:
                stack.remove(context)
                if not stack:
                    del _armed[id(obj)]


def armed_context(obj: object) -> Context | None:
    """A fresh copy of the context of the task currently using `obj`, if exactly one is."""
    if _in_body.get():
        return None
    with _armed_lock:
        stack = _armed.get(id(obj))
        if not stack or len(stack) != 1:
            return None
        return stack[0].copy()


@contextmanager
def nested_scope(scope: TaskScope) -> Generator[TaskScope]:
    """A scope for calls nested in a delegation: same task, its own parallel-call order."""
    nested = TaskScope(run=scope.run, index=scope.index, label=scope.label, llm_calls=scope.llm_calls)
    token = _scope.set(nested)
    try:
        yield nested
    finally:
        scope.llm_calls = nested.llm_calls
        _scope.reset(token)


_in_body: ContextVar[bool] = ContextVar("durable_crewai_in_body", default=False)


@contextmanager
def step_body() -> Generator[None]:
    """Marks one of the adapter's step bodies: calls nested in it never use an armed context."""
    token = _in_body.set(True)
    try:
        yield
    finally:
        _in_body.reset(token)
