"""The management API behind `Engine`: introspection, cancel, resume and fork."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ._handle import WorkflowHandle
from ._host import EngineHost
from ._keys import done_key, wake_key
from ._ownership import is_dead
from ._queues import INTERNAL_QUEUE
from ._records import StepInfo, WorkflowStatus, parse_wait
from ._registry import get_workflow
from ._run import RunHost
from ._serialization import decode_error, reject_nul
from ._starting import decode_inputs, run_recovered
from ._status import ACTIVE_STATES, WorkflowState, now_ms
from ._stranded import Fleet, stranded_reason
from ._usage import UsageTotals
from ._usage_report import tree_usage
from .errors import DurableError, WorkflowNotFoundError
from .storage import StepRow, WorkflowRow

__all__ = ["cancel", "fork", "get_status", "list_steps", "list_workflows", "resume", "retrieve", "to_status"]


def _ms(value: datetime | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)


def _require(engine: EngineHost, workflow_id: str) -> WorkflowRow:
    reject_nul(workflow_id=workflow_id)
    row = engine.workflows.get(workflow_id)
    if row is None:
        raise WorkflowNotFoundError(workflow_id)
    return row


def to_status(
    engine: EngineHost, row: WorkflowRow, fleet: Fleet | None = None, usage: UsageTotals | None = None
) -> WorkflowStatus:
    """The public record of a row; `fleet` (the live executors) explains a stranded one."""
    defn = get_workflow(row.name)
    try:
        args, kwargs = decode_inputs(engine, defn, row)
        inputs: Any = {"args": args, "kwargs": kwargs}
    except Exception:
        inputs = row.inputs
    output: Any = None
    if row.output is not None:
        try:
            hint = defn.return_hint if defn is not None else Any
            output = engine.serializer_for(row.serialization).loads(row.output, hint)
        except Exception:
            output = row.output
    waiting = None
    if row.status == WorkflowState.PENDING and row.wait_topic is not None:
        waiting = parse_wait(row.wait_topic, row.wait_deadline)
    return WorkflowStatus(
        workflow_id=row.workflow_id,
        name=row.name,
        status=row.status,
        inputs=inputs,
        output=output,
        error=decode_error(row.error) if row.error is not None else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        queue_name=row.queue_name,
        executor_id=row.executor_id,
        app_version=row.app_version,
        recovery_attempts=row.recovery_attempts,
        parent_workflow_id=row.parent_workflow_id,
        forked_from=row.forked_from,
        waiting=waiting,
        priority=row.priority,
        deadline_at=row.deadline_at,
        started_at=row.started_at,
        deduplication_id=row.deduplication_id,
        stranded=stranded_reason(row, fleet) if fleet is not None else None,
        usage=usage,
    )


def _fleet_for(engine: EngineHost, rows: Sequence[WorkflowRow]) -> Fleet | None:
    """The live executors, read only when a row may be stranded (PENDING or ENQUEUED)."""
    if any(row.status in ACTIVE_STATES for row in rows):
        return Fleet.read(engine)
    return None


def to_step_info(engine: RunHost, row: StepRow) -> StepInfo:
    output: Any = None
    if row.output is not None:
        try:
            output = engine.serializer_for(row.serialization).loads(row.output)
        except Exception:
            output = row.output
    return StepInfo(
        step_id=row.step_id,
        name=row.name,
        output=output,
        error=decode_error(row.error) if row.error is not None else None,
        child_workflow_id=row.child_workflow_id,
        started_at=row.started_at,
        completed_at=row.completed_at,
    )


def retrieve(engine: EngineHost, workflow_id: str) -> WorkflowHandle[Any]:
    row = _require(engine, workflow_id)
    return WorkflowHandle(engine, workflow_id, get_workflow(row.name))


def get_status(engine: EngineHost, workflow_id: str) -> WorkflowStatus:
    row = _require(engine, workflow_id)
    return to_status(engine, row, _fleet_for(engine, [row]), tree_usage(engine, [workflow_id])[workflow_id])


def list_workflows(
    engine: EngineHost,
    *,
    status: str | Sequence[str] | None,
    name: str | Sequence[str] | None,
    queue_name: str | Sequence[str] | None,
    workflow_ids: Sequence[str] | None,
    created_after: datetime | int | None,
    created_before: datetime | int | None,
    waiting: bool | None,
    limit: int | None,
    offset: int,
    newest_first: bool,
) -> list[WorkflowStatus]:
    reject_nul(name=name, queue_name=queue_name, workflow_ids=workflow_ids)
    rows = engine.workflows.list(
        status=status,
        name=name,
        queue_name=queue_name,
        workflow_ids=workflow_ids,
        created_after=_ms(created_after),
        created_before=_ms(created_before),
        waiting=waiting,
        limit=limit,
        offset=offset,
        newest_first=newest_first,
    )
    fleet = _fleet_for(engine, rows)
    usage = tree_usage(engine, [row.workflow_id for row in rows])
    return [to_status(engine, row, fleet, usage.get(row.workflow_id)) for row in rows]


def list_steps(engine: EngineHost, workflow_id: str) -> list[StepInfo]:
    _require(engine, workflow_id)
    return [to_step_info(engine, row) for row in engine.steps.load(workflow_id).values()]


def cancel(engine: EngineHost, workflow_id: str) -> None:
    _require(engine, workflow_id)
    cancelled = engine.workflows.cancel_tree(workflow_id, now_ms())
    for wid in cancelled:
        engine.active.mark_cancelled(wid)
        engine.waiters.notify(wake_key(wid))
        engine.waiters.notify(done_key(wid))
    for wid in cancelled:
        engine.notify_remote("done", wid)


_resume_lock = threading.Lock()
"""Resumes in this process decide one at a time: from reading the row to registering the run.

Otherwise a second resume can read the row a first one has just taken (PENDING, this executor)
before that run is registered as active, judge it stranded, and start a second body."""


def resume(engine: EngineHost, workflow_id: str) -> WorkflowHandle[Any]:
    with _resume_lock:
        return _resume(engine, workflow_id)


def _resume(engine: EngineHost, workflow_id: str) -> WorkflowHandle[Any]:
    row = _require(engine, workflow_id)
    defn = get_workflow(row.name)
    if row.status == WorkflowState.SUCCESS:
        return WorkflowHandle(engine, workflow_id, defn)
    if row.status == WorkflowState.ERROR:
        # run it again from the step that failed: every earlier step replays from its record
        return _run_or_enqueue(
            engine, row.workflow_id, row.name, {"recovery_attempts": 0, "deadline_at": None}, reopen=True
        )
    running_here = workflow_id in engine.active
    if running_here and row.status == WorkflowState.PENDING:
        return WorkflowHandle(engine, workflow_id, defn)
    # a cancelled body may still be inside a step here: the resumed run (a newer ownership epoch)
    # replaces it, and it stops at its next step boundary without writing anything
    if (
        row.status == WorkflowState.PENDING
        and row.executor_id is not None
        and row.app_version == engine.app_version
    ):
        owner = engine.executors.get(row.executor_id)
        if row.executor_id != engine.executor_id and not is_dead(engine, owner, now_ms()):
            return WorkflowHandle(engine, workflow_id, defn)  # running live elsewhere: leave it alone
    return _run_or_enqueue(
        engine,
        row.workflow_id,
        row.name,
        {"recovery_attempts": 0, "deadline_at": None},
        only_status=(
            WorkflowState.CANCELLED,
            WorkflowState.RETRIES_EXCEEDED,
            WorkflowState.PENDING,
            WorkflowState.ENQUEUED,
        ),
    )


def _run_or_enqueue(
    engine: EngineHost,
    workflow_id: str,
    name: str,
    values: dict[str, Any],
    only_status: Sequence[str] = (),
    *,
    reopen: bool = False,
) -> WorkflowHandle[Any]:
    """Run the workflow here if its code is registered, else queue it for an engine that has it.

    `reopen`: the workflow is in ERROR; its outcome and its failed last step are cleared in the
    same transaction (`WorkflowStore.reopen_failed`).
    """
    defn = get_workflow(name)
    now = now_ms()

    def take(values: dict[str, Any]) -> bool:
        if reopen:
            return engine.workflows.reopen_failed(workflow_id, values)
        return engine.workflows.update(workflow_id, values, only_status=only_status)

    if defn is not None:
        updated = take(
            {
                **values,
                "status": WorkflowState.PENDING,
                "executor_id": engine.executor_id,
                "updated_at": now,
                "started_at": now,
            }
        )
        if updated:
            row = engine.workflows.get(workflow_id)
            assert row is not None
            future = run_recovered(engine, defn, row)
            return WorkflowHandle(engine, workflow_id, defn, future)
        return WorkflowHandle(engine, workflow_id, defn)
    take(
        {
            **values,
            "status": WorkflowState.ENQUEUED,
            "executor_id": None,
            "queue_name": INTERNAL_QUEUE,
            "updated_at": now,
        }
    )
    engine.wake_queues(INTERNAL_QUEUE)
    return WorkflowHandle(engine, workflow_id, None)


def fork(
    engine: EngineHost,
    workflow_id: str,
    start_step: int,
    *,
    new_workflow_id: str | None,
    app_version: str | None,
    name: str | None = None,
) -> WorkflowHandle[Any]:
    reject_nul(new_workflow_id=new_workflow_id, name=name)
    source = _require(engine, workflow_id)
    if not isinstance(start_step, int) or start_step < 1:
        raise ValueError(f"start_step must be an integer >= 1, got {start_step!r}")
    recorded = engine.steps.load(workflow_id)
    last = max(recorded, default=0)
    if start_step > last + 1:
        raise DurableError(
            f"Cannot fork workflow {workflow_id!r} from step {start_step}: it has recorded steps 1..{last}; "
            f"choose a start step between 1 and {last + 1}.",
            workflow_id=workflow_id,
            step_id=start_step,
        )
    new_id = new_workflow_id or str(uuid.uuid4())
    if engine.workflows.get(new_id) is not None:
        raise DurableError(
            f"Workflow id {new_id!r} already exists; pick another new_workflow_id.", workflow_id=new_id
        )
    now = now_ms()
    values: dict[str, Any] = {
        "workflow_id": new_id,
        "name": name or source.name,  # a new name: the function was renamed since the source ran
        "status": WorkflowState.ENQUEUED,
        "inputs": source.inputs,
        "serialization": source.serialization,
        "created_at": now,
        "updated_at": now,
        "app_version": app_version or engine.app_version,
        "recovery_attempts": 0,
        "forked_from": workflow_id,
        "priority": 0,
        "timeout_ms": source.timeout_ms,
    }
    engine.workflows.copy_for_fork(workflow_id, values, start_step)
    engine.messages.copy_events_for_fork(workflow_id, new_id, start_step)
    if (app_version or engine.app_version) != engine.app_version:
        engine.workflows.update(new_id, {"queue_name": INTERNAL_QUEUE})
        return WorkflowHandle(engine, new_id, get_workflow(name or source.name))
    return _run_or_enqueue(engine, new_id, name or source.name, {}, only_status=(WorkflowState.ENQUEUED,))
