"""Running workflows and steps: step ids, replay from the record, recording outcomes.

The logic lives in plain functions shared by both flavours; the sync and async entry points
differ only where they wait (a blocking call versus an `await` on the engine's IO threads).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from . import _tracing
from ._context import _current, _in_step, _interceptor, _options
from ._registry import StepDef, WorkflowDef
from ._serialization import decode_error, dumps_checked, encode_error
from ._usage import Usage, _step_usage, encode_usage
from .errors import (
    DatabaseUnavailable,
    NondeterminismError,
    OwnershipLost,
    SerializationError,
    StepRetriesExceeded,
    WorkflowCancelled,
)
from .storage import StepRow

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["CRASH_HOOKS", "CRASH_POINTS", "Outcome", "WorkflowContext", "now_ms"]

# Test helper hook (see durable_core.testing): (workflow_id or None, step_id, exit_code).
CRASH_POINTS: list[tuple[str | None, int, int]] = []
# The crash-safety kit's hooks (durable_core.testing), empty unless a check runs: called as
# hook(phase, ctx, step_id, name) with phase "before" (a step is about to run or replay), "in-flight"
# (its body ran, its record is not written yet), "after" (its record is committed) or "finish"
# (the body returned, the workflow's outcome is not recorded yet).
CRASH_HOOKS: list[Callable[[str, WorkflowContext, int, str], None]] = []


def now_ms() -> int:
    return int(time.time() * 1000)


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


class WorkflowContext:
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
        engine: Engine,
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
            self.engine.expire_workflow(self.workflow_id)
            raise WorkflowCancelled(self.workflow_id, "timed out")

    def begin_step(self, step_id: int, name: str) -> StepRow | None:
        """Check liveness and determinism; return the recorded outcome of this step, if any."""
        self.check_alive()
        if CRASH_POINTS:
            _maybe_crash(self.workflow_id, step_id)
        if CRASH_HOOKS:
            _run_crash_hooks("before", self, step_id, name)
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
            _run_crash_hooks("in-flight", self, step_id, name)
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
            self.engine.resolve_unrecorded_step(self, step_id)
        if CRASH_HOOKS:
            _run_crash_hooks("after", self, step_id, name)


def _maybe_crash(workflow_id: str, step_id: int) -> None:
    for target, target_step, exit_code in CRASH_POINTS:
        if target_step == step_id and (target is None or target == workflow_id):
            os._exit(exit_code)


def _run_crash_hooks(phase: str, ctx: WorkflowContext, step_id: int, name: str) -> None:
    for hook in CRASH_HOOKS:
        hook(phase, ctx, step_id, name)


# -- steps ---------------------------------------------------------------------------------


def _attempts_sync(defn: StepDef, ctx: WorkflowContext, args: Any, kwargs: Any) -> Outcome:
    errors: list[BaseException] = []
    delay = defn.interval_seconds
    for attempt in range(1, defn.max_attempts + 1):
        try:
            return Outcome(value=defn.fn(*args, **kwargs), attempts=attempt)
        except Exception as exc:
            if not isinstance(exc, defn.retry_on):
                return Outcome(error=exc, attempts=attempt)
            errors.append(exc)
            if attempt == defn.max_attempts:
                break
            ctx.check_alive()
            time.sleep(delay)
            delay *= defn.backoff_rate
    return Outcome(error=_final_error(defn, ctx, errors), attempts=len(errors))


async def _attempts_async(defn: StepDef, ctx: WorkflowContext, args: Any, kwargs: Any) -> Outcome:
    errors: list[BaseException] = []
    delay = defn.interval_seconds
    for attempt in range(1, defn.max_attempts + 1):
        try:
            return Outcome(value=await defn.fn(*args, **kwargs), attempts=attempt)
        except Exception as exc:
            if not isinstance(exc, defn.retry_on):
                return Outcome(error=exc, attempts=attempt)
            errors.append(exc)
            if attempt == defn.max_attempts:
                break
            ctx.check_alive()
            await asyncio.sleep(delay)
            delay *= defn.backoff_rate
    return Outcome(error=_final_error(defn, ctx, errors), attempts=len(errors))


def _final_error(defn: StepDef, ctx: WorkflowContext, errors: list[BaseException]) -> BaseException:
    if defn.max_attempts == 1:
        return errors[0]
    return StepRetriesExceeded(
        f"Step {defn.name!r} of workflow {ctx.workflow_id!r} failed {len(errors)} times; last error: "
        f"{type(errors[-1]).__name__}: {errors[-1]}",
        errors,
        workflow_id=ctx.workflow_id,
    )


class _ModelCall:
    """What a model-call step adds to a step: its usage collected while its body runs, and its
    count against the budget's calls in flight until it is recorded."""

    __slots__ = ("collected", "release", "token")

    def __init__(self, ctx: WorkflowContext) -> None:
        self.collected: list[Usage] = []
        self.token = _step_usage.set(self.collected)
        self.release = ctx.engine.model_call_started(ctx.budget_owner)

    def body_done(self) -> str | None:
        _step_usage.reset(self.token)
        return encode_usage(self.collected)


def run_step_sync(defn: StepDef, args: Any, kwargs: Any) -> Any:
    interceptor = _interceptor.get()
    if interceptor is not None:
        return interceptor(defn, args, kwargs)
    ctx = _current.get()
    if ctx is None or _in_step.get():
        return defn.fn(*args, **kwargs)
    if defn.model_call and ctx.budget_owner is not None:
        from ._budget import gate_sync

        gate_sync(ctx)  # under a budget a model call is preceded by its recorded check
    step_id = ctx.take_step_id()
    row = ctx.begin_step(step_id, defn.name)
    if row is not None:
        _tracing.replayed_step(step_id, defn.name)
        return ctx.replay(row, defn.return_hint)
    started = now_ms()
    token = _in_step.set(True)
    model_call = _ModelCall(ctx) if defn.model_call else None
    usage: str | None = None
    try:
        with _tracing.step_span(ctx, step_id, defn.name) as span:
            outcome = _attempts_sync(defn, ctx, args, kwargs)
            _tracing.end_step_span(span, outcome.attempts, outcome.error)
    finally:
        if model_call is not None:
            usage = model_call.body_done()
        _in_step.reset(token)
    try:
        ctx.record(
            step_id,
            defn.name,
            value=outcome.value,
            error=outcome.error,
            started_at=started,
            hint=defn.return_hint,
            usage=usage,
        )
    finally:
        if model_call is not None:
            model_call.release()
    if outcome.error is not None:
        raise outcome.error
    return outcome.value


def start_step_async(defn: StepDef, args: Any, kwargs: Any) -> Any:
    """Take the step id now (at call time) and return the awaitable that runs the step."""
    interceptor = _interceptor.get()
    if interceptor is not None:
        return interceptor(defn, args, kwargs)
    ctx = _current.get()
    if ctx is None or _in_step.get():
        return defn.fn(*args, **kwargs)
    gate_id = ctx.take_step_id() if defn.model_call and ctx.budget_owner is not None else None
    step_id = ctx.take_step_id()
    return _run_step_async(defn, ctx, step_id, args, kwargs, gate_id)


async def _run_step_async(
    defn: StepDef, ctx: WorkflowContext, step_id: int, args: Any, kwargs: Any, gate_id: int | None = None
) -> Any:
    if gate_id is not None:
        from ._budget import gate_async

        await gate_async(ctx, gate_id)
    row = ctx.begin_step(step_id, defn.name)
    if row is not None:
        _tracing.replayed_step(step_id, defn.name)
        return ctx.replay(row, defn.return_hint)
    started = now_ms()
    token = _in_step.set(True)
    model_call = _ModelCall(ctx) if defn.model_call else None
    usage: str | None = None
    try:
        with _tracing.step_span(ctx, step_id, defn.name) as span:
            outcome = await _attempts_async(defn, ctx, args, kwargs)
            _tracing.end_step_span(span, outcome.attempts, outcome.error)
    finally:
        if model_call is not None:
            usage = model_call.body_done()
        _in_step.reset(token)
    try:
        await ctx.engine.run_write(
            lambda: ctx.record(
                step_id,
                defn.name,
                value=outcome.value,
                error=outcome.error,
                started_at=started,
                hint=defn.return_hint,
                usage=usage,
            )
        )
    finally:
        if model_call is not None:
            model_call.release()
    if outcome.error is not None:
        raise outcome.error
    return outcome.value


def run_engine_step_sync(
    name: str,
    operation: Callable[[], Any],
    hint: Any = Any,
    *,
    marked_wait: Callable[[int], Any] | None = None,
) -> Any:
    """Run an engine operation (send, get_result, ...) as a recorded step of the current workflow.

    `marked_wait(step_id)`, when given, runs instead of `operation` (a wait that marks itself).
    """
    ctx = _current.get()
    assert ctx is not None
    step_id = ctx.take_step_id()
    row = ctx.begin_step(step_id, name)
    if row is not None:
        return ctx.replay(row, hint)
    started = now_ms()
    try:
        value = operation() if marked_wait is None else marked_wait(step_id)
    except Exception as exc:
        ctx.record(step_id, name, error=exc, started_at=started)
        raise
    ctx.record(step_id, name, value=value, started_at=started, hint=hint)
    return value


def _workflow_span(ctx: WorkflowContext) -> Any:
    return _tracing.workflow_span(
        ctx, ctx.trace_context, queue_name=ctx.queue_name, recovery_attempts=ctx.recovery_attempts
    )


def _end_workflow_span(span: Any, outcome: Outcome) -> None:
    if span is not None:
        status = "CANCELLED" if outcome.interrupted else ("ERROR" if outcome.error is not None else "SUCCESS")
        _tracing.end_workflow_span(span, status, outcome.error)


# -- workflows -----------------------------------------------------------------------------


def _enter(ctx: WorkflowContext) -> tuple[Any, Any, Any]:
    return _current.set(ctx), _in_step.set(False), _options.set(None)


def _exit(tokens: tuple[Any, Any, Any]) -> None:
    _current.reset(tokens[0])
    _in_step.reset(tokens[1])
    _options.reset(tokens[2])


def _body_outcome(ctx: WorkflowContext, error: BaseException) -> Outcome:
    """How a body that raised ended. The engine's own storage failing under it (an outage longer
    than the engine's retries, a full disk) is never the workflow's outcome: the run is interrupted
    and this process resumes it when storage is back."""
    if isinstance(error, DatabaseUnavailable):
        ctx.engine.storage_interrupted(ctx)
        return Outcome(interrupted=True)
    return Outcome(error=error)


def execute_workflow_sync(
    ctx: WorkflowContext, defn: WorkflowDef, args: Any, kwargs: Any, future: Future[Outcome]
) -> None:
    """Run a workflow body in this thread and record its outcome; the outcome also goes to `future`."""
    tokens = _enter(ctx)
    try:
        with _workflow_span(ctx) as span:
            try:
                value = defn.fn(*args, **kwargs)
            except (Exception, NondeterminismError) as exc:
                outcome = _body_outcome(ctx, exc)
            except WorkflowCancelled:
                outcome = Outcome(interrupted=True)
            except BaseException:
                future.set_result(Outcome(interrupted=True))
                raise
            else:
                outcome = Outcome(value=value)
            _end_workflow_span(span, outcome)
    finally:
        _exit(tokens)
    try:
        if CRASH_HOOKS and not outcome.interrupted:
            _run_crash_hooks("finish", ctx, ctx.next_step_id, ctx.name)
        ctx.engine.finish_workflow(ctx, outcome)
    except DatabaseUnavailable:
        ctx.engine.storage_interrupted(ctx)  # the outcome is not recorded: run it again when storage is back
        outcome = Outcome(interrupted=True)
    except BaseException:
        future.set_result(Outcome(interrupted=True))
        raise
    future.set_result(outcome)


def abandon_execution(ctx: WorkflowContext, future: Future[Outcome]) -> None:
    """The task running this body was cancelled (the caller's `wait_for` timed out, its request was
    cancelled, its event loop is closing): stop here without waiting for anything.

    Nothing is recorded as finished: the workflow stays PENDING, owned by this executor, and is
    resumed like any interrupted run (a relaunch, `engine.recover()`, or another executor once
    this one's lease lapses). It leaves `engine.active`, so a recovery in this process may run it
    again, and any database call still in flight for it stops at its next step boundary.
    """
    if ctx.cancel_reason is None:
        ctx.cancel_reason = "interrupted: the task running it was cancelled"
    ctx.engine.finish_workflow(ctx, Outcome(interrupted=True))  # records nothing; releases it here
    if not future.done():
        future.set_result(Outcome(interrupted=True))


async def execute_workflow_async(
    ctx: WorkflowContext, defn: WorkflowDef, args: Any, kwargs: Any, future: Future[Outcome]
) -> None:
    """Run an async workflow body on the current event loop and record its outcome.

    Cancelling the task that awaits this (e.g. ``asyncio.wait_for`` around a workflow call) ends it
    promptly: `asyncio.CancelledError` propagates after local cleanup, the workflow stays PENDING in
    the database and is recovered like any interrupted run (see `abandon_execution`).
    """
    tokens = _enter(ctx)
    try:
        with _workflow_span(ctx) as span:
            try:
                value = await defn.fn(*args, **kwargs)
            except (Exception, NondeterminismError) as exc:
                outcome = _body_outcome(ctx, exc)
            except WorkflowCancelled:
                outcome = Outcome(interrupted=True)
            except asyncio.CancelledError:
                abandon_execution(ctx, future)
                _end_workflow_span(span, Outcome(interrupted=True))
                raise
            except BaseException:
                future.set_result(Outcome(interrupted=True))
                raise
            else:
                outcome = Outcome(value=value)
            _end_workflow_span(span, outcome)
    finally:
        _exit(tokens)
    try:
        if CRASH_HOOKS and not outcome.interrupted:
            _run_crash_hooks("finish", ctx, ctx.next_step_id, ctx.name)
        await ctx.engine.run_write(lambda: ctx.engine.finish_workflow(ctx, outcome))
    except asyncio.CancelledError:
        abandon_execution(ctx, future)  # cancelled while recording the outcome: it may have landed
        raise
    except DatabaseUnavailable:
        ctx.engine.storage_interrupted(ctx)  # the outcome is not recorded: run it again when storage is back
        outcome = Outcome(interrupted=True)
    except BaseException:
        future.set_result(Outcome(interrupted=True))
        raise
    future.set_result(outcome)
