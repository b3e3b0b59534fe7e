"""WorkflowStore conformance, on both databases.

Protocol: a workflow id is created once (`insert` reports whether this call created it); a child
row and its parent's "start child" step commit together, only while the parent is owned by the
caller (else None and nothing written); `finish` records an outcome only for the owner under its
epoch; ownership changes (`update` of status/executor, `cancel_tree`) bump the epoch; a unique key
taken twice (a queue deduplication id) raises `DuplicateKey`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from storage_fixtures import workflow_values

from durable_core.errors import DuplicateKey
from durable_core.storage import Database, ParentStep, StepStore, WorkflowStore

MakeWorkflow = Callable[..., str]  # the make_workflow fixture (tests/storage/conftest.py)


def test_an_id_is_created_once(db: Database) -> None:
    store = WorkflowStore(db)
    assert store.insert(workflow_values("wf-1")) is True
    assert store.insert(workflow_values("wf-1", name="another")) is False
    row = store.get("wf-1")
    assert row is not None and row.name == "wf" and row.owner_epoch == 0


def test_a_child_is_created_with_its_parents_step_only_by_the_parents_owner(
    db: Database, make_workflow: MakeWorkflow
) -> None:
    make_workflow("parent")
    store, steps = WorkflowStore(db), StepStore(db)
    stale = ParentStep("parent", 1, "child_wf", "exec-a", owner_epoch=5)
    assert store.insert(workflow_values("parent-1", parent_workflow_id="parent"), parent_step=stale) is None
    assert store.get("parent-1") is None and steps.load("parent") == {}

    owner = ParentStep("parent", 1, "child_wf", "exec-a", owner_epoch=0)
    assert store.insert(workflow_values("parent-1", parent_workflow_id="parent"), parent_step=owner) is True
    step = steps.get("parent", 1)
    assert step is not None and (step.name, step.child_workflow_id) == ("child_wf", "parent-1")
    # again (a retry): the row exists, the step is kept
    assert store.insert(workflow_values("parent-1", parent_workflow_id="parent"), parent_step=owner) is False


def test_only_the_owner_finishes_under_its_epoch(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("wf-1")
    store = WorkflowStore(db)

    def finish(executor_id: str, epoch: int) -> bool:
        return store.finish(
            "wf-1",
            executor_id,
            owner_epoch=epoch,
            status="SUCCESS",
            output="1",
            error=None,
            serialization="json",
            now=9,
        )

    assert finish("exec-b", 0) is False
    assert finish("exec-a", 3) is False
    assert store.get("wf-1").status == "PENDING"  # type: ignore[union-attr]
    assert finish("exec-a", 0) is True
    assert finish("exec-a", 0) is False  # finished already
    row = store.get("wf-1")
    assert row is not None and (row.status, row.output) == ("SUCCESS", "1")


def test_ownership_changes_bump_the_epoch(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("root")
    make_workflow("root-1", parent_workflow_id="root")
    make_workflow("root-1-1", parent_workflow_id="root-1")
    make_workflow("done", status="SUCCESS", parent_workflow_id="root")
    store = WorkflowStore(db)
    assert store.update("root", {"executor_id": "exec-b"}) is True
    assert store.get("root").owner_epoch == 1  # type: ignore[union-attr]
    assert store.update("root", {"priority": 3}) is True  # not an ownership change
    assert store.get("root").owner_epoch == 1  # type: ignore[union-attr]
    assert sorted(store.cancel_tree("root", now=50)) == ["root", "root-1", "root-1-1"]
    assert [store.get(w).status for w in ("root", "root-1", "root-1-1", "done")] == [  # type: ignore[union-attr]
        "CANCELLED",
        "CANCELLED",
        "CANCELLED",
        "SUCCESS",
    ]
    assert store.get("root").owner_epoch == 2  # type: ignore[union-attr]
    assert store.cancel_tree("root", now=60) == []  # nothing left to cancel


def test_a_taken_deduplication_id_raises_duplicate_key(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("q-1", status="ENQUEUED", executor_id=None, queue_name="q", deduplication_id="doc-7")
    store = WorkflowStore(db)
    with pytest.raises(DuplicateKey):
        store.insert(
            workflow_values(
                "q-2", status="ENQUEUED", executor_id=None, queue_name="q", deduplication_id="doc-7"
            )
        )
    assert store.get("q-2") is None
    # another queue, or no deduplication id: no conflict
    assert store.insert(workflow_values("q-3", queue_name="other", deduplication_id="doc-7")) is True
    assert store.insert(workflow_values("q-4", queue_name="q")) is True
    # a finished workflow frees its deduplication id
    store.update("q-1", {"status": "PENDING", "executor_id": "exec-a"})
    assert store.finish(
        "q-1", "exec-a", owner_epoch=1, status="SUCCESS", output="1", error=None, serialization="json", now=9
    )
    assert store.insert(workflow_values("q-5", queue_name="q", deduplication_id="doc-7")) is True
