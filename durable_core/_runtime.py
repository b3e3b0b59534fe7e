"""Running workflows and steps: step ids, replay from the record, recording outcomes.

The logic lives in plain functions shared by both flavours; the sync and async entry points
differ only where they wait (a blocking call versus an `await` on the engine's IO threads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from ._budget import gate_async, gate_sync
from ._context import _current, _in_step, _interceptor, _options
from ._registry import StepDef, WorkflowDef
from ._retry import attempt_async, attempt_sync
from ._run import CRASH_HOOKS, CRASH_POINTS, Outcome, WorkflowRun, run_crash_hooks
from ._status import WorkflowState, now_ms
from ._tracing import end_step_span, end_workflow_span, replayed_step, step_span, workflow_span
from ._usage import Usage, _step_usage, encode_usage
from .errors import DatabaseUnavailable, NondeterminismError, WorkflowCancelled

__all__ = ["CRASH_HOOKS", "CRASH_POINTS", "Outcome", "WorkflowRun", "now_ms"]


# -- steps ---------------------------------------------------------------------------------


def _attempts_sync(defn: StepDef, ctx: WorkflowRun, args: Any, kwargs: Any) -> Outcome:
    if defn.max_attempts == 1:  # one try (the default): what the retry policy ends with, directly
        try:
            return Outcome(value=defn.fn(*args, **kwargs))
        except Exception as exc:
            return Outcome(error=exc)
    attempts = defn.retry.start(defn.name, ctx.workflow_id)
    value, error = attempt_sync(attempts, lambda: defn.fn(*args, **kwargs), ctx.check_alive)
    return Outcome(value=value, error=error, attempts=attempts.attempt)


async def _attempts_async(defn: StepDef, ctx: WorkflowRun, args: Any, kwargs: Any) -> Outcome:
    if defn.max_attempts == 1:  # one try (the default): what the retry policy ends with, directly
        try:
            return Outcome(value=await defn.fn(*args, **kwargs))
        except Exception as exc:
            return Outcome(error=exc)
    attempts = defn.retry.start(defn.name, ctx.workflow_id)
    value, error = await attempt_async(attempts, lambda: defn.fn(*args, **kwargs), ctx.check_alive)
    return Outcome(value=value, error=error, attempts=attempts.attempt)


class _ModelCall:
    """What a model-call step adds to a step: its usage collected while its body runs, and its
    count against the budget's calls in flight until it is recorded."""

    __slots__ = ("collected", "release", "token")

    def __init__(self, ctx: WorkflowRun) -> None:
        self.collected: list[Usage] = []
        self.token = _step_usage.set(self.collected)
        self.release = ctx.engine.model_call_started(ctx.budget_owner)

    def body_done(self) -> str | None:
        _step_usage.reset(self.token)
        return encode_usage(self.collected)


def _recorder(
    ctx: WorkflowRun, defn: StepDef, step_id: int, outcome: Outcome, started: int, usage: str | None
) -> Callable[[], None]:
    """The write that records a step's outcome: called inline (sync) or handed to `run_write` (async)."""

    def record() -> None:
        ctx.record(
            step_id,
            defn.name,
            value=outcome.value,
            error=outcome.error,
            started_at=started,
            hint=defn.return_hint,
            usage=usage,
        )

    return record


def run_step_sync(defn: StepDef, args: Any, kwargs: Any) -> Any:
    interceptor = _interceptor.get()
    if interceptor is not None:
        return interceptor(defn, args, kwargs)
    ctx = _current.get()
    if ctx is None or _in_step.get():
        return defn.fn(*args, **kwargs)
    if defn.model_call and ctx.budget_owner is not None:
        gate_sync(ctx)  # under a budget a model call is preceded by its recorded check
    step_id = ctx.take_step_id()
    row = ctx.begin_step(step_id, defn.name)
    if row is not None:
        replayed_step(step_id, defn.name)
        return ctx.replay(row, defn.return_hint)
    started = now_ms()
    token = _in_step.set(True)
    model_call = _ModelCall(ctx) if defn.model_call else None
    usage: str | None = None
    try:
        with step_span(ctx, step_id, defn.name) as span:
            outcome = _attempts_sync(defn, ctx, args, kwargs)
            end_step_span(span, outcome.attempts, outcome.error)
    finally:
        if model_call is not None:
            usage = model_call.body_done()
        _in_step.reset(token)
    try:
        _recorder(ctx, defn, step_id, outcome, started, usage)()
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
    defn: StepDef, ctx: WorkflowRun, step_id: int, args: Any, kwargs: Any, gate_id: int | None = None
) -> Any:
    if gate_id is not None:
        await gate_async(ctx, gate_id)
    row = ctx.begin_step(step_id, defn.name)
    if row is not None:
        replayed_step(step_id, defn.name)
        return ctx.replay(row, defn.return_hint)
    started = now_ms()
    token = _in_step.set(True)
    model_call = _ModelCall(ctx) if defn.model_call else None
    usage: str | None = None
    try:
        with step_span(ctx, step_id, defn.name) as span:
            outcome = await _attempts_async(defn, ctx, args, kwargs)
            end_step_span(span, outcome.attempts, outcome.error)
    finally:
        if model_call is not None:
            usage = model_call.body_done()
        _in_step.reset(token)
    try:
        await ctx.engine.run_write(_recorder(ctx, defn, step_id, outcome, started, usage))
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


async def run_engine_step_async(
    ctx: WorkflowRun, step_id: int, name: str, operation: Callable[[], Awaitable[Any]], hint: Any = Any
) -> Any:
    """`run_engine_step_sync` for a step id taken at call time, its records written on an IO thread."""
    row = ctx.begin_step(step_id, name)
    if row is not None:
        return ctx.replay(row, hint)
    started = now_ms()
    try:
        value = await operation()
    except Exception as exc:
        failure = exc
        await ctx.engine.run_io(lambda: ctx.record(step_id, name, error=failure, started_at=started))
        raise
    await ctx.engine.run_io(lambda: ctx.record(step_id, name, value=value, started_at=started, hint=hint))
    return value


def _workflow_span(ctx: WorkflowRun) -> Any:
    return workflow_span(
        ctx, ctx.trace_context, queue_name=ctx.queue_name, recovery_attempts=ctx.recovery_attempts
    )


def _end_workflow_span(span: Any, outcome: Outcome) -> None:
    if span is not None:
        if outcome.interrupted:
            status = WorkflowState.CANCELLED
        else:
            status = WorkflowState.ERROR if outcome.error is not None else WorkflowState.SUCCESS
        end_workflow_span(span, status, outcome.error)


# -- workflows -----------------------------------------------------------------------------


def _enter(ctx: WorkflowRun) -> tuple[Any, Any, Any]:
    return _current.set(ctx), _in_step.set(False), _options.set(None)


def _exit(tokens: tuple[Any, Any, Any]) -> None:
    _current.reset(tokens[0])
    _in_step.reset(tokens[1])
    _options.reset(tokens[2])


def _body_outcome(ctx: WorkflowRun, error: BaseException) -> Outcome:
    """How a body that raised ended. The engine's own storage failing under it (an outage longer
    than the engine's retries, a full disk) is never the workflow's outcome: the run is interrupted
    and this process resumes it when storage is back."""
    if isinstance(error, DatabaseUnavailable):
        ctx.engine.storage_interrupted(ctx)
        return Outcome(interrupted=True)
    return Outcome(error=error)


class _Execution:
    """One execution of a workflow body: what its sync and async drivers share.

    `body()` sets the context variables and the workflow span around the body and turns how the
    body ended into its `Outcome`; the drivers only call the body (directly or awaited) and record
    the outcome (directly or through `run_write`), then `settle` hands it to the run's future.
    """

    __slots__ = ("cancellable", "ctx", "future", "outcome")

    def __init__(self, ctx: WorkflowRun, future: Future[Outcome], *, cancellable: bool) -> None:
        self.ctx = ctx
        self.future = future
        self.cancellable = cancellable  # an async body: a cancelled task abandons the execution
        self.outcome = Outcome(interrupted=True)

    @contextmanager
    def body(self) -> Generator[None, None, None]:
        ctx = self.ctx
        tokens = _enter(ctx)
        try:
            with _workflow_span(ctx) as span:
                try:
                    yield
                except (Exception, NondeterminismError) as exc:
                    self.outcome = _body_outcome(ctx, exc)
                except WorkflowCancelled:
                    self.outcome = Outcome(interrupted=True)
                except asyncio.CancelledError:
                    if not self.cancellable:
                        self.future.set_result(Outcome(interrupted=True))
                        raise
                    abandon_execution(ctx, self.future)
                    _end_workflow_span(span, Outcome(interrupted=True))
                    raise
                except BaseException:
                    self.future.set_result(Outcome(interrupted=True))
                    raise
                _end_workflow_span(span, self.outcome)
        finally:
            _exit(tokens)

    def before_finish(self) -> None:
        if CRASH_HOOKS and not self.outcome.interrupted:
            run_crash_hooks("finish", self.ctx, self.ctx.next_step_id, self.ctx.name)

    def storage_lost(self) -> None:
        """Recording the outcome failed on storage: run it again when storage is back."""
        self.ctx.engine.storage_interrupted(self.ctx)
        self.outcome = Outcome(interrupted=True)

    def interrupted(self) -> None:
        self.future.set_result(Outcome(interrupted=True))

    def settle(self) -> None:
        self.future.set_result(self.outcome)


def execute_workflow_sync(
    ctx: WorkflowRun, defn: WorkflowDef, args: Any, kwargs: Any, future: Future[Outcome]
) -> None:
    """Run a workflow body in this thread and record its outcome; the outcome also goes to `future`."""
    execution = _Execution(ctx, future, cancellable=False)
    with execution.body():
        execution.outcome = Outcome(value=defn.fn(*args, **kwargs))
    try:
        execution.before_finish()
        ctx.finish(execution.outcome)
    except DatabaseUnavailable:
        execution.storage_lost()
    except BaseException:
        execution.interrupted()
        raise
    execution.settle()


def abandon_execution(ctx: WorkflowRun, future: Future[Outcome]) -> None:
    """The task running this body was cancelled (the caller's `wait_for` timed out, its request was
    cancelled, its event loop is closing): stop here without waiting for anything.

    Nothing is recorded as finished: the workflow stays PENDING, owned by this executor, and is
    resumed like any interrupted run (a relaunch, `engine.recover()`, or another executor once
    this one's lease lapses). It leaves `engine.active`, so a recovery in this process may run it
    again, and any database call still in flight for it stops at its next step boundary.
    """
    if ctx.cancel_reason is None:
        ctx.cancel_reason = "interrupted: the task running it was cancelled"
    ctx.finish(Outcome(interrupted=True))  # records nothing; releases it here
    if not future.done():
        future.set_result(Outcome(interrupted=True))


async def execute_workflow_async(
    ctx: WorkflowRun, defn: WorkflowDef, args: Any, kwargs: Any, future: Future[Outcome]
) -> None:
    """Run an async workflow body on the current event loop and record its outcome.

    Cancelling the task that awaits this (e.g. ``asyncio.wait_for`` around a workflow call) ends it
    promptly: `asyncio.CancelledError` propagates after local cleanup, the workflow stays PENDING in
    the database and is recovered like any interrupted run (see `abandon_execution`).
    """
    execution = _Execution(ctx, future, cancellable=True)
    with execution.body():
        execution.outcome = Outcome(value=await defn.fn(*args, **kwargs))
    try:
        execution.before_finish()
        outcome = execution.outcome
        await ctx.engine.run_write(lambda: ctx.finish(outcome))
    except asyncio.CancelledError:
        abandon_execution(ctx, future)  # cancelled while recording the outcome: it may have landed
        raise
    except DatabaseUnavailable:
        execution.storage_lost()
    except BaseException:
        execution.interrupted()
        raise
    execution.settle()
