"""A workflow whose function was renamed since it ran can be forked under the new name."""

from __future__ import annotations

from typing import Any

from durable_core import step, workflow, workflow_options

ran: list[int] = []


@step(name="rename_step")
def rename_step(i: int) -> int:
    ran.append(i)
    return i


@workflow(name="before_rename")
def before_rename() -> int:
    return rename_step(1) + rename_step(2)


@workflow(name="after_rename")
def after_rename() -> int:  # the same code under its new name, one step longer
    return rename_step(1) + rename_step(2) + rename_step(3)


def test_fork_under_the_new_name_replays_the_recorded_steps(engine: Any) -> None:
    with workflow_options(workflow_id="old-run"):
        assert before_rename() == 3
    ran.clear()
    handle = engine.fork_workflow("old-run", 3, new_workflow_id="renamed-run", name="after_rename")
    assert handle.get_result(timeout_seconds=30) == 6
    assert ran == [3]  # steps 1 and 2 were copied from the old run, never executed again
    status = engine.get_workflow_status("renamed-run")
    assert status.name == "after_rename" and status.forked_from == "old-run"
