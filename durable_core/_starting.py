"""Starting workflows: ids, the first row, running here or attaching to an existing run.

A workflow id is unique: starting an id that exists never runs the body twice. A finished one
returns its recorded outcome, a running one is awaited, another workflow function under the
same id raises `WorkflowConflictError`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ._context import current_context, pending_options
from ._handle import GET_RESULT, WorkflowHandle
from ._host import EngineHost, resolve_host
from ._inputs import dumps_inputs, input_hints
from ._options import WorkflowOptions
from ._ownership import is_dead, lease_recheck, park
from ._registry import WorkflowDef, workflow_of_step
from ._run import Outcome, WorkflowRun
from ._runtime import abandon_execution, execute_workflow_async, execute_workflow_sync, run_engine_step_sync
from ._serialization import JsonSerializer
from ._status import WorkflowState, now_ms
from ._tracing import capture_context
from .errors import EngineNotLaunched, SerializationError, WorkflowConflictError
from .storage import ParentStep, StepRow, WorkflowRow

log = logging.getLogger("durable_core.recovery")

__all__ = ["Plan", "decode_inputs", "encode_inputs", "resolve_engine"]


def resolve_engine() -> EngineHost:
    """The engine running the current workflow, else the most recently launched one."""
    return resolve_host()


def definition_of(fn: Any) -> WorkflowDef:
    defn = getattr(fn, "__durable_workflow__", None)
    if defn is None:
        step_def = getattr(fn, "__durable_step__", None)
        if step_def is not None:
            return workflow_of_step(step_def)
        raise TypeError(
            f"{getattr(fn, '__qualname__', fn)!r} is not a durable workflow: decorate it with @workflow "
            "(or @step to run it as a one-step workflow)."
        )
    assert isinstance(defn, WorkflowDef)
    return defn


def encode_inputs(
    engine: EngineHost, defn: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    try:
        return dumps_inputs(engine.serializer, defn, args, kwargs)  # a replay decodes each back equal
    except SerializationError as exc:
        raise SerializationError(
            f"The inputs of workflow {defn.name!r} cannot be serialized ({exc.message}). Pass JSON-compatible "
            "values (pydantic models, dataclasses, dicts, lists, ...) or opt in to "
            "Engine(serializer=PickleSerializer()). Nothing was recorded."
        ) from exc


def decode_inputs(
    engine: EngineHost, defn: WorkflowDef | None, row: WorkflowRow
) -> tuple[list[Any], dict[str, Any]]:
    """Recorded inputs, typed by the workflow's parameter annotations when the JSON serializer wrote them."""
    if row.inputs is None:
        return [], {}
    serializer = engine.serializer_for(row.serialization)
    raw = serializer.loads(row.inputs)
    args: list[Any] = list(raw.get("args", []))
    kwargs: dict[str, Any] = dict(raw.get("kwargs", {}))
    if defn is None or not isinstance(serializer, JsonSerializer):
        return args, kwargs
    arg_hints, kwarg_hints = input_hints(defn, len(args), kwargs)  # the hints encode_inputs checked by
    typed_args = [
        serializer.from_jsonable(value, hint) for value, (_, hint) in zip(args, arg_hints, strict=True)
    ]
    typed_kwargs = {key: serializer.from_jsonable(value, kwarg_hints[key]) for key, value in kwargs.items()}
    return typed_args, typed_kwargs


@dataclass
class Plan:
    """Everything decided before the first write: id, row values, the parent's step."""

    defn: WorkflowDef
    workflow_id: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    values: dict[str, Any]
    parent: WorkflowRun | None
    parent_step_id: int | None
    recorded_child: bool  # the parent's record already names this child: no insert of the parent step


def make_plan(
    engine: EngineHost,
    defn: WorkflowDef,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    status: WorkflowState = WorkflowState.PENDING,
    queue_name: str | None = None,
) -> Plan:
    options = pending_options()
    workflow_id = options.take_workflow_id() if options is not None else None
    parent = current_context()
    parent_step_id: int | None = None
    recorded_child = False
    if parent is not None:
        parent_step_id = parent.take_step_id()
        row: StepRow | None = parent.begin_step(parent_step_id, defn.name)
        if row is not None and row.child_workflow_id:
            workflow_id, recorded_child = row.child_workflow_id, True
        workflow_id = workflow_id or f"{parent.workflow_id}-{parent_step_id}"
    workflow_id = workflow_id or str(uuid.uuid4())
    now = now_ms()
    timeout_ms: int | None = None
    deadline: int | None = None
    if options is not None and options.timeout_seconds is not None:
        timeout_ms = int(options.timeout_seconds * 1000)
        if status == WorkflowState.PENDING:
            deadline = now + timeout_ms
    if parent is not None and parent.deadline_ms is not None:
        deadline = parent.deadline_ms if deadline is None else min(deadline, parent.deadline_ms)
    values: dict[str, Any] = {
        "workflow_id": workflow_id,
        "name": defn.name,
        "status": status,
        "inputs": encode_inputs(engine, defn, args, kwargs),
        "serialization": engine.serializer.name,
        "created_at": now,
        "updated_at": now,
        "started_at": now if status == WorkflowState.PENDING else None,
        "queue_name": queue_name,
        "executor_id": engine.executor_id if status == WorkflowState.PENDING else None,
        "app_version": engine.app_version,
        "recovery_attempts": 0,
        "parent_workflow_id": parent.workflow_id if parent is not None else None,
        "timeout_ms": timeout_ms,
        "deadline_at": deadline,
        "priority": (options.priority if options is not None and options.priority is not None else 0),
        "deduplication_id": options.deduplication_id if options is not None else None,
        "trace_context": capture_context(),
        **_budget_values(workflow_id, options, parent),
    }
    return Plan(defn, workflow_id, args, kwargs, values, parent, parent_step_id, recorded_child)


def _budget_values(
    workflow_id: str, options: WorkflowOptions | None, parent: WorkflowRun | None
) -> dict[str, Any]:
    """A budget set for this workflow governs it and its descendants; else it inherits its parent's."""
    if options is not None and options.budget is not None:
        options_budget, options.budget = options.budget, None  # the first workflow of the block only
        return {"budget": options_budget.to_json(), "budget_owner": workflow_id}
    return {"budget": None, "budget_owner": parent.budget_owner if parent is not None else None}


def insert(engine: EngineHost, plan: Plan, *, notify: str | None = None) -> bool:
    """Create the row; on an existing id check it belongs to the same workflow function."""
    parent_step = None
    parent = plan.parent
    if parent is not None and plan.parent_step_id is not None and not plan.recorded_child:
        parent_step = ParentStep(
            parent.workflow_id, plan.parent_step_id, plan.defn.name, parent.executor_id, parent.owner_epoch
        )
    created = engine.workflows.insert(plan.values, parent_step=parent_step, notify=notify)
    if created is None:  # the parent is no longer ours: nothing was written, its body stops here
        assert parent is not None and plan.parent_step_id is not None
        parent.resolve_unrecorded(plan.parent_step_id)
        raise AssertionError("unreachable: the parent is no longer owned here")
    if not created:
        existing = engine.workflows.get(plan.workflow_id)
        if existing is not None and existing.name != plan.defn.name:
            raise WorkflowConflictError(
                f"Workflow id {plan.workflow_id!r} belongs to workflow {existing.name!r}, not {plan.defn.name!r}; "
                "use another workflow_id.",
                workflow_id=plan.workflow_id,
            )
    return created


def new_context(engine: EngineHost, plan: Plan, recorded: dict[int, StepRow] | None = None) -> WorkflowRun:
    return WorkflowRun(
        engine,
        plan.workflow_id,
        plan.defn.name,
        recorded or {},
        plan.values.get("deadline_at"),
        created_at=plan.values["created_at"],
        trace_context=plan.values.get("trace_context"),
        queue_name=plan.values.get("queue_name"),
        budget_owner=plan.values.get("budget_owner"),
    )


def context_for_row(engine: EngineHost, defn: WorkflowDef, row: WorkflowRow) -> WorkflowRun:
    """The context of a workflow resumed from its record: steps loaded in one query."""
    recorded = engine.steps.load(row.workflow_id)
    resume_wait = (row.wait_step, row.wait_deadline) if row.wait_step is not None else None
    return WorkflowRun(
        engine,
        row.workflow_id,
        defn.name,
        recorded,
        row.deadline_at,
        created_at=row.created_at,
        resume_wait=resume_wait,
        trace_context=row.trace_context,
        queue_name=row.queue_name,
        recovery_attempts=row.recovery_attempts,
        owner_epoch=row.owner_epoch,
        budget_owner=row.budget_owner,
    )


def adopt_orphan(
    engine: EngineHost, defn: WorkflowDef, workflow_id: str
) -> tuple[WorkflowRun, Any, Any, Future[Outcome]] | None:
    """Claim a PENDING workflow that nobody runs (its owner is this executor, idle, or a dead one).

    Used when a caller starts an id that exists: rather than wait on a run that will never
    progress, the caller resumes it (one guarded UPDATE decides among racing callers).
    """
    row = engine.workflows.get(workflow_id)
    if row is None or row.status != WorkflowState.PENDING or row.executor_id is None:
        return None
    if workflow_id in engine.active:
        return None
    recheck: int | None = None
    if row.executor_id != engine.executor_id:
        owner = engine.executors.get(row.executor_id)
        now = now_ms()
        if not is_dead(engine, owner, now):
            return None
        recheck = lease_recheck(engine, owner, now)
    claimed = engine.executors.claim(
        from_executor=row.executor_id,
        to_executor=engine.executor_id,
        app_version=row.app_version,
        now=now_ms(),
        workflow_id=workflow_id,
        unless_alive_at=recheck,
    )
    if not claimed:
        return None
    limit = defn.max_recovery_attempts
    if limit is not None and claimed[0].recovery_attempts > limit:
        park(engine, claimed[0], limit)
        return None
    row = engine.workflows.get(workflow_id)
    assert row is not None
    ctx = context_for_row(engine, defn, row)
    future = register_active(engine, ctx)
    if future is None:
        return None
    try:
        args, kwargs = decode_inputs(engine, defn, row)
    except Exception as exc:
        fail_undecodable(engine, ctx, row, exc, future)
        return None  # the caller reads the recorded ERROR
    return ctx, tuple(args), kwargs, future


def fail_undecodable(
    engine: EngineHost, ctx: WorkflowRun, row: WorkflowRow, exc: Exception, future: Future[Outcome]
) -> None:
    """A claimed workflow whose recorded inputs cannot be decoded: record it as ERROR, never raise.

    Its body cannot run, and letting the decode error escape would stop the whole recovery round
    (the other workflows of a dead executor would stay PENDING). The recorded error is a
    `SerializationError` naming the workflow, its name and the cause; a log line says the same.
    """
    cause = f"{type(exc).__name__}: {exc}"
    error = SerializationError(
        f"The recorded inputs of workflow {row.workflow_id!r} ({row.name!r}) cannot be decoded, so it "
        f"cannot be resumed and is recorded as ERROR. Cause: {cause}",
        workflow_id=row.workflow_id,
    )
    error.__cause__ = exc
    log.error(
        "Workflow %s (%s) cannot be resumed: its recorded inputs cannot be decoded (%s); it is recorded "
        "as ERROR and the other workflows recover as usual.",
        row.workflow_id,
        row.name,
        cause,
    )
    outcome = Outcome(error=error)
    try:
        ctx.finish(outcome)  # records ERROR and releases it from engine.active
    finally:
        if not future.done():
            future.set_result(outcome)


def register_active(engine: EngineHost, ctx: WorkflowRun) -> Future[Outcome] | None:
    """Mark a workflow as running here (see `ActiveRuns.register`); None if it already runs here."""
    engine.ensure_executor()
    return engine.active.register(ctx)


def launch_background(
    engine: EngineHost, defn: WorkflowDef, ctx: WorkflowRun, args: Any, kwargs: Any, future: Future[Outcome]
) -> None:
    if defn.is_async:
        engine.submit_coroutine(execute_workflow_async(ctx, defn, args, kwargs, future))
    else:
        engine.submit(lambda: execute_workflow_sync(ctx, defn, args, kwargs, future))


def _check_launched(engine: EngineHost) -> None:
    if not engine.launched:
        raise EngineNotLaunched()
    engine.ensure_executor()  # before the row exists, so no launched engine ever judges it orphaned


# -- entry points --------------------------------------------------------------------------


def call_sync(defn: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A direct call of a sync workflow: run it here (or attach to the existing run) and return its result."""
    engine = resolve_engine()
    _check_launched(engine)
    plan = make_plan(engine, defn, args, kwargs)
    future: Future[Outcome] | None = None
    if insert(engine, plan):
        ctx = new_context(engine, plan)
        future = register_active(engine, ctx)
        if future is not None:
            execute_workflow_sync(ctx, defn, args, kwargs, future)
    else:
        orphan = adopt_orphan(engine, defn, plan.workflow_id)
        if orphan is not None:
            ctx, rargs, rkwargs, future = orphan
            execute_workflow_sync(ctx, defn, rargs, rkwargs, future)
    handle: WorkflowHandle[Any] = WorkflowHandle(engine, plan.workflow_id, defn, future)
    if plan.parent is not None:
        return run_engine_step_sync(GET_RESULT, lambda: handle.wait_outcome(None), defn.return_hint)
    return handle.wait_outcome(None)


def call_async(defn: WorkflowDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A direct call of an async workflow. Ids are taken now, at call time; the rest runs when awaited."""
    engine = resolve_engine()
    _check_launched(engine)
    plan = make_plan(engine, defn, args, kwargs)
    result_step: int | None = None
    if plan.parent is not None:
        result_step = plan.parent.take_step_id()
    return _call_async(engine, plan, result_step)


async def _call_async(engine: EngineHost, plan: Plan, result_step: int | None) -> Any:
    future: Future[Outcome] | None = None
    if await engine.run_write(lambda: insert(engine, plan)):
        ctx = new_context(engine, plan)
        future = register_active(engine, ctx)
        if future is not None:
            await execute_workflow_async(ctx, plan.defn, plan.args, plan.kwargs, future)
    else:
        orphan = await _adopt_async(engine, plan)
        if orphan is not None:
            ctx, rargs, rkwargs, future = orphan
            await execute_workflow_async(ctx, plan.defn, rargs, rkwargs, future)
    handle: WorkflowHandle[Any] = WorkflowHandle(engine, plan.workflow_id, plan.defn, future)
    if plan.parent is not None and result_step is not None:
        return await handle.get_result_as_step_async(plan.parent, result_step)
    return await handle.wait_outcome_async(None)


async def _adopt_async(
    engine: EngineHost, plan: Plan
) -> tuple[WorkflowRun, Any, Any, Future[Outcome]] | None:
    """`adopt_orphan` on an IO thread for a caller on an event loop.

    If the caller's task is cancelled meanwhile, an adopted run is let go (released from
    `engine.active`, left PENDING for recovery) instead of staying registered here with nobody
    to run it.
    """
    lock = threading.Lock()
    adopted: list[tuple[WorkflowRun, Any, Any, Future[Outcome]]] = []
    abandoned: list[bool] = []

    def adopt() -> tuple[WorkflowRun, Any, Any, Future[Outcome]] | None:
        orphan = adopt_orphan(engine, plan.defn, plan.workflow_id)
        with lock:
            if orphan is not None and abandoned:
                abandon_execution(orphan[0], orphan[3])
                return None
            if orphan is not None:
                adopted.append(orphan)
            return orphan

    try:
        return await engine.run_io(adopt)
    except asyncio.CancelledError:
        with lock:
            abandoned.append(True)
            for ctx, _args, _kwargs, future in adopted:
                abandon_execution(ctx, future)
        raise


def start_background(
    engine: EngineHost, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> WorkflowHandle[Any]:
    _check_launched(engine)
    defn = definition_of(fn)
    plan = make_plan(engine, defn, args, kwargs)
    future = _start_planned(engine, plan)
    return WorkflowHandle(engine, plan.workflow_id, defn, future)


async def start_background_async(
    engine: EngineHost, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> WorkflowHandle[Any]:
    _check_launched(engine)
    defn = definition_of(fn)
    plan = make_plan(engine, defn, args, kwargs)
    future = await engine.run_io(lambda: _start_planned(engine, plan))
    return WorkflowHandle(engine, plan.workflow_id, defn, future)


def _start_planned(engine: EngineHost, plan: Plan) -> Future[Outcome] | None:
    if not insert(engine, plan):
        orphan = adopt_orphan(engine, plan.defn, plan.workflow_id)
        if orphan is None:
            return None
        ctx, rargs, rkwargs, future = orphan
        launch_background(engine, plan.defn, ctx, rargs, rkwargs, future)
        return future
    ctx = new_context(engine, plan)
    future = register_active(engine, ctx)
    if future is not None:
        launch_background(engine, plan.defn, ctx, plan.args, plan.kwargs, future)
    return future


def run_recovered(engine: EngineHost, defn: WorkflowDef, row: WorkflowRow) -> Future[Outcome] | None:
    """Resume a workflow this executor has just claimed: replay its recorded steps, then run live.

    None if it already runs in this process. Inputs that cannot be decoded end it in ERROR
    (`fail_undecodable`): the returned future then holds that outcome, nothing is raised.
    """
    ctx = context_for_row(engine, defn, row)
    future = register_active(engine, ctx)
    if future is None:
        return None
    try:
        args, kwargs = decode_inputs(engine, defn, row)
    except Exception as exc:
        fail_undecodable(engine, ctx, row, exc, future)
        return future
    launch_background(engine, defn, ctx, tuple(args), kwargs, future)
    return future
