"""One run of a workflow in this process: step ids, replay, recording, finishing, ownership checks.

A `WorkflowRun` sees the engine only through `RunHost`, a small Protocol (stores, serializer,
waiters, IO, the runs active here), so the runtime never imports the `Engine` facade. The
`ActiveRuns` registry (the workflows running in this process) is owned by the engine and shared
by the services that start, resume, cancel and await runs.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

from ._inputs import workflow_return_hint
from ._keys import done_key, wake_key
from ._serialization import Serializer, decode_error, dumps_checked, encode_error
from ._status import WorkflowState, now_ms
from ._waits import Waiters
from .errors import (
    DatabaseUnavailable,
    DurableError,
    NondeterminismError,
    OwnershipLost,
    SerializationError,
    WorkflowCancelled,
)
from .storage import MessageStore, StepRow, StepStore, UsageStore, WorkflowRow, WorkflowStore, WriteWouldWait

__all__ = ["CRASH_HOOKS", "CRASH_POINTS", "ActiveRuns", "Outcome", "RunHost", "WorkflowRun"]

T = TypeVar("T")
log = logging.getLogger("durable_core")

# Test helper hook (see durable_core.testing): (workflow_id or None, step_id, exit_code).
CRASH_POINTS: list[tuple[str | None, int, int]] = []
# The crash-safety kit's hooks (durable_core.testing), empty unless a check runs: called as
# hook(phase, ctx, step_id, name) with phase "before" (a step is about to run or replay), "in-flight"
# (its body ran, its record is not written yet), "after" (its record is committed) or "finish"
# (the body returned, the workflow's outcome is not recorded yet).
CRASH_HOOKS: list[Callable[[str, WorkflowRun, int, str], None]] = []


class Outcome:
    """How a local execution ended: a value, an exception, or interrupted (no outcome recorded here)."""

    __slots__ = ("attempts", "error", "interrupted", "value")

    def __init__(
        self,
        value: Any = None,
        error: BaseException | None = None,
        interrupted: bool = False,
        attempts: int = 1,
    ) -> None:
        self.value = value
        self.error = error
        self.interrupted = interrupted
        self.attempts = attempts


class RunHost(Protocol):
    """What a workflow run (and the services around it) need from the engine that hosts it."""

    @property
    def executor_id(self) -> str: ...
    @property
    def stopping(self) -> bool: ...
    @property
    def serializer(self) -> Serializer: ...
    @property
    def workflows(self) -> WorkflowStore: ...
    @property
    def steps(self) -> StepStore: ...
    @property
    def messages(self) -> MessageStore: ...
    @property
    def usage_records(self) -> UsageStore: ...
    @property
    def waiters(self) -> Waiters: ...
    @property
    def active(self) -> ActiveRuns: ...
    @property
    def poll_interval(self) -> float: ...
    @property
    def cancel_poll_interval(self) -> float: ...

    def serializer_for(self, name: str, /) -> Serializer: ...
    def run_io(self, fn: Callable[[], T], /) -> Awaitable[T]: ...
    def run_write(self, fn: Callable[[], T], /) -> Awaitable[T]: ...
    def storage_interrupted(self, run: WorkflowRun, /) -> None: ...
    def cancel_workflow(self, workflow_id: str, /) -> None: ...
    def notify_remote(self, kind: str, workflow_id: str, /) -> None: ...
    def model_call_started(self, budget_owner: str | None, /) -> Callable[[], None]: ...
    def model_calls_in_flight(self, budget_owner: str, /) -> int: ...


class ActiveRuns:
    """The workflow runs executing in this process, by workflow id, with the future of each outcome."""

    def __init__(self, waiters: Waiters) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[WorkflowRun, Future[Outcome]]] = {}
        self._waiters = waiters

    def __len__(self) -> int:
        return len(self._runs)

    def __contains__(self, workflow_id: object) -> bool:
        with self._lock:
            return workflow_id in self._runs

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    def get(self, workflow_id: str) -> tuple[WorkflowRun, Future[Outcome]] | None:
        with self._lock:
            return self._runs.get(workflow_id)

    def register(self, run: WorkflowRun) -> Future[Outcome] | None:
        """Mark a workflow as running here; None if it already runs in this process.

        An execution here under an older ownership epoch lost the workflow (it was cancelled and
        resumed, requeued, or reclaimed) and only has not noticed yet: the newer one replaces it, and
        the older body stops at its next step boundary without writing anything.
        """
        future: Future[Outcome] = Future()
        with self._lock:
            entry = self._runs.get(run.workflow_id)
            if entry is not None:
                if entry[0].owner_epoch >= run.owner_epoch:
                    return None
                stale = entry[0]
                stale.taken_over = True
                stale.cancel_reason = "superseded by a newer execution of it in this process"
            self._runs[run.workflow_id] = (run, future)
        if entry is not None:
            self._waiters.notify(wake_key(run.workflow_id))  # a stale body blocked in a wait stops now
        return future

    def release(self, run: WorkflowRun) -> None:
        """The run is done here: drop it (unless a newer run replaced it) and wake its waiters."""
        with self._lock:
            entry = self._runs.get(run.workflow_id)
            if entry is not None and entry[0] is run:
                del self._runs[run.workflow_id]
        self._waiters.notify(done_key(run.workflow_id))

    def mark_cancelled(self, workflow_id: str) -> None:
        """The workflow was cancelled: its body here stops at its next step."""
        entry = self.get(workflow_id)
        if entry is not None:
            entry[0].cancel_reason = "cancelled"


class WorkflowRun:
    """State of one running workflow execution in this process."""

    __slots__ = (
        "adapter_state",
        "budget_owner",
        "cancel_reason",
        "created_at",
        "deadline_ms",
        "engine",
        "executor_id",
        "name",
        "next_step_id",
        "owner_epoch",
        "queue_name",
        "recorded",
        "recovery_attempts",
        "resume_wait",
        "taken_over",
        "trace_context",
        "workflow_id",
    )

    def __init__(
        self,
        engine: RunHost,
        workflow_id: str,
        name: str,
        recorded: dict[int, StepRow],
        deadline_ms: int | None,
        *,
        created_at: int | None = None,
        resume_wait: tuple[int, int | None] | None = None,
        trace_context: str | None = None,
        queue_name: str | None = None,
        recovery_attempts: int = 0,
        owner_epoch: int = 0,
        budget_owner: str | None = None,
    ) -> None:
        self.engine = engine
        # the workflow whose budget governs this one (None: no budget): model calls are checked
        self.budget_owner = budget_owner
        # the ownership generation this execution runs under: every ownership-proving write names it
        self.owner_epoch = owner_epoch
        self.trace_context = trace_context
        self.queue_name = queue_name
        self.recovery_attempts = recovery_attempts
        self.created_at = created_at if created_at is not None else now_ms()
        # (step id, deadline) of the wait this workflow was blocked in when it was interrupted
        self.resume_wait = resume_wait
        self.workflow_id = workflow_id
        self.name = name
        self.recorded = recorded
        self.deadline_ms = deadline_ms
        self.executor_id = engine.executor_id
        self.next_step_id = 1
        self.cancel_reason: str | None = None
        # per-execution state of integrations (`durable_core.execution_state()`), fresh on every execution
        self.adapter_state: dict[str, Any] = {}
        self.taken_over = False  # with cancel_reason: another execution owns the workflow now

    def take_step_id(self) -> int:
        step_id = self.next_step_id
        self.next_step_id += 1
        return step_id

    def check_alive(self) -> None:
        """Raise `WorkflowCancelled` if the workflow was cancelled, timed out or the engine is stopping."""
        if self.cancel_reason is not None:
            if self.taken_over:
                raise OwnershipLost(self.workflow_id, self.cancel_reason)
            raise WorkflowCancelled(self.workflow_id, self.cancel_reason)
        if self.engine.stopping:
            raise WorkflowCancelled(self.workflow_id, "interrupted: the engine is shutting down")
        if self.deadline_ms is not None and now_ms() >= self.deadline_ms:
            self.engine.cancel_workflow(self.workflow_id)  # past its deadline: cancel it and its children
            raise WorkflowCancelled(self.workflow_id, "timed out")

    def begin_step(self, step_id: int, name: str) -> StepRow | None:
        """Check liveness and determinism; return the recorded outcome of this step, if any."""
        self.check_alive()
        if CRASH_POINTS:
            _maybe_crash(self.workflow_id, step_id)
        if CRASH_HOOKS:
            run_crash_hooks("before", self, step_id, name)
        if not self.recorded:
            return None
        row = self.recorded.get(step_id)
        if row is not None and row.name != name:
            raise NondeterminismError(self.workflow_id, step_id, row.name, name)
        return row

    def replay(self, row: StepRow, hint: Any) -> Any:
        """The recorded outcome: its value, or its exception raised."""
        if row.error is not None:
            raise decode_error(row.error)
        if row.output is None:
            return None
        return self.engine.serializer_for(row.serialization).loads(row.output, hint)

    def record(
        self,
        step_id: int,
        name: str,
        *,
        value: Any = None,
        error: BaseException | None = None,
        started_at: int,
        child_workflow_id: str | None = None,
        hint: Any = Any,
        usage: str | None = None,
    ) -> None:
        """Commit a step's outcome (one statement that also proves ownership).

        Raises `WorkflowCancelled` (cancelled) or `OwnershipLost` (taken over) if this execution no
        longer owns the workflow: the body stops here and writes nothing more.
        """
        if CRASH_HOOKS:
            run_crash_hooks("in-flight", self, step_id, name)
        serializer = self.engine.serializer
        output: str | None = None
        error_text: str | None = None
        if error is not None:
            error_text = encode_error(error)
        else:
            try:
                output = dumps_checked(serializer, value, hint)  # a replay decodes it back equal
            except SerializationError as exc:
                raise SerializationError(
                    f"Step {name!r} of workflow {self.workflow_id!r} returned a value of type "
                    f"{type(value).__qualname__} that the {serializer.name} serializer cannot encode ({exc.message}). "
                    "Return JSON-compatible values (pydantic models, dataclasses, dicts, lists, ...) or opt in "
                    "to Engine(serializer=PickleSerializer()).",
                    workflow_id=self.workflow_id,
                    step_id=step_id,
                ) from exc
        try:
            inserted = self.engine.steps.record(
                workflow_id=self.workflow_id,
                executor_id=self.executor_id,
                owner_epoch=self.owner_epoch,
                step_id=step_id,
                name=name,
                output=output,
                error=error_text,
                serialization=serializer.name,
                child_workflow_id=child_workflow_id,
                started_at=started_at,
                completed_at=now_ms(),
                usage=usage,
            )
        except DatabaseUnavailable as exc:
            # storage is gone for longer than the engine retries: stop the body (user code cannot
            # swallow this) without an outcome; the engine resumes it once the database is back
            self.engine.storage_interrupted(self)
            raise WorkflowCancelled(self.workflow_id, self.cancel_reason or "interrupted") from exc
        if not inserted:
            self.resolve_unrecorded(step_id)
        if CRASH_HOOKS:
            run_crash_hooks("after", self, step_id, name)

    # -- ownership -----------------------------------------------------------------------

    def owns(self, row: WorkflowRow | None) -> bool:
        """Does the workflow row still name this execution as its owner?"""
        return (
            row is not None
            and row.status == WorkflowState.PENDING
            and row.executor_id == self.executor_id
            and row.owner_epoch == self.owner_epoch
        )

    def check_still_owner(self, step_id: int) -> None:
        """Stop the body (as `resolve_unrecorded`) if the workflow is no longer this execution's."""
        if not self.owns(self.engine.workflows.get(self.workflow_id)):
            self.resolve_unrecorded(step_id)

    def resolve_unrecorded(self, step_id: int) -> None:
        """An ownership-proving write affected no row: find out why, and stop the body unless it is ours.

        While the workflow row still names this execution (executor and ownership epoch), nobody
        else can have written its steps, so the write that matched nothing was a retry of our own
        committed write whose acknowledgement was lost: fine. Otherwise the workflow was cancelled
        or another execution owns it now; a step row that exists proves nothing (the new owner may
        have written it), so this body stops here, writes nothing more and runs no further step.
        """
        engine = self.engine
        row = engine.workflows.get(self.workflow_id)
        if self.owns(row):
            if engine.steps.get(self.workflow_id, step_id) is not None:
                return
            raise DurableError(
                f"Step {step_id} of workflow {self.workflow_id!r} could not be recorded although this "
                "process owns the workflow; its row may have been changed by hand.",
                workflow_id=self.workflow_id,
                step_id=step_id,
            )
        if row is None or row.status == WorkflowState.CANCELLED:
            self.cancel_reason = "cancelled"
        elif row.status == WorkflowState.PENDING:
            self.taken_over = True
            owner = row.executor_id if row.executor_id != self.executor_id else "a newer run of this executor"
            self.cancel_reason = f"taken over by {owner!r} at step {step_id}"
        else:
            self.taken_over = True  # finished, requeued or parked by someone else
            self.cancel_reason = f"no longer owned by this process (status {row.status})"
        if self.taken_over:
            log.warning(
                "Workflow %s: this process (executor %s) lost ownership at step %d (%s); its body stops here.",
                self.workflow_id,
                self.executor_id,
                step_id,
                self.cancel_reason,
            )
            raise OwnershipLost(self.workflow_id, self.cancel_reason)
        raise WorkflowCancelled(self.workflow_id, self.cancel_reason)

    # -- finishing -----------------------------------------------------------------------

    def finish(self, outcome: Outcome) -> None:
        """Record the workflow's outcome (no-op if it was interrupted or is no longer ours), then
        release it from the runs active here."""
        release = True
        try:
            if outcome.interrupted:
                return
            if outcome.error is not None and self.deadline_ms is not None and now_ms() >= self.deadline_ms:
                # past its deadline a workflow ends CANCELLED, whatever its body raised (typically
                # the cancellation of a child that inherited the deadline)
                self.engine.cancel_workflow(self.workflow_id)
                outcome.interrupted = True
                return
            self._record_outcome(outcome)
        except WriteWouldWait:
            release = False  # nothing written: `run_write` runs this again on an IO thread
            raise
        finally:
            if release:
                self.engine.active.release(self)

    def _record_outcome(self, outcome: Outcome) -> None:
        engine = self.engine
        output = error = None
        status = WorkflowState.SUCCESS
        serialization = engine.serializer.name
        if outcome.error is not None:
            status, error = WorkflowState.ERROR, encode_error(outcome.error)
        else:
            try:
                output = dumps_checked(engine.serializer, outcome.value, workflow_return_hint(self.name))
            except SerializationError as exc:
                failure = SerializationError(
                    f"Workflow {self.name!r} ({self.workflow_id!r}) returned a value of type "
                    f"{type(outcome.value).__qualname__} that cannot be serialized: {exc.message}",
                    workflow_id=self.workflow_id,
                )
                outcome.error, outcome.value = failure, None
                status, error = WorkflowState.ERROR, encode_error(failure)
        finished = engine.workflows.finish(
            self.workflow_id,
            self.executor_id,
            owner_epoch=self.owner_epoch,
            status=status,
            output=output,
            error=error,
            serialization=serialization,
            now=now_ms(),
        )
        if not finished:
            # cancelled or taken over meanwhile: the outcome is the owner's (or the cancellation),
            # which the caller reads from the database
            outcome.interrupted = True


def _maybe_crash(workflow_id: str, step_id: int) -> None:
    for target, target_step, exit_code in CRASH_POINTS:
        if target_step == step_id and (target is None or target == workflow_id):
            os._exit(exit_code)


def run_crash_hooks(phase: str, run: WorkflowRun, step_id: int, name: str) -> None:
    for hook in CRASH_HOOKS:
        hook(phase, run, step_id, name)
