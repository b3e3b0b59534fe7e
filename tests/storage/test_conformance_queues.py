"""QueueStore conformance, on both databases.

Protocol: `claim` moves ENQUEUED workflows of a queue to PENDING under the claimer (bumping the
ownership epoch), oldest first (or by priority), never more than the claimer's free slots or the
queue's concurrency; concurrent claimers never claim one workflow twice; `requeue` gives claimed
work back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from durable_core.storage import ClaimRequest, Database, QueueStore, WorkflowStore

MakeWorkflow = Callable[..., str]  # the make_workflow fixture (tests/storage/conftest.py)


def _request(executor_id: str = "worker-1", **overrides: object) -> ClaimRequest:
    values: dict[str, object] = {
        "queue_name": "q",
        "executor_id": executor_id,
        "app_version": "v1",
        "names": ["wf"],
        "max_claims": 10,
        "concurrency": None,
        "rate_limit": None,
        "rate_period_ms": None,
        "by_priority": False,
        "now": 2_000,
    }
    values.update(overrides)
    return ClaimRequest(**values)  # type: ignore[arg-type]


def _enqueue(make_workflow: MakeWorkflow, count: int, **columns: object) -> list[str]:
    return [
        make_workflow(
            f"q-{n}", status="ENQUEUED", executor_id=None, queue_name="q", created_at=1_000 + n, **columns
        )
        for n in range(count)
    ]


def test_claims_oldest_first_within_the_free_slots(db: Database, make_workflow: MakeWorkflow) -> None:
    ids = _enqueue(make_workflow, 5)
    queues, workflows = QueueStore(db), WorkflowStore(db)
    assert queues.pending_queues(["q", "empty"]) == {"q"}
    claimed = queues.claim(_request(max_claims=2)).rows
    assert [row.workflow_id for row in claimed] == ids[:2]
    assert all(
        row.status == "PENDING" and row.executor_id == "worker-1" and row.owner_epoch == 1 for row in claimed
    )
    # concurrency 3 with 2 running: one more
    assert [row.workflow_id for row in queues.claim(_request(concurrency=3)).rows] == [ids[2]]
    # names this worker cannot run and other app versions are left alone
    assert queues.claim(_request(names=["other"])).rows == []
    assert queues.claim(_request(app_version="v2")).rows == []
    queues.requeue(ids[:2], now=3_000)
    row = workflows.get(ids[0])
    assert row is not None and (row.status, row.executor_id, row.owner_epoch) == ("ENQUEUED", None, 2)
    assert queues.owned_queue_workflows("worker-1") == [ids[2]]


def test_priority_orders_claims(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("low", status="ENQUEUED", executor_id=None, queue_name="q", priority=5, created_at=1)
    make_workflow("high", status="ENQUEUED", executor_id=None, queue_name="q", priority=1, created_at=2)
    claimed = QueueStore(db).claim(_request(by_priority=True, max_claims=1)).rows
    assert [row.workflow_id for row in claimed] == ["high"]


def test_concurrent_claimers_each_win_different_workflows(db: Database, make_workflow: MakeWorkflow) -> None:
    ids = _enqueue(make_workflow, 12)
    queues = QueueStore(db)
    barrier = threading.Barrier(3)
    won: dict[str, list[str]] = {}

    def claim(worker: str) -> None:
        barrier.wait()
        won[worker] = [row.workflow_id for row in queues.claim(_request(worker, max_claims=5)).rows]

    threads = [threading.Thread(target=claim, args=(f"worker-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    every = [wid for claimed in won.values() for wid in claimed]
    assert len(every) == len(set(every)) == 12  # each workflow exactly once
    assert sorted(every) == sorted(ids)
    workflows = WorkflowStore(db)
    for worker, claimed in won.items():
        assert all(workflows.get(wid).executor_id == worker for wid in claimed)  # type: ignore[union-attr]


def test_a_global_concurrency_limit_holds_under_concurrent_claimers(
    db: Database, make_workflow: MakeWorkflow
) -> None:
    _enqueue(make_workflow, 10)
    queues = QueueStore(db)
    barrier = threading.Barrier(4)
    won: list[int] = []

    def claim(worker: str) -> None:
        barrier.wait()
        won.append(len(queues.claim(_request(worker, concurrency=3)).rows))

    threads = [threading.Thread(target=claim, args=(f"worker-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(won) == 3
