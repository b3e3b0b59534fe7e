"""Executors, heartbeats and recovery without a control plane.

Every engine renews a lease row. At launch it resumes its own unfinished workflows; while it
runs, it claims the PENDING workflows of executors of the same app version whose lease
expired, or that ran on this host in a process that no longer exists, and resumes them. A
claim is one guarded UPDATE, so among racing survivors each workflow goes to exactly one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._handle import WorkflowHandle
from ._host import EngineHost
from ._ownership import is_dead, lease_recheck, park
from ._queues import served_queue_names
from ._registry import get_workflow, registered_names
from ._starting import run_recovered
from ._status import WorkflowState, now_ms
from ._stranded import report_dead_executor, report_own
from .storage import ClaimedWorkflow

__all__ = ["heartbeat_once", "recover", "recover_own", "start_monitor"]

log = logging.getLogger("durable_core.recovery")


def heartbeat_once(engine: EngineHost, *, advertise: bool = True) -> None:
    """Renew this executor's lease; `advertise=False` (client engines) claims no names or queues."""
    if not advertise or engine.is_client:
        names: list[str] = []
        queue_names: list[str] = []
    else:
        names, queue_names = registered_names(), served_queue_names(engine)
    engine.executors.heartbeat(
        engine.executor_id,
        hostname=engine.hostname,
        pid=engine.pid,
        app_version=engine.app_version,
        lease_ms=int(engine.lease_seconds * 1000),
        now=now_ms(),
        workflow_names=names,
        queue_names=queue_names,
    )


def _resume_claimed(engine: EngineHost, claimed: ClaimedWorkflow) -> WorkflowHandle[Any]:
    defn = get_workflow(claimed.name)
    if defn is None:
        log.warning(
            "Workflow %s (%s) cannot be resumed here: no workflow of that name is registered in this process. "
            "Import the module that defines it before engine.launch().",
            claimed.workflow_id,
            claimed.name,
        )
        return WorkflowHandle(engine, claimed.workflow_id, None)
    limit = defn.max_recovery_attempts
    if limit is not None and claimed.recovery_attempts > limit:
        park(engine, claimed, limit)
        return WorkflowHandle(engine, claimed.workflow_id, defn)
    row = engine.workflows.get(claimed.workflow_id)
    if not defn.auto_recover or row is None or row.status != WorkflowState.PENDING:
        return WorkflowHandle(engine, claimed.workflow_id, defn)
    future = run_recovered(engine, defn, row)
    return WorkflowHandle(engine, claimed.workflow_id, defn, future)


def recoverable_names() -> list[str]:
    """Workflows this process can resume by itself (registered, and not left to their callers)."""
    names: list[str] = []
    for name in registered_names():
        defn = get_workflow(name)
        if defn is not None and defn.auto_recover:
            names.append(name)
    return names


def _claim_and_resume(
    engine: EngineHost, from_executor: str, unless_alive_at: int | None = None
) -> list[WorkflowHandle[Any]]:
    running: list[str] = []
    if from_executor == engine.executor_id:  # our own workflows that run right now are not orphans
        running = engine.active.ids()
    claimed = engine.executors.claim(
        from_executor=from_executor,
        to_executor=engine.executor_id,
        app_version=engine.app_version,
        now=now_ms(),
        names=recoverable_names(),
        exclude=running,
        unless_alive_at=unless_alive_at,
    )
    # queue work goes back to its queue, where its limits apply; the rest resumes here
    queued = [c for c in claimed if c.queue_name is not None]
    if queued:
        engine.queues.requeue([c.workflow_id for c in queued], now_ms())
        for queue_name in {c.queue_name for c in queued if c.queue_name is not None}:
            engine.wake_queues(queue_name)
    return [_resume_isolated(engine, c) for c in claimed if c.queue_name is None] + [
        WorkflowHandle(engine, c.workflow_id, get_workflow(c.name)) for c in queued
    ]


def _resume_isolated(engine: EngineHost, claimed: ClaimedWorkflow) -> WorkflowHandle[Any]:
    """Resume one claimed workflow: whatever fails is logged with its id and never stops the others.

    (Inputs that cannot be decoded are not a failure here: `run_recovered` records that workflow
    as ERROR.)
    """
    try:
        return _resume_claimed(engine, claimed)
    except Exception:
        log.exception(
            "Workflow %s (%s) could not be resumed; the other workflows recover as usual. It stays PENDING "
            "(executor %s): engine.recover() or a relaunch tries again.",
            claimed.workflow_id,
            claimed.name,
            engine.executor_id,
        )
        return WorkflowHandle(engine, claimed.workflow_id, get_workflow(claimed.name))


def _report(report: Callable[..., None], *args: Any) -> None:
    """Run a stranded-workflow report; a failure there must never stop recovery."""
    try:
        report(*args)
    except Exception:
        log.exception("could not check for workflows that cannot be resumed")


def recover_own(engine: EngineHost) -> list[WorkflowHandle[Any]]:
    handles = _claim_and_resume(engine, engine.executor_id)
    _report(report_own, engine)  # what it owns but cannot run (function renamed, removed, ...)
    handles.extend(takeover_dead(engine))
    return handles


def recover(engine: EngineHost, executor_ids: Sequence[str] | None) -> list[WorkflowHandle[Any]]:
    handles: list[WorkflowHandle[Any]] = []
    for executor_id in executor_ids or [engine.executor_id]:
        handles.extend(_claim_and_resume(engine, executor_id))
    return handles


def takeover_dead(engine: EngineHost) -> list[WorkflowHandle[Any]]:
    """Claim the workflows of executors whose lease expired (or whose local process is gone)."""
    handles: list[WorkflowHandle[Any]] = []
    now = now_ms()
    for executor_id, row in engine.executors.owners_of_pending(engine.app_version, engine.executor_id):
        if not is_dead(engine, row, now):
            continue
        taken = _claim_and_resume(engine, executor_id, lease_recheck(engine, row, now_ms()))
        if taken:
            log.warning("Executor %s is gone; resumed %d of its workflows here.", executor_id, len(taken))
        handles.extend(taken)
        _report(report_dead_executor, engine, executor_id)  # left behind: nobody has their code
        if row is not None:
            engine.executors.remove(executor_id)
    return handles


def start_monitor(engine: EngineHost, *, takeover: bool = True) -> None:
    """Heartbeat in the background; with `takeover`, also resume dead executors' work and expire
    overdue workflows (a client engine only heartbeats)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(engine.heartbeat_seconds):
            try:
                heartbeat_once(engine)
                engine.resume_interrupted()  # storage answers: resume what an outage stopped here
                if not takeover:
                    continue
                takeover_dead(engine)
                for workflow_id in engine.workflows.overdue(now_ms()):
                    engine.cancel_workflow(workflow_id)
            except Exception:
                log.exception("heartbeat/recovery round failed; retrying at the next heartbeat")

    thread = threading.Thread(target=loop, name="durable-heartbeat", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=5)

    engine.add_service(halt)
