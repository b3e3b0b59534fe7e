"""Model calls for adapters: the running workflow as a handle, budget checks, usage records.

An adapter whose model calls happen where the workflow's step sequence cannot number them
(LangGraph nodes run in parallel and re-execute alone) records each as a step row *outside* the
sequence: a negative step id below every recorded one, taken once per call and never replayed by
id. Totals and budgets read those rows like any model-call step.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Generator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._budget import _verdict, gate_async, gate_sync  # pyright: ignore[reportPrivateUsage]
from ._context import _current, current_context  # pyright: ignore[reportPrivateUsage]
from ._status import now_ms
from ._usage import Usage, _step_usage, encode_usage  # pyright: ignore[reportPrivateUsage]
from .errors import StepOutsideWorkflow

if TYPE_CHECKING:
    from ._run import WorkflowRun

__all__ = [
    "RunningWorkflow",
    "UnsequencedModelCall",
    "check_budget",
    "check_budget_async",
    "collect_usage",
    "running_workflow",
]

_STATE_KEY = "durable_core.unsequenced_rows"
_gate_lock = threading.Lock()  # a budget check and the in-flight count it allows are one decision


def running_workflow() -> RunningWorkflow | None:
    """The workflow execution this code runs in, also inside a step body; None outside any workflow.

    The handle may be kept and used from other threads of the execution (callbacks, pools).
    """
    ctx = _current.get()
    return RunningWorkflow(ctx) if ctx is not None else None


class RunningWorkflow:
    """A read-only handle on one running workflow execution, for model calls outside its step sequence."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: WorkflowRun) -> None:
        self._ctx = ctx

    @property
    def workflow_id(self) -> str:
        return self._ctx.workflow_id

    @property
    def has_budget(self) -> bool:
        """Whether a budget (its own or an ancestor's) governs this workflow's model calls."""
        return self._ctx.budget_owner is not None

    def begin_model_call(self, refused: Callable[[str], BaseException]) -> UnsequencedModelCall:
        """Check the budget, then count a model call in flight until it is recorded or abandoned.

        A budget that refuses the call raises ``refused(reason)`` (the adapter's own signal, e.g. one
        its framework lets bubble up); the call must then not be made.
        """
        ctx = self._ctx
        with _gate_lock:
            if ctx.budget_owner is not None:
                _budget, _totals, reason = _verdict(ctx)
                if reason is not None:
                    raise refused(reason)
            release = ctx.engine.model_call_started(ctx.budget_owner)
            row_id = _take_row_id(ctx)
        return UnsequencedModelCall(ctx, release, row_id)


class UnsequencedModelCall:
    """A model call in flight: recorded once (with its usage) outside the step sequence, or abandoned."""

    __slots__ = ("_ctx", "_done", "_release", "_row_id", "started_at")

    def __init__(self, ctx: WorkflowRun, release: Callable[[], None], row_id: int) -> None:
        self._ctx = ctx
        self._release = release
        self._row_id = row_id  # taken with the budget check: recording needs no lock
        self._done = False
        self.started_at = now_ms()

    def record(
        self, name: str, *, value: Any = None, error: BaseException | None = None, usages: list[Usage]
    ) -> None:
        """Write the call's step row (`value` or `error`, and what it consumed); then release it.

        Raises like a step record when this execution no longer owns the workflow. Idempotent.
        """
        if self._done:
            return
        self._done = True
        try:
            ctx = self._ctx
            ctx.record(
                self._row_id,
                name,
                value=value if error is None else None,
                error=error,
                started_at=self.started_at,
                usage=encode_usage(usages),
            )
        finally:
            self._release()

    def abandon(self) -> None:
        """The call never completed here (the process is stopping): release it unrecorded."""
        if not self._done:
            self._done = True
            self._release()


def _take_row_id(ctx: WorkflowRun) -> int:
    """A step id below every recorded one: these rows live outside the step sequence. The caller
    holds `_gate_lock`."""
    state: dict[str, int] | None = ctx.adapter_state.get(_STATE_KEY)
    if state is None:
        lowest = min([0, *ctx.recorded.keys()])
        state = ctx.adapter_state[_STATE_KEY] = {"next": lowest - 1}
    row_id = state["next"]
    state["next"] = row_id - 1
    return row_id


@contextmanager
def collect_usage(collected: list[Usage]) -> Generator[list[Usage]]:
    """`durable_core.record_usage` calls made in this context append to `collected`."""
    token = _step_usage.set(collected)
    try:
        yield collected
    finally:
        _step_usage.reset(token)


def _workflow_code(what: str) -> WorkflowRun:
    ctx = current_context()
    if ctx is None:
        raise StepOutsideWorkflow(f"{what}() must be called in workflow code (not in a step body).")
    return ctx


def check_budget() -> None:
    """In workflow code: a recorded budget check (a ``durable.budget`` step), as before a model call.

    Passes when the budget allows a model call; else pauses durably (a ``"budget"`` wait, until
    `Engine.raise_budget`) or raises `BudgetExceeded`, as the budget says. A replay takes the same
    decision. Without a budget it does nothing (and takes no step).
    """
    ctx = _workflow_code("check_budget")
    if ctx.budget_owner is not None:
        gate_sync(ctx)


def check_budget_async() -> Awaitable[None]:
    """Async `check_budget`; its step id is taken at call time, like an async step's."""
    ctx = _workflow_code("check_budget_async")
    if ctx.budget_owner is None:
        return _nothing()
    return gate_async(ctx, ctx.take_step_id())


async def _nothing() -> None:
    return None
