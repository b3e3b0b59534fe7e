"""One body, ever: a process that runs a workflow is an executor, and a process that lost a
workflow stops it at the next step boundary (DESIGN §2 "One body, ever", §3 hot path).

Real processes and an external fsynced ledger (tests/apps/core_ownership_app.py): every step body appends
``workflow,step,pid`` before it returns, so executions are counted independently of the
library's own records.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import core_ownership_app as ownership_app
import pytest
import sqlalchemy as sa

from durable_core import Engine, workflow_options
from durable_core.errors import OwnershipLost, WorkflowCancelled

pytestmark = pytest.mark.crash
APP = str(Path(ownership_app.__file__))


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ledger.csv"
    monkeypatch.setenv(ownership_app.LEDGER_ENV, str(path))
    return path


@pytest.fixture
def survivor(database_url: str, ledger: Path) -> Iterator[Engine]:
    """The test's own launched engine: short lease, the workflow registered, so it can take over."""
    engine = Engine(database_url, heartbeat_seconds=0.2, lease_seconds=1.0, executor_id="survivor")
    engine.launch()
    try:
        yield engine
    finally:
        engine.shutdown()


def spawn(
    url: str, ledger: Path, mode: str, workflow_id: str, step_seconds: float = 0.3
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, APP, url, str(ledger), mode, workflow_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "STEP_SECONDS": str(step_seconds)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr and process.stderr.read()
    return process


def wait_for_steps(ledger: Path, workflow_id: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len([r for r in ownership_app.read_ledger(str(ledger)) if r[0] == workflow_id]) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(
        f"{workflow_id} did not reach {count} steps: {ownership_app.read_ledger(str(ledger))}"
    )


def executions(ledger: Path, workflow_id: str) -> collections.Counter[int]:
    return collections.Counter(r[1] for r in ownership_app.read_ledger(str(ledger)) if r[0] == workflow_id)


def finish(process: subprocess.Popen[str]) -> str:
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return out + err


EXPECTED = sum(i * 10 for i in range(1, ownership_app.STEPS + 1))


def test_a_client_engine_that_runs_a_workflow_is_never_taken_over(
    database_url: str, ledger: Path, survivor: Engine
) -> None:
    """A workflow started from `Engine.connect()` runs in the client's process; a launched engine
    with a 1 s lease watches the whole run (several leases long) and must not judge it dead."""
    client = spawn(database_url, ledger, "client", "client-wf")
    output = finish(client)
    counts = executions(ledger, "client-wf")
    print(f"client-engine run: executions per step {dict(sorted(counts.items()))}")
    assert f"result {EXPECTED}" in output, output
    assert counts == {i: 1 for i in range(1, ownership_app.STEPS + 1)}, counts
    status = survivor.get_workflow_status("client-wf")
    assert status.status == "SUCCESS" and status.executor_id is not None
    assert status.executor_id.startswith("client-"), status.executor_id
    assert status.recovery_attempts == 0


def test_cancel_then_resume_elsewhere_stops_the_first_body(
    database_url: str, ledger: Path, survivor: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel while worker W runs the workflow, resume it from another engine R: W stops at its
    next step boundary (its in-flight step may complete), R runs every later step once, and W's
    caller sees R's outcome. R's steps are faster than W's, so R records W's in-flight step
    before W finishes it: that existing row must not pass for W's own."""
    monkeypatch.setenv("STEP_SECONDS", "0.05")
    worker = spawn(database_url, ledger, "launched", "cancel-wf", step_seconds=0.8)
    pid = worker.pid
    wait_for_steps(ledger, "cancel-wf", 3)
    survivor.cancel_workflow("cancel-wf")
    handle = survivor.resume_workflow("cancel-wf")
    assert handle.get_result(timeout_seconds=60) == EXPECTED
    output = finish(worker)
    rows = [r for r in ownership_app.read_ledger(str(ledger)) if r[0] == "cancel-wf"]
    counts = collections.Counter(r[1] for r in rows)
    by_worker_after = [r[1] for r in rows[3:] if r[2] == pid]
    print(
        f"cancel/resume: executions per step {dict(sorted(counts.items()))}; worker after cancel: {by_worker_after}"
    )
    assert set(counts) == set(range(1, ownership_app.STEPS + 1))
    assert len(by_worker_after) <= 1, f"the cancelled body kept running steps {by_worker_after}"
    duplicates = [s for s, n in counts.items() if n > 1]
    assert len(duplicates) <= 1 and all(counts[s] == 2 for s in duplicates), counts
    assert f"result {EXPECTED}" in output, output  # W's caller sees the owner's outcome


def test_a_frozen_executor_taken_over_runs_no_further_step_when_thawed(
    database_url: str, ledger: Path, survivor: Engine
) -> None:
    """SIGSTOP an executor inside a step past its lease; the survivor takes over and finishes;
    SIGCONT: the thawed process may complete its in-flight step but records nothing and runs no
    later step."""
    worker = spawn(database_url, ledger, "launched", "frozen-wf")
    pid = worker.pid
    wait_for_steps(ledger, "frozen-wf", 2)
    time.sleep(ownership_app.STEP_SECONDS / 3)  # inside step 3
    os.kill(pid, signal.SIGSTOP)
    try:
        result = survivor.retrieve_workflow("frozen-wf").get_result(timeout_seconds=60)
        assert result == EXPECTED
        before_thaw = len(ownership_app.read_ledger(str(ledger)))
    finally:
        os.kill(pid, signal.SIGCONT)
    output = finish(worker)
    rows = ownership_app.read_ledger(str(ledger))
    after_thaw = [r[1] for r in rows[before_thaw:] if r[2] == pid]
    counts = executions(ledger, "frozen-wf")
    print(
        f"freeze/takeover: executions per step {dict(sorted(counts.items()))}; thawed body ran {after_thaw}"
    )
    assert len(after_thaw) <= 1, f"the thawed body kept running steps {after_thaw}"
    assert all(n == 1 for s, n in counts.items() if s not in (3,)), counts
    status = survivor.get_workflow_status("frozen-wf")
    assert status.status == "SUCCESS" and status.executor_id == "survivor"
    assert f"result {EXPECTED}" in output, output


def test_a_step_row_written_by_the_new_owner_is_not_taken_as_our_own(database_url: str, ledger: Path) -> None:
    """In one process: the recorded step exists, but another execution owns the workflow now.
    The old execution's refused write must stop its body (OwnershipLost), not continue."""
    from durable_core import step, workflow
    from durable_core._context import _current
    from durable_core._run import WorkflowRun

    engine = Engine(database_url, heartbeat_seconds=0.2, lease_seconds=1.0).launch()
    try:
        seen: list[int] = []

        @step(name="own_step")
        def own_step(i: int) -> int:
            seen.append(i)
            return i

        @workflow(name="own_wf")
        def own_wf() -> int:
            return own_step(1) + own_step(2)

        assert own_wf() == 3
        row = engine.workflows.get(next(iter(engine.list_workflows(name="own_wf"))).workflow_id)
        assert row is not None
        # the row is taken by another owner (PENDING under a new epoch, as a resume elsewhere does)
        with sa.create_engine(database_url).begin() as conn:
            if engine.database.dialect == "postgresql":
                conn.exec_driver_sql("SET search_path TO durable")
            conn.execute(
                sa.text(
                    "UPDATE workflows SET status = 'PENDING', executor_id = 'elsewhere', "
                    "owner_epoch = owner_epoch + 1 WHERE workflow_id = :wid"
                ),
                {"wid": row.workflow_id},
            )
        stale = WorkflowRun(engine, row.workflow_id, "own_wf", {}, None, owner_epoch=row.owner_epoch)
        token = _current.set(stale)
        try:
            with pytest.raises(OwnershipLost):
                own_step(1)  # step 1's row exists (written earlier): not proof that we own it
            with pytest.raises(WorkflowCancelled):
                own_step(2)  # nothing more runs
        finally:
            _current.reset(token)
        assert seen == [1, 2, 1], seen
    finally:
        engine.shutdown()


def test_cancel_then_resume_in_the_same_process_replaces_the_cancelled_body(
    database_url: str, ledger: Path, survivor: Engine
) -> None:
    """The cancelled body is still inside a step when the same engine resumes the workflow: the
    resume runs it (it is not mistaken for 'already running here'), and the old body stops at its
    next step boundary."""
    with workflow_options(workflow_id="same-process-wf"):
        handle = survivor.start_workflow(ownership_app.slow_workflow, "same-process-wf")
    wait_for_steps(ledger, "same-process-wf", 2)
    survivor.cancel_workflow("same-process-wf")
    resumed = survivor.resume_workflow("same-process-wf")
    assert resumed.get_result(timeout_seconds=60) == EXPECTED
    assert handle.get_result(timeout_seconds=60) == EXPECTED  # the first caller sees the outcome
    counts = executions(ledger, "same-process-wf")
    print(f"same-process cancel/resume: executions per step {dict(sorted(counts.items()))}")
    assert set(counts) == set(range(1, ownership_app.STEPS + 1))
    assert sum(counts.values()) <= ownership_app.STEPS + 1, counts
    assert survivor.get_workflow_status("same-process-wf").status == "SUCCESS"


def test_a_claim_rechecks_the_lease_it_judged_expired(database_url: str) -> None:
    """The takeover decides 'dead' on an earlier read; the claim itself re-checks the lease, so an
    executor that heartbeat in between (a thawed process) keeps its workflows."""
    from durable_core._runtime import now_ms

    engine = Engine(database_url, heartbeat_seconds=0.2, lease_seconds=1.0, executor_id="claimer").launch()
    try:
        now = now_ms()
        engine.workflows.insert(
            {
                "workflow_id": "thawed-wf",
                "name": "slow_workflow",
                "status": "PENDING",
                "serialization": "json",
                "created_at": now,
                "updated_at": now,
                "executor_id": "thawed",
                "app_version": engine.app_version,
                "recovery_attempts": 0,
                "priority": 0,
            }
        )
        # its heartbeat is fresh again (it was judged dead a moment ago, on a stale read)
        engine.executors.heartbeat(
            "thawed", hostname="elsewhere", pid=1, app_version="x", lease_ms=1000, now=now
        )
        claim = {"from_executor": "thawed", "to_executor": "claimer", "app_version": engine.app_version}
        assert engine.executors.claim(**claim, now=now, unless_alive_at=now) == []
        assert engine.workflows.get("thawed-wf").executor_id == "thawed"  # type: ignore[union-attr]
        # once the lease has really lapsed, the same claim succeeds, once
        later = now + 5_000
        claimed = engine.executors.claim(**claim, now=later, unless_alive_at=later)
        assert [c.workflow_id for c in claimed] == ["thawed-wf"]
        assert engine.executors.claim(**claim, now=later, unless_alive_at=later) == []
    finally:
        engine.shutdown()
