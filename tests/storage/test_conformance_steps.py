"""StepStore conformance, on both databases: the step record proves ownership in its own statement.

Protocol: `record` inserts the step row only while the workflow is PENDING and owned by the given
executor under the given epoch, and reports whether it inserted; a refused record writes nothing;
a second record of the same step keeps the first outcome; `load` returns the steps by id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from durable_core.storage import Database, StepStore, WorkflowStore
from durable_core.storage.steps import step_params

MakeWorkflow = Callable[..., str]  # the make_workflow fixture (tests/storage/conftest.py)


def _record(steps: StepStore, step_id: int = 1, **overrides: Any) -> bool:
    values: dict[str, Any] = {
        "workflow_id": "wf-1",
        "executor_id": "exec-a",
        "owner_epoch": 0,
        "step_id": step_id,
        "name": "s",
        "output": f'"out-{step_id}"',
        "error": None,
        "serialization": "json",
        "child_workflow_id": None,
        "started_at": 10,
        "completed_at": 20,
    }
    values.update(overrides)
    return steps.record(**values)


def test_the_owner_records_a_step_once(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("wf-1")
    steps = StepStore(db)
    assert _record(steps, usage='[{"tokens": 3}]') is True
    row = steps.get("wf-1", 1)
    assert row is not None
    assert (row.name, row.output, row.started_at, row.completed_at, row.usage) == (
        "s",
        '"out-1"',
        10,
        20,
        '[{"tokens": 3}]',
    )
    # the same step again (a retry after a lost acknowledgement): nothing changes, reported
    assert _record(steps, output='"other"') is False
    assert steps.get("wf-1", 1).output == '"out-1"'  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("executor_id", "owner_epoch"),
    [("exec-b", 0), ("exec-a", 1)],
    ids=["another-executor", "a-stale-epoch"],
)
def test_a_record_without_ownership_writes_nothing(
    db: Database, make_workflow: MakeWorkflow, executor_id: str, owner_epoch: int
) -> None:
    make_workflow("wf-1")
    steps = StepStore(db)
    assert _record(steps, executor_id=executor_id, owner_epoch=owner_epoch) is False
    assert steps.load("wf-1") == {}


def test_a_finished_or_taken_over_workflow_takes_no_more_steps(
    db: Database, make_workflow: MakeWorkflow
) -> None:
    make_workflow("wf-1")
    make_workflow("wf-2")
    workflows = WorkflowStore(db)
    steps = StepStore(db)
    assert workflows.finish(
        "wf-1", "exec-a", owner_epoch=0, status="SUCCESS", output="1", error=None, serialization="json", now=5
    )
    assert _record(steps) is False
    # a change of ownership bumps the epoch: the old epoch is refused, the new one accepted
    assert workflows.update("wf-2", {"executor_id": "exec-b"})
    assert _record(steps, workflow_id="wf-2", executor_id="exec-b", owner_epoch=0) is False
    assert _record(steps, workflow_id="wf-2", executor_id="exec-b", owner_epoch=1) is True


def test_load_returns_every_step_by_id(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("wf-1")
    steps = StepStore(db)
    for step_id in (3, 1, 2):
        assert _record(steps, step_id)
    loaded = steps.load("wf-1")
    assert list(loaded) == [1, 2, 3]
    assert [row.output for row in loaded.values()] == ['"out-1"', '"out-2"', '"out-3"']
    assert steps.load("unknown") == {}


def test_record_in_is_the_same_guarded_insert_inside_a_transaction(
    db: Database, make_workflow: MakeWorkflow
) -> None:
    make_workflow("wf-1")
    steps = StepStore(db)
    owned = step_params(
        workflow_id="wf-1",
        executor_id="exec-a",
        owner_epoch=0,
        step_id=1,
        name="s",
        started_at=1,
        completed_at=2,
    )
    with db.write() as conn:
        assert steps.record_in(conn, owned) is True
        assert steps.record_in(conn, {**owned, "step_id": 2, "owner_epoch": 7}) is False
    assert list(steps.load("wf-1")) == [1]
