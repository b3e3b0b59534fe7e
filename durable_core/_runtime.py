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
from .errors import NondeterminismError, SerializationError, StepRetriesExceeded, WorkflowCancelled
from .storage import StepRow

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["CRASH_POINTS", "Outcome", "WorkflowContext", "now_ms"]

# Test helper hook (see durable_core.testing): (workflow_id or None, step_id, exit_code).
CRASH_POINTS: list[tuple[str | None, int, int]] = []


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
        "cancel_reason",
        "created_at",
        "deadline_ms",
        "engine",
        "executor_id",
        "name",
        "next_step_id",
        "queue_name",
        "recorded",
        "recovery_attempts",
        "resume_wait",
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
    ) -> None:
        self.engine = engine
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

    def take_step_id(self) -> int:
        step_id = self.next_step_id
        self.next_step_id += 1
        return step_id

    def check_alive(self) -> None:
        """Raise `WorkflowCancelled` if the workflow was cancelled, timed out or the engine is stopping."""
        if self.cancel_reason is not None:
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
    ) -> None:
        """Commit a step's outcome (one statement). Raise `WorkflowCancelled` if we no longer own the workflow."""
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
        inserted = self.engine.steps.record(
            workflow_id=self.workflow_id,
            executor_id=self.executor_id,
            step_id=step_id,
            name=name,
            output=output,
            error=error_text,
            serialization=serializer.name,
            child_workflow_id=child_workflow_id,
            started_at=started_at,
            completed_at=now_ms(),
        )
        if not inserted:
            self.engine.resolve_unrecorded_step(self, step_id)


def _maybe_crash(workflow_id: str, step_id: int) -> None:
    for target, target_step, exit_code in CRASH_POINTS:
        if target_step == step_id and (target is None or target == workflow_id):
            os._exit(exit_code)


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


def run_step_sync(defn: StepDef, args: Any, kwargs: Any) -> Any:
    interceptor = _interceptor.get()
    if interceptor is not None:
        return interceptor(defn, args, kwargs)
    ctx = _current.get()
    if ctx is None or _in_step.get():
        return defn.fn(*args, **kwargs)
    step_id = ctx.take_step_id()
    row = ctx.begin_step(step_id, defn.name)
    if row is not None:
        _tracing.replayed_step(step_id, defn.name)
        return ctx.replay(row, defn.return_hint)
    started = now_ms()
    token = _in_step.set(True)
    try:
        with _tracing.step_span(ctx, step_id, defn.name) as span:
            outcome = _attempts_sync(defn, ctx, args, kwargs)
            _tracing.end_step_span(span, outcome.attempts, outcome.error)
    finally:
        _in_step.reset(token)
    ctx.record(
        step_id,
        defn.name,
        value=outcome.value,
        error=outcome.error,
        started_at=started,
        hint=defn.return_hint,
    )
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
    step_id = ctx.take_step_id()
    return _run_step_async(defn, ctx, step_id, args, kwargs)


async def _run_step_async(defn: StepDef, ctx: WorkflowContext, step_id: int, args: Any, kwargs: Any) -> Any:
    row = ctx.begin_step(step_id, defn.name)
    if row is not None:
        _tracing.replayed_step(step_id, defn.name)
        return ctx.replay(row, defn.return_hint)
    started = now_ms()
    token = _in_step.set(True)
    try:
        with _tracing.step_span(ctx, step_id, defn.name) as span:
            outcome = await _attempts_async(defn, ctx, args, kwargs)
            _tracing.end_step_span(span, outcome.attempts, outcome.error)
    finally:
        _in_step.reset(token)
    await ctx.engine.run_write(
        lambda: ctx.record(
            step_id,
            defn.name,
            value=outcome.value,
            error=outcome.error,
            started_at=started,
            hint=defn.return_hint,
        )
    )
    if outcome.error is not None:
        raise outcome.error
    return outcome.value


def run_engine_step_sync(name: str, operation: Callable[[], Any], hint: Any = Any) -> Any:
    """Run an engine operation (send, get_result, ...) as a recorded step of the current workflow."""
    ctx = _current.get()
    assert ctx is not None
    step_id = ctx.take_step_id()
    row = ctx.begin_step(step_id, name)
    if row is not None:
        return ctx.replay(row, hint)
    started = now_ms()
    try:
        value = operation()
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
                outcome = Outcome(error=exc)
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
        ctx.engine.finish_workflow(ctx, outcome)
    except BaseException:
        future.set_result(Outcome(interrupted=True))
        raise
    future.set_result(outcome)


async def execute_workflow_async(
    ctx: WorkflowContext, defn: WorkflowDef, args: Any, kwargs: Any, future: Future[Outcome]
) -> None:
    tokens = _enter(ctx)
    try:
        with _workflow_span(ctx) as span:
            try:
                value = await defn.fn(*args, **kwargs)
            except (Exception, NondeterminismError) as exc:
                outcome = Outcome(error=exc)
            except (WorkflowCancelled, asyncio.CancelledError):
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
        await ctx.engine.run_write(lambda: ctx.engine.finish_workflow(ctx, outcome))
    except BaseException:
        future.set_result(Outcome(interrupted=True))
        raise
    future.set_result(outcome)
