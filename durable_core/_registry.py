"""The process-wide registry of workflow definitions, keyed by name.

Names default to `fn.__qualname__` (no module), so a script run as `__main__` and the same file
imported by a worker agree. Re-registering a name from the same code location (a module
reloaded, a closure created again, a test parametrized twice) replaces the definition; a
different function under the same name is an error that asks for `name=`.
"""

from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._retry import RetryPolicy

__all__ = [
    "StepDef",
    "WorkflowDef",
    "get_workflow",
    "register_step",
    "register_workflow",
    "registered_names",
]


def _code_location(fn: Callable[..., Any]) -> tuple[str, int] | None:
    code = getattr(inspect.unwrap(fn), "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code is not None else None


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(inspect.unwrap(fn))
    except Exception:  # unresolvable forward references: decode as plain JSON
        return {}


@dataclass(eq=False)
class WorkflowDef:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    max_recovery_attempts: int | None
    auto_recover: bool = True
    _hints: dict[str, Any] | None = field(default=None, repr=False)
    _signature: inspect.Signature | None = field(default=None, repr=False)

    @property
    def hints(self) -> dict[str, Any]:
        if self._hints is None:
            self._hints = _hints(self.fn)
        return self._hints

    @property
    def signature(self) -> inspect.Signature:
        if self._signature is None:
            self._signature = inspect.signature(self.fn)
        return self._signature

    @property
    def return_hint(self) -> Any:
        return self.hints.get("return", Any)


@dataclass(eq=False)
class StepDef:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    max_attempts: int
    interval_seconds: float
    backoff_rate: float
    retry_on: tuple[type[BaseException], ...]
    model_call: bool = False  # a model request: budget-checked first, its usage recorded with it
    _return_hint: Any = field(default=None, repr=False)
    _hint_loaded: bool = field(default=False, repr=False)
    _retry: RetryPolicy | None = field(default=None, repr=False)
    # builds the one-step workflow that runs this step when it is enqueued on its own (given by
    # `@step`; None for a step definition that is never enqueued), and that workflow once built
    make_workflow: Callable[[StepDef], WorkflowDef] | None = field(default=None, repr=False)
    _workflow: WorkflowDef | None = field(default=None, repr=False)

    def as_workflow(self) -> WorkflowDef | None:
        """The one-step workflow (named ``step:<name>``) that runs this step on its own, built once."""
        if self._workflow is None and self.make_workflow is not None:
            self._workflow = self.make_workflow(self)
        return self._workflow

    @property
    def retry(self) -> RetryPolicy:
        """The step's retry policy (built once)."""
        if self._retry is None:
            self._retry = RetryPolicy.of_step(self)
        return self._retry

    @property
    def return_hint(self) -> Any:
        if not self._hint_loaded:
            self._return_hint = _hints(self.fn).get("return", Any)
            self._hint_loaded = True
        return self._return_hint


_lock = threading.Lock()
_workflows: dict[str, WorkflowDef] = {}
_steps: dict[str, StepDef] = {}
STEP_WORKFLOW_PREFIX = "step:"


def register_step(defn: StepDef) -> None:
    """Remember a step by name so a worker can run it when it is enqueued on its own. The latest step
    of a name wins (adapters reuse one step name for several functions)."""
    with _lock:
        _steps[defn.name] = defn


def workflow_of_step(defn: StepDef) -> WorkflowDef:
    """The one-step workflow of `defn`, registered under ``step:<name>`` (replacing the workflow of
    another step of that name: the step being started or enqueued is the one that runs)."""
    as_workflow = defn.as_workflow()
    if as_workflow is None:
        raise TypeError(f"step {defn.name!r} cannot run as a workflow of its own (it was not made by @step)")
    with _lock:
        _workflows[as_workflow.name] = as_workflow
    return as_workflow


def register_workflow(defn: WorkflowDef) -> None:
    with _lock:
        existing = _workflows.get(defn.name)
        if (
            existing is not None
            and existing.fn is not defn.fn
            and _code_location(existing.fn) != _code_location(defn.fn)
        ):
            raise ValueError(
                f"Two different functions are registered as workflow {defn.name!r} "
                f"({existing.fn.__module__}.{existing.fn.__qualname__} and "
                f"{defn.fn.__module__}.{defn.fn.__qualname__}); give one of them a unique "
                "name with @workflow(name=...)."
            )
        _workflows[defn.name] = defn


def get_workflow(name: str) -> WorkflowDef | None:
    defn = _workflows.get(name)
    if defn is None and name.startswith(STEP_WORKFLOW_PREFIX):
        step_def = _steps.get(name[len(STEP_WORKFLOW_PREFIX) :])
        if step_def is not None and step_def.make_workflow is not None:
            return workflow_of_step(step_def)
    return defn


def registered_names() -> list[str]:
    """Names of the workflows this process can run (enqueued steps included)."""
    return sorted({*_workflows, *(STEP_WORKFLOW_PREFIX + name for name in _steps)})
