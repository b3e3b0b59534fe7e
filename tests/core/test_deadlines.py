"""Past its deadline a workflow ends CANCELLED, whatever its body raises (DESIGN §2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from durable_core import Engine, sleep, workflow, workflow_options
from durable_core.errors import AwaitedWorkflowCancelled


@workflow(name="deadline_child")
def deadline_child() -> str:
    sleep(5)  # outlives the deadline it inherits from its parent
    return "child done"


@workflow(name="deadline_parent")
def deadline_parent() -> str:
    # the wait for the child's result began before the deadline; the child's cancellation by the
    # deadline it inherited then makes this body raise
    return Engine.current().start_workflow(deadline_child).get_result()


@workflow(name="deadline_catching_parent")
def deadline_catching_parent() -> str:
    try:
        return Engine.current().start_workflow(deadline_child).get_result()
    except AwaitedWorkflowCancelled as exc:
        raise RuntimeError("the child was cancelled") from exc


@workflow(name="deadline_async_parent")
async def deadline_async_parent() -> str:
    handle = await Engine.current().start_workflow_async(deadline_child)
    return await handle.get_result_async()


@pytest.fixture
def quiet_engine(database_url: str) -> Iterator[Engine]:
    """No background sweep of overdue workflows during the test (a 30 s heartbeat): the child
    notices its inherited deadline itself, and the parent's body raises before any sweep."""
    engine = Engine(database_url, heartbeat_seconds=30, lease_seconds=60).launch()
    try:
        yield engine
    finally:
        engine.shutdown()


@pytest.mark.parametrize(
    "parent",
    [deadline_parent, deadline_catching_parent, deadline_async_parent],
    ids=["propagates", "wraps", "async"],
)
def test_a_parent_past_its_deadline_ends_cancelled_when_its_cancelled_child_makes_it_raise(
    quiet_engine: Engine, parent: Any
) -> None:
    with workflow_options(workflow_id="parent", timeout_seconds=1.0):
        handle = quiet_engine.start_workflow(parent)
    with pytest.raises(AwaitedWorkflowCancelled):
        handle.get_result(timeout_seconds=30)
    assert quiet_engine.get_workflow_status("parent-1").status == "CANCELLED"
    assert quiet_engine.get_workflow_status("parent").status == "CANCELLED"
