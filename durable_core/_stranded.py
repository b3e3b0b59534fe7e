"""Workflows that nothing will run, and why: a warning once per process, and `WorkflowStatus.stranded`.

A PENDING workflow is resumed by its owner at launch, or by a live executor of its app version
once the owner is gone, but only by one that has a workflow registered under the recorded name.
When the code changed between a crash and the restart (the function renamed or removed), or no
executor of its version runs, nothing would ever run it again, silently. Nothing here claims or
writes anything: these functions read the workflow rows and the executors' advertised names,
log one warning per workflow and process, and explain the situation in `list_workflows`.

What `stranded` means, from any process (a worker, the CLI, a web front end): the workflow is
PENDING or ENQUEUED and no live executor (fresh lease) of its app version can run it: none has
its name registered, none serves its queue, or none runs that version at all; or its own live
executor lacks the name or runs another version. A workflow whose owner just died while a live
executor of its version has the name is not stranded: it is taken over within a heartbeat. The
answer depends on the executors' heartbeats, not on the listing process's own registry, so a
process without the code (the CLI) reports the same as a worker.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass, field

from ._host import EngineHost
from ._registry import registered_names
from ._status import ACTIVE_STATES, WorkflowState, now_ms
from .storage import WorkflowRow

__all__ = ["Fleet", "report_dead_executor", "report_own", "stranded_reason"]

log = logging.getLogger("durable_core.recovery")

_ROWS_PER_CHECK = 1000  # a bound on the rows one check reads (each is reported once anyway)
_reported: weakref.WeakKeyDictionary[EngineHost, set[str]] = weakref.WeakKeyDictionary()
_reported_lock = threading.Lock()


@dataclass(frozen=True)
class LiveExecutor:
    app_version: str | None
    workflow_names: frozenset[str]
    queue_names: frozenset[str]

    @property
    def worker(self) -> bool:
        """A launched engine (it serves at least the internal queue), not a client engine: a client
        advertises nothing and runs only the workflows it started itself."""
        return bool(self.queue_names)


@dataclass(frozen=True)
class Fleet:
    """The live executors of one database at one moment."""

    executors: dict[str, LiveExecutor] = field(default_factory=lambda: {})

    @staticmethod
    def read(engine: EngineHost, *, dead: str | None = None) -> Fleet:
        """The executors with a fresh lease, less `dead` (one known gone although its lease is not over)."""
        return Fleet(
            {
                executor_id: LiveExecutor(version, names, queues)
                for executor_id, version, names, queues in engine.executors.live(now_ms())
                if executor_id != dead
            }
        )

    def workers_of(self, app_version: str) -> list[LiveExecutor]:
        return [e for e in self.executors.values() if e.worker and e.app_version == app_version]


def stranded_reason(row: WorkflowRow, fleet: Fleet) -> str | None:
    """Why no live executor will run this PENDING or ENQUEUED workflow; None when one will (or may)."""
    if row.status not in ACTIVE_STATES:
        return None
    name, version = row.name, row.app_version
    if row.status == WorkflowState.PENDING and row.executor_id is not None:
        owner = fleet.executors.get(row.executor_id)
        if owner is not None:  # a live owner keeps it: nobody else claims it
            if not owner.worker:
                return None  # a client engine runs what it started
            if owner.app_version != version:
                return (
                    f"its executor {row.executor_id!r} runs app version {owner.app_version!r}, "
                    f"not the workflow's {version!r}"
                )
            if name not in owner.workflow_names:
                return (
                    f"its executor {row.executor_id!r} has no workflow named {name!r} registered "
                    "(renamed or removed since it started?)"
                )
            return None
    workers = fleet.workers_of(version)
    if not workers:
        others = sorted({e.app_version for e in fleet.executors.values() if e.worker and e.app_version})
        running = f" (live executors run {', '.join(repr(v) for v in others)})" if others else ""
        return f"no live executor runs app version {version!r}{running}"
    able = [w for w in workers if name in w.workflow_names]
    if not able:
        return (
            f"no live executor of app version {version!r} has a workflow named {name!r} registered "
            "(renamed or removed since it started?)"
        )
    queue = row.queue_name
    if (
        row.status == WorkflowState.ENQUEUED
        and queue is not None
        and not any(queue in w.queue_names for w in able)
    ):
        return f"no live executor of app version {version!r} that has {name!r} serves queue {queue!r}"
    return None


def _first_time(engine: EngineHost, workflow_id: str) -> bool:
    with _reported_lock:
        seen = _reported.setdefault(engine, set())
        if workflow_id in seen:
            return False
        seen.add(workflow_id)
        return True


def _missing_name_hint(row: WorkflowRow) -> str:
    return (
        f"It resumes once an executor of app version {row.app_version!r} has a workflow registered under "
        f"the name {row.name!r} (restore the function, or give its new version @workflow(name={row.name!r}), "
        "and relaunch)."
    )


def _warn(engine: EngineHost, row: WorkflowRow, reason: str, hint: str) -> None:
    if not _first_time(engine, row.workflow_id):
        return
    log.warning(
        "Workflow %s (%s) cannot be resumed: %s. It stays PENDING (executor %s) and list_workflows() shows "
        "it as stranded. %s",
        row.workflow_id,
        row.name,
        reason,
        row.executor_id,
        hint,
    )


def report_own(engine: EngineHost) -> None:
    """At launch, after resuming its own workflows: those this executor owns but cannot run.

    Nobody else claims a live executor's workflows, so each is reported here: its function is
    not registered in this process, or it belongs to another app version.
    """
    names = set(registered_names())
    rows = engine.workflows.list(
        status=WorkflowState.PENDING, executor_id=engine.executor_id, limit=_ROWS_PER_CHECK
    )
    running = set(engine.active.ids())
    for row in rows:
        if row.workflow_id in running:
            continue
        if row.app_version != engine.app_version:
            reason = f"this executor runs app version {engine.app_version!r}, not {row.app_version!r}"
            hint = (
                f"Relaunch it with app_version={row.app_version!r} to resume it, or fork it with "
                "engine.fork_workflow(..., app_version=...)."
            )
            _warn(engine, row, reason, hint)
        elif row.name not in names:
            reason = (
                f"no workflow named {row.name!r} is registered in this process (renamed or removed since it "
                "started?)"
            )
            _warn(engine, row, reason, _missing_name_hint(row))


def report_dead_executor(engine: EngineHost, executor_id: str) -> None:
    """During a takeover, after the claim: the dead executor's workflows of this version left behind
    because no live executor has their function registered."""
    rows = engine.workflows.list(
        status=WorkflowState.PENDING,
        executor_id=executor_id,
        app_version=engine.app_version,
        limit=_ROWS_PER_CHECK,
    )
    with _reported_lock:
        seen = _reported.get(engine, set())
        rows = [r for r in rows if r.workflow_id not in seen]
    if not rows:
        return
    fleet = Fleet.read(engine, dead=executor_id)
    for row in rows:
        reason = stranded_reason(row, fleet)
        if reason is not None:
            _warn(engine, row, reason, _missing_name_hint(row))
