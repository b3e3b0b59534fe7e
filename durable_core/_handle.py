"""`WorkflowHandle`: the result and status of a workflow started here or elsewhere.

A workflow running in this process is awaited directly; one running elsewhere is awaited
through the database, woken by notifications where available and by a short poll otherwise.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from ._context import current_context
from ._host import EngineHost
from ._keys import done_key
from ._records import WorkflowStatus, wait_label
from ._registry import WorkflowDef, get_workflow
from ._run import Outcome, WorkflowRun
from ._runtime import run_engine_step_async, run_engine_step_sync
from ._serialization import decode_error
from ._status import TERMINAL_STATES, WorkflowState, now_ms
from ._waiting import drive_async, drive_sync
from .errors import (
    AwaitedWorkflowCancelled,
    DatabaseUnavailable,
    RecoveryAttemptsExceeded,
    WorkflowNotFoundError,
)
from .storage import WorkflowRow

__all__ = ["WorkflowHandle"]

R = TypeVar("R")
GET_RESULT = "durable.get_result"
_POLL_MIN = 0.005
_POLL_MAX = 0.25


class WorkflowHandle(Generic[R]):
    """A started workflow. `get_result` waits for its outcome; inside a workflow the wait is a step."""

    def __init__(
        self,
        engine: EngineHost,
        workflow_id: str,
        defn: WorkflowDef | None = None,
        future: Future[Outcome] | None = None,
    ) -> None:
        self.engine = engine
        self.workflow_id = workflow_id
        self._defn = defn
        self._future = future

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r})"

    @property
    def _hint(self) -> Any:
        defn = self._defn
        if defn is None:
            row = self.engine.workflows.get(self.workflow_id)
            defn = get_workflow(row.name) if row is not None else None
        return defn.return_hint if defn is not None else Any

    # -- results -------------------------------------------------------------------------

    def get_result(self, timeout_seconds: float | None = None) -> R:
        """Wait for the workflow's result (or raise its error).

        Raises:
            AwaitedWorkflowCancelled: it was cancelled or timed out.
            RecoveryAttemptsExceeded: it was parked after too many crashes.
            TimeoutError: `timeout_seconds` passed first.
        """
        ctx = current_context()
        if ctx is not None:
            return run_engine_step_sync(
                GET_RESULT,
                lambda: self.wait_outcome(timeout_seconds),
                self._hint,
                marked_wait=lambda step_id: self._wait_marked(ctx, step_id, timeout_seconds),
            )
        return self.wait_outcome(timeout_seconds)

    # A workflow waiting for another's result is listed as waiting (kind "workflow", detail: the id
    # it waits for) while it really waits; an outcome that is already there marks nothing.

    def _mark_wait(self, ctx: WorkflowRun, step_id: int, timeout_seconds: float | None) -> bool:
        local = self._local_future()
        if local is not None and local.done():
            return False
        if local is None:
            row = self.engine.workflows.get(self.workflow_id)
            if row is None or row.status in TERMINAL_STATES:
                return False
        deadline = None if timeout_seconds is None else now_ms() + int(timeout_seconds * 1000)
        if not self.engine.messages.begin_wait(
            workflow_id=ctx.workflow_id,
            executor_id=ctx.executor_id,
            owner_epoch=ctx.owner_epoch,
            topic=wait_label("workflow", self.workflow_id),
            deadline=deadline,
            step_id=step_id,
        ):
            ctx.resolve_unrecorded(step_id)  # no longer ours: stops the body
        return True

    def _wait_marked(self, ctx: WorkflowRun, step_id: int, timeout_seconds: float | None) -> Any:
        marked = self._mark_wait(ctx, step_id, timeout_seconds)
        try:
            return self.wait_outcome(timeout_seconds)
        finally:
            if marked:
                self.engine.messages.clear_wait(ctx.workflow_id, step_id)

    async def _wait_marked_async(self, ctx: WorkflowRun, step_id: int, timeout_seconds: float | None) -> Any:
        marked = await self.engine.run_io(lambda: self._mark_wait(ctx, step_id, timeout_seconds))
        try:
            return await self.wait_outcome_async(timeout_seconds)
        finally:
            if marked:
                await self.engine.run_io(lambda: self.engine.messages.clear_wait(ctx.workflow_id, step_id))

    async def get_result_async(self, timeout_seconds: float | None = None) -> R:
        ctx = current_context()
        if ctx is not None:
            return await self.get_result_as_step_async(ctx, ctx.take_step_id(), timeout_seconds)
        return await self.wait_outcome_async(timeout_seconds)

    async def get_result_as_step_async(
        self, ctx: WorkflowRun, step_id: int, timeout_seconds: float | None = None
    ) -> Any:
        hint = self._defn.return_hint if self._defn else Any  # the hint its replay decodes by
        return await run_engine_step_async(
            ctx, step_id, GET_RESULT, lambda: self._wait_marked_async(ctx, step_id, timeout_seconds), hint
        )

    # Waiting for the outcome: the run's own future when it runs here, else the database (woken on
    # `done:<id>`, polled with a growing delay): one `_OutcomeWait`, driven sync or async.

    def wait_outcome(self, timeout_seconds: float | None) -> Any:
        wait = _OutcomeWait(self, timeout_seconds)
        local = wait.local
        if local is not None:
            try:
                outcome = local.result(timeout=wait.remaining())
            except TimeoutError:
                raise wait.timed_out() from None
            if not outcome.interrupted:
                return _value_of(outcome)
        return drive_sync(wait)

    async def wait_outcome_async(self, timeout_seconds: float | None) -> Any:
        wait = _OutcomeWait(self, timeout_seconds)
        local = wait.local
        if local is not None:
            try:
                if local.done():  # the usual case after a direct call: no hop through the loop
                    outcome = local.result()
                else:
                    # shielded: a timeout or a cancelled caller must not cancel the run's own future
                    outcome = await asyncio.wait_for(
                        asyncio.shield(asyncio.wrap_future(local)), wait.remaining()
                    )
            except TimeoutError:
                raise wait.timed_out() from None
            if not outcome.interrupted:
                return _value_of(outcome)
        return await drive_async(wait)

    def _local_future(self) -> Future[Outcome] | None:
        if self._future is not None:
            return self._future
        entry = self.engine.active.get(self.workflow_id)
        return entry[1] if entry is not None else None

    def _decode(self, row: WorkflowRow) -> Any:
        if row.status == WorkflowState.SUCCESS:
            if row.output is None:
                return None
            return self.engine.serializer_for(row.serialization).loads(row.output, self._hint)
        if row.status == WorkflowState.ERROR:
            raise decode_error(row.error or '{"type": "Exception", "message": "unknown error"}')
        if row.status == WorkflowState.CANCELLED:
            raise AwaitedWorkflowCancelled(self.workflow_id)
        raise RecoveryAttemptsExceeded(self.workflow_id, row.recovery_attempts)

    # -- status --------------------------------------------------------------------------

    def get_status(self) -> WorkflowStatus:
        return self.engine.get_workflow_status(self.workflow_id)

    async def get_status_async(self) -> WorkflowStatus:
        return await self.engine.run_io(self.get_status)


_OUTAGE: Any = object()


def _value_of(outcome: Outcome) -> Any:
    if outcome.error is not None:
        raise outcome.error
    return outcome.value


class _OutcomeWait:
    """Waiting for one workflow's outcome: its local future, else its row (one `poll` per round)."""

    def __init__(self, handle: WorkflowHandle[Any], timeout_seconds: float | None) -> None:
        self.handle = handle
        self.engine: EngineHost = handle.engine
        self.timeout_seconds = timeout_seconds
        self.deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        self.local = handle._local_future()
        self.keys = [done_key(handle.workflow_id)]
        self.delay = _POLL_MIN
        self.outage = False

    def remaining(self) -> float | None:
        return _remaining(self.deadline)

    def timed_out(self) -> TimeoutError:
        return TimeoutError(f"Workflow {self.handle.workflow_id!r} did not finish in {self.timeout_seconds}s")

    def poll(self) -> tuple[bool, Any]:
        """The recorded outcome once the workflow is finished (decoded, or its error raised)."""
        row = _read_through_outage(self.engine, self.handle.workflow_id)
        self.outage = row is _OUTAGE
        if self.outage:
            return False, None
        if row is None:
            raise WorkflowNotFoundError(self.handle.workflow_id)
        if row.status in TERMINAL_STATES:
            return True, self.handle._decode(row)
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise self.timed_out()
        return False, None

    def next_timeout(self) -> float | None:
        if self.outage:
            return _POLL_MAX  # the database is unreachable: the wait outlives the outage
        remaining = self.remaining()
        delay = self.delay
        self.delay = min(delay * 2, _POLL_MAX)
        return delay if remaining is None else min(delay, remaining)


def _read_through_outage(engine: EngineHost, workflow_id: str) -> Any:
    """The workflow's row, or `_OUTAGE` while the database is unreachable: waiting for an outcome
    outlives an outage (the run itself resumes once storage is back), so the wait goes on."""
    try:
        return engine.workflows.get(workflow_id)
    except DatabaseUnavailable:
        return _OUTAGE


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())
