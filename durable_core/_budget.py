"""Budgets: checked before each model-call step of a workflow tree that has one.

Under a budget every model call is preceded by a recorded check step (``durable.budget``), so a
replay takes the same decisions without reading the database: a check that passed replays as
passed, a pause replays as resumed, a `BudgetExceeded` is raised again. Live, the check sums the
recorded usage of the budget's whole tree plus the model calls in flight in this process. A
``"pause"`` budget waits durably (kind ``"budget"``) until `Engine.raise_budget` lifts the limit
or the workflow is cancelled; a ``"fail"`` budget raises `BudgetExceeded`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ._keys import budget_key
from ._records import wait_label
from ._run import RunHost, WorkflowRun
from ._status import now_ms
from ._usage import Budget, UsageTotals, decode_usage, totals_of
from ._waiting import Wait, drive_async, drive_sync, lost_ownership
from .errors import BudgetExceeded
from .storage import StepWrite

__all__ = ["BUDGET_STEP", "ModelCallsInFlight", "gate_async", "gate_sync", "tree_totals"]

BUDGET_STEP = "durable.budget"


def _nothing() -> None:
    return None


class ModelCallsInFlight:
    """The live model calls of this process per budget owner, counted until each is recorded (a
    budget check counts them with the recorded usage, so concurrent calls cannot overshoot it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def started(self, budget_owner: str | None) -> Callable[[], None]:
        """Count a live model call against its budget until it is recorded; returns the release."""
        if budget_owner is None:
            return _nothing
        with self._lock:
            self._counts[budget_owner] = self._counts.get(budget_owner, 0) + 1

        def release() -> None:
            with self._lock:
                left = self._counts.get(budget_owner, 1) - 1
                if left:
                    self._counts[budget_owner] = left
                else:
                    self._counts.pop(budget_owner, None)

        return release

    def count(self, budget_owner: str) -> int:
        with self._lock:
            return self._counts.get(budget_owner, 0)


def tree_totals(engine: RunHost, root: str) -> UsageTotals:
    rows = engine.usage_records.tree_rows(workflow_ids=[root])
    return totals_of([decode_usage(r.usage) for r in rows])


def _verdict(ctx: WorkflowRun) -> tuple[Budget, UsageTotals, str | None]:
    engine = ctx.engine
    owner = ctx.budget_owner
    assert owner is not None
    # The calls in flight are counted before the recorded ones are read: a call records its row
    # before it leaves the in-flight count, so each call is counted at least once. The other way
    # round, a call recorded just after the read and released just before the count was in neither,
    # and a parallel call got past a budget it had used up.
    in_flight = engine.model_calls_in_flight(owner)
    text = engine.usage_records.budget_of(owner)
    budget = Budget.from_json(text) if text else Budget()
    totals = tree_totals(engine, owner)
    return budget, totals, budget.exceeded(totals, in_flight)


def _summary(totals: UsageTotals) -> dict[str, Any]:
    return {"model_calls": totals.model_calls, "tokens": totals.tokens, "cost_usd": round(totals.cost_usd, 6)}


def _exceeded_error(ctx: WorkflowRun, reason: str) -> BudgetExceeded:
    return BudgetExceeded(
        f"Workflow {ctx.workflow_id!r} reached its budget ({reason}; budget of {ctx.budget_owner!r}) and makes "
        "no further model call. Raise it with engine.raise_budget(...) and resume the workflow.",
        workflow_id=ctx.workflow_id,
    )


class _BudgetWait(Wait):
    """A durable pause until the budget allows a model call again (or the workflow is cancelled)."""

    def __init__(self, ctx: WorkflowRun, step_id: int, reason: str) -> None:
        super().__init__(
            ctx,
            step_id,
            BUDGET_STEP,
            wait_label("budget", reason),
            None,
            [budget_key(str(ctx.budget_owner))],
            self._attempt,
            lambda _deadline: None,
        )

    def _attempt(self, step: StepWrite) -> tuple[bool, Any]:
        _budget, totals, reason = _verdict(self.ctx)
        if reason is not None:
            return False, None
        value = {"paused": True, **_summary(totals)}
        step.output = self.ctx.engine.serializer.dumps(value)
        if not self.ctx.engine.messages.finish_wait(step=step, now=now_ms()):
            lost_ownership(self.ctx, self.step_id)
        return True, value


def _live_check(ctx: WorkflowRun, step_id: int, started: int) -> _BudgetWait | None:
    """Check now: record a pass, raise (and record) a failure, or return the pause to drive."""
    budget, totals, reason = _verdict(ctx)
    if reason is None:
        ctx.record(step_id, BUDGET_STEP, value={"paused": False, **_summary(totals)}, started_at=started)
        return None
    if budget.on_exceeded == "fail":
        error = _exceeded_error(ctx, reason)
        ctx.record(step_id, BUDGET_STEP, error=error, started_at=started)
        raise error
    return _BudgetWait(ctx, step_id, reason)


def gate_sync(ctx: WorkflowRun) -> None:
    step_id = ctx.take_step_id()
    row = ctx.begin_step(step_id, BUDGET_STEP)
    if row is not None:
        ctx.replay(row, Any)  # passed, resumed, or BudgetExceeded raised again
        return
    wait = _live_check(ctx, step_id, now_ms())
    if wait is not None:
        drive_sync(wait)


async def gate_async(ctx: WorkflowRun, step_id: int) -> None:
    row = ctx.begin_step(step_id, BUDGET_STEP)
    if row is not None:
        ctx.replay(row, Any)
        return
    started = now_ms()
    wait = await ctx.engine.run_io(lambda: _live_check(ctx, step_id, started))
    if wait is not None:
        await drive_async(wait)
