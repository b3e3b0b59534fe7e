"""`resume_workflow` on a workflow in ERROR: it runs again from the step that failed (SQLite and Postgres).

The steps recorded before the failure replay from their records (they never run again); the
failed step runs again; a workflow that raised from its own body (not from a step) replays all
its steps and continues with the fixed code. SUCCESS stays a no-op.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from durable_core import Engine, RecordedError, step, workflow, workflow_options

ran: list[str] = []
broken = {"step": True, "body": True}


@pytest.fixture(autouse=True)
def _reset() -> None:
    ran.clear()
    broken.update(step=True, body=True)


@step()
def charge(order: str) -> str:
    ran.append(f"charge:{order}")
    return f"charged {order}"


@step()
def ship(order: str) -> str:
    ran.append(f"ship:{order}")
    if broken["step"]:
        raise RuntimeError("carrier API down")
    return f"shipped {order}"


@step()
def notify(order: str) -> str:
    ran.append(f"notify:{order}")
    return f"notified {order}"


@workflow()
def fulfil(order: str) -> list[str]:
    return [charge(order), ship(order), notify(order)]


@workflow()
def checks_total(order: str) -> str:
    charged = charge(order)
    if broken["body"]:
        raise ValueError("total mismatch")
    return charged + " and checked"


@workflow()
def tolerant(order: str) -> str:
    try:
        ship(order)
    except RuntimeError:
        ran.append("caught")
    noted = notify(order)
    if broken["body"]:
        raise ValueError("still broken")
    return noted


def _fail(engine: Engine, fn: Any, workflow_id: str) -> None:
    with workflow_options(workflow_id=workflow_id):
        handle = engine.start_workflow(fn, "o-1")
    with pytest.raises((RuntimeError, ValueError)):
        handle.get_result(timeout_seconds=30)
    assert engine.get_workflow_status(workflow_id).status == "ERROR"


def test_a_failed_step_runs_again_and_earlier_steps_replay(engine: Engine) -> None:
    _fail(engine, fulfil, "wf-step")
    assert ran == ["charge:o-1", "ship:o-1"]
    broken["step"] = False  # the bug is fixed

    handle = engine.resume_workflow("wf-step")
    assert handle.get_result(timeout_seconds=30) == ["charged o-1", "shipped o-1", "notified o-1"]
    # charge ran once in all; ship once failing, once fixed; notify once
    assert ran == ["charge:o-1", "ship:o-1", "ship:o-1", "notify:o-1"]
    status = engine.get_workflow_status("wf-step")
    assert status.status == "SUCCESS" and status.error is None
    steps = engine.list_steps("wf-step")
    assert [(s.step_id, s.name.rsplit(".", 1)[-1], s.error) for s in steps] == [
        (1, "charge", None),
        (2, "ship", None),
        (3, "notify", None),
    ]


def test_a_body_failure_replays_every_step(engine: Engine) -> None:
    _fail(engine, checks_total, "wf-body")
    broken["body"] = False
    assert engine.resume_workflow("wf-body").get_result(timeout_seconds=30) == "charged o-1 and checked"
    assert ran == ["charge:o-1"]  # the recorded step replayed


def test_a_caught_step_error_keeps_its_record(engine: Engine) -> None:
    """Only the last step's error is dropped: an earlier failure the body handled replays as it was."""
    _fail(engine, tolerant, "wf-tolerant")
    assert ran == ["ship:o-1", "caught", "notify:o-1"]
    broken["body"] = False
    broken["step"] = False  # had ship run again it would now succeed and skip "caught"
    assert engine.resume_workflow("wf-tolerant").get_result(timeout_seconds=30) == "notified o-1"
    assert ran == ["ship:o-1", "caught", "notify:o-1", "caught"]
    first = engine.list_steps("wf-tolerant")[0]
    assert isinstance(first.error, RecordedError | RuntimeError)


def test_still_broken_ends_in_error_again_and_can_be_resumed_again(engine: Engine) -> None:
    _fail(engine, fulfil, "wf-again")
    with pytest.raises(RuntimeError, match="carrier API down"):
        engine.resume_workflow("wf-again").get_result(timeout_seconds=30)
    assert engine.get_workflow_status("wf-again").status == "ERROR"
    broken["step"] = False
    assert engine.resume_workflow("wf-again").get_result(timeout_seconds=30)[1] == "shipped o-1"
    assert ran.count("charge:o-1") == 1 and ran.count("ship:o-1") == 3


def test_success_is_left_alone(engine: Engine) -> None:
    broken["step"] = False
    with workflow_options(workflow_id="wf-done"):
        assert fulfil("o-1")[0] == "charged o-1"
    before = engine.get_workflow_status("wf-done")
    assert engine.resume_workflow("wf-done").get_result(timeout_seconds=30)[2] == "notified o-1"
    assert ran == ["charge:o-1", "ship:o-1", "notify:o-1"]
    assert engine.get_workflow_status("wf-done").updated_at == before.updated_at


def test_racing_resumes_run_it_once(engine: Engine) -> None:
    _fail(engine, fulfil, "wf-race")
    broken["step"] = False
    barrier = threading.Barrier(4)
    results: list[list[str]] = []

    def resume() -> None:
        barrier.wait()
        results.append(engine.resume_workflow("wf-race").get_result(timeout_seconds=30))

    threads = [threading.Thread(target=resume) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4 and all(r == results[0] for r in results)
    assert ran.count("ship:o-1") == 2 and ran.count("notify:o-1") == 1 and ran.count("charge:o-1") == 1
