"""ExecutorStore conformance, on both databases.

Protocol: `heartbeat` inserts or renews an executor's lease; `claim` moves a dead executor's
PENDING workflows to the claimer in one statement guarded by the previous owner (each workflow to
exactly one of several concurrent claimers), bumping the epoch and counting a recovery; with
`unless_alive_at` a claim takes nothing from an executor whose lease is fresh.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from durable_core.storage import Database, ExecutorStore, WorkflowStore

MakeWorkflow = Callable[..., str]  # the make_workflow fixture (tests/storage/conftest.py)


def _beat(executors: ExecutorStore, executor_id: str, now: int) -> None:
    executors.heartbeat(
        executor_id, hostname="h", pid=1, app_version="v1", lease_ms=1_000, now=now, workflow_names=["wf"]
    )


def test_heartbeats_renew_a_lease(db: Database) -> None:
    executors = ExecutorStore(db)
    _beat(executors, "exec-a", 1_000)
    _beat(executors, "exec-a", 5_000)
    row = executors.get("exec-a")
    assert row is not None and (row.heartbeat_at, row.lease_ms) == (5_000, 1_000)
    assert [r[0] for r in executors.live(5_500)] == ["exec-a"]
    assert executors.live(7_000) == []
    assert executors.advertised()[0] == {"wf"}
    executors.remove("exec-a")
    assert executors.get("exec-a") is None


def test_a_claim_moves_the_dead_executors_workflows_and_bumps_their_epoch(
    db: Database, make_workflow: MakeWorkflow
) -> None:
    make_workflow("wf-1")
    make_workflow("wf-2", status="SUCCESS")
    make_workflow("wf-3", executor_id="exec-b")
    claimed = ExecutorStore(db).claim(from_executor="exec-a", to_executor="exec-c", app_version="v1", now=9)
    assert [(c.workflow_id, c.recovery_attempts, c.owner_epoch) for c in claimed] == [("wf-1", 1, 1)]
    workflows = WorkflowStore(db)
    assert workflows.get("wf-1").executor_id == "exec-c"  # type: ignore[union-attr]
    assert workflows.get("wf-3").executor_id == "exec-b"  # type: ignore[union-attr]


def test_a_fresh_lease_keeps_its_workflows(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("wf-1")
    executors = ExecutorStore(db)
    _beat(executors, "exec-a", 10_000)  # alive until 11_000
    assert (
        executors.claim(
            from_executor="exec-a", to_executor="exec-c", app_version="v1", now=10_500, unless_alive_at=10_500
        )
        == []
    )
    claimed = executors.claim(
        from_executor="exec-a", to_executor="exec-c", app_version="v1", now=12_000, unless_alive_at=12_000
    )
    assert [c.workflow_id for c in claimed] == ["wf-1"]


def test_one_winner_per_workflow_among_concurrent_claimers(db: Database, make_workflow: MakeWorkflow) -> None:
    ids = [make_workflow(f"wf-{n}") for n in range(8)]
    executors = ExecutorStore(db)
    barrier = threading.Barrier(4)
    won: dict[str, list[str]] = {}

    def claim(claimer: str) -> None:
        barrier.wait()
        won[claimer] = [
            c.workflow_id
            for c in executors.claim(from_executor="exec-a", to_executor=claimer, app_version="v1", now=9)
        ]

    threads = [threading.Thread(target=claim, args=(f"survivor-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    every = [wid for claimed in won.values() for wid in claimed]
    assert sorted(every) == sorted(ids)  # each workflow claimed exactly once
    assert sum(1 for claimed in won.values() if claimed) == 1  # one statement takes them all
    workflows = WorkflowStore(db)
    assert all(workflows.get(wid).owner_epoch == 1 for wid in ids)  # type: ignore[union-attr]
