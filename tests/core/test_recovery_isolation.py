"""Each workflow is recovered in isolation: one whose inputs cannot be decoded ends in ERROR (the
others recover), one whose function is missing is reported (a log line, `stranded` in
`list_workflows` and the CLI) and resumes once the code is back. Real executors die for real."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console

from durable_core import Engine, Queue, SerializationError, recv, step, workflow, workflow_options
from durable_core.cli import _render

APP = str(Path(__file__).parents[1] / "apps" / "core_isolation_app.py")
pytestmark = pytest.mark.crash

# `iso_flow` and its steps as the app defines them (a worker is matched by names, not modules)


@step(name="iso_first")
def iso_first(i: int) -> int:
    return i


@step(name="iso_hold")
def iso_hold(i: int) -> int:
    return i * 10


@workflow(name="iso_flow")
def iso_flow(i: int) -> int:
    return iso_first(i) + iso_hold(i)


@workflow(name="iso_waiter")
def iso_waiter(i: int) -> int:
    return i + int(recv("go", timeout_seconds=60) or 0)


@workflow(name="iso_manual", auto_recover=False)
def iso_manual(i: int) -> int:
    return i + int(recv("go", timeout_seconds=60) or 0)


iso_queue = Queue("iso_q")

UNDECODABLE = '{"args": [{"not": "an int"}], "kwargs": {}}'  # JSON, but not the `int` its annotation asks


def run_app(url: str, mode: str, stop_file: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, APP, url, mode, str(stop_file)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def spawn_app(url: str, mode: str, stop_file: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, APP, url, mode, str(stop_file)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_app(process: subprocess.Popen[str], stop_file: Path) -> str:
    """Ask a serving app to shut down; return its stderr."""
    stop_file.touch()
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err


def execute_sql(url: str, sql: str, **params: object) -> None:
    """A direct write on a separate SQLAlchemy connection, as a hand edit (or a bad migration) would."""
    table_prefix = "" if url.startswith("sqlite") else "durable."
    db = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with db.begin() as conn:
            conn.execute(sa.text(sql.replace("{schema}", table_prefix)), params)
    finally:
        db.dispose()


def corrupt_inputs(url: str, workflow_id: str) -> None:
    execute_sql(
        url, "UPDATE {schema}workflows SET inputs = :v WHERE workflow_id = :id", v=UNDECODABLE, id=workflow_id
    )


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def logged(caplog: pytest.LogCaptureFixture, *words: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.levelno >= logging.WARNING and all(w in r.getMessage() for w in words)
    ]


def test_one_undecodable_workflow_does_not_strand_the_dead_executors_others(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ids = ["ok-1", "ok-2", "bad-1", "ok-3"]
    start = run_app(
        database_url, "start", tmp_path / "stop", EXECUTOR_ID="dead-4", ISO_IDS=",".join(ids), HOLD="1"
    )
    assert start.returncode == 1, start.stderr  # died mid-run, owning all four
    corrupt_inputs(database_url, "bad-1")
    caplog.set_level(logging.WARNING, logger="durable_core")

    # a survivor takes the dead executor's workflows over at launch (its process is gone)
    with Engine(database_url, heartbeat_seconds=0.2, lease_seconds=1.0) as survivor:
        for i, workflow_id in enumerate(ids, 1):
            handle = survivor.retrieve_workflow(workflow_id)
            if workflow_id == "bad-1":
                with pytest.raises(SerializationError, match="bad-1") as info:
                    handle.get_result(timeout_seconds=30)
                assert "iso_flow" in str(info.value) and "cannot be decoded" in str(info.value)
            else:
                assert handle.get_result(timeout_seconds=30) == i + i * 10
        statuses = {s.workflow_id: s for s in survivor.list_workflows()}
    assert {wid: s.status for wid, s in statuses.items()} == {
        "ok-1": "SUCCESS",
        "ok-2": "SUCCESS",
        "bad-1": "ERROR",
        "ok-3": "SUCCESS",
    }
    error = statuses["bad-1"].error
    assert isinstance(error, SerializationError) and "bad-1" in str(error) and "iso_flow" in str(error)
    assert logged(caplog, "bad-1", "cannot be decoded"), [r.getMessage() for r in caplog.records]


def test_undecodable_inputs_on_resume_queue_start_and_direct_call(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable_core")
    first = Engine(database_url, executor_id="iso-a", heartbeat_seconds=0.2, lease_seconds=1.0, queues=[])
    first.launch()
    try:
        with workflow_options(workflow_id="res-1"):
            first.start_workflow(iso_waiter, 1)
        wait_for(lambda: first.get_workflow_status("res-1").waiting is not None, 20, "res-1 to wait")
        first.cancel_workflow("res-1")
        for n in (1, 2, 3):  # queued here, served by the next engine only (this one serves no user queue)
            with workflow_options(workflow_id=f"q-{n}"):
                iso_queue.enqueue(iso_flow, n)
        with workflow_options(workflow_id="man-1"):
            first.start_workflow(iso_manual, 1)
        wait_for(lambda: first.get_workflow_status("man-1").waiting is not None, 20, "man-1 to wait")
    finally:
        first.shutdown()  # man-1 stays PENDING, owned by iso-a
    for workflow_id in ("res-1", "q-2", "man-1"):
        corrupt_inputs(database_url, workflow_id)
    execute_sql(database_url, "UPDATE {schema}executors SET heartbeat_at = 0 WHERE executor_id = 'iso-a'")

    with Engine(database_url, heartbeat_seconds=0.2, lease_seconds=1.0) as second:
        # the queue dispatcher starts q-1..q-3 in one batch: the bad one ends in ERROR, the rest run
        assert second.retrieve_workflow("q-1").get_result(timeout_seconds=30) == 11
        assert second.retrieve_workflow("q-3").get_result(timeout_seconds=30) == 33
        with pytest.raises(SerializationError, match="q-2"):
            second.retrieve_workflow("q-2").get_result(timeout_seconds=30)
        # resume_workflow: a recorded ERROR, not a raw decode error from the call
        handle = second.resume_workflow("res-1")
        with pytest.raises(SerializationError, match="res-1"):
            handle.get_result(timeout_seconds=30)
        # a direct call under the id of an orphan (adopted, not auto-recovered)
        with workflow_options(workflow_id="man-1"), pytest.raises(SerializationError, match="man-1"):
            iso_manual(1)
        assert "man-1" not in second.active
        statuses = {s.workflow_id: s.status for s in second.list_workflows()}
    assert statuses == {
        "res-1": "ERROR",
        "q-1": "SUCCESS",
        "q-2": "ERROR",
        "q-3": "SUCCESS",
        "man-1": "ERROR",
    }
    for workflow_id in ("res-1", "q-2", "man-1"):
        assert logged(caplog, workflow_id, "cannot be decoded"), workflow_id


def test_missing_function_at_takeover_is_reported_and_resumes_once_the_code_is_back(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start = run_app(
        database_url,
        "start",
        tmp_path / "stop",
        EXECUTOR_ID="dead-5",
        ISO_IDS="ok-1",
        GONE_IDS="gone-1",
        WITH_GONE="1",
        HOLD="1",
    )
    assert start.returncode == 1, start.stderr
    caplog.set_level(logging.WARNING, logger="durable_core")
    # the survivor's code has no `gone_flow` (renamed or removed between the crash and now)
    with Engine(database_url, heartbeat_seconds=0.2, lease_seconds=1.0) as survivor:
        assert survivor.retrieve_workflow("ok-1").get_result(timeout_seconds=30) == 11
        wait_for(lambda: bool(logged(caplog, "gone-1", "gone_flow")), 5, "a warning about gone-1")
        time.sleep(1.0)  # several heartbeat rounds later: still reported once
        assert len(logged(caplog, "gone-1", "gone_flow")) == 1

        status = survivor.get_workflow_status("gone-1")
        assert status.status == "PENDING" and status.stranded is not None and "gone_flow" in status.stranded
        listed = {s.workflow_id: s for s in survivor.list_workflows()}
        assert listed["ok-1"].stranded is None and listed["gone-1"].stranded == status.stranded
        console = Console(record=True, width=200)
        console.print(_render.workflow_panel(status))
        console.print(_render.workflows_table(list(listed.values())))
        shown = console.export_text()
        assert "stranded" in shown and "gone_flow" in shown

        # the code is back: a worker that registers `gone_flow` takes it over and finishes it
        stop = tmp_path / "worker.stop"
        worker = spawn_app(database_url, "serve", stop, WITH_GONE="1", EXECUTOR_ID="worker-5")
        try:
            assert survivor.retrieve_workflow("gone-1").get_result(timeout_seconds=60) == 11
        finally:
            stop_app(worker, stop)
        done = survivor.get_workflow_status("gone-1")
        assert done.status == "SUCCESS" and done.stranded is None
        assert [s.name for s in survivor.list_steps("gone-1")] == ["iso_first", "iso_hold"]


def test_missing_function_of_own_workflow_is_reported_at_launch_and_resumes_after_relaunch(
    database_url: str, tmp_path: Path
) -> None:
    start = run_app(
        database_url,
        "start",
        tmp_path / "stop",
        EXECUTOR_ID="fixed-5",
        GONE_IDS="gone-2",
        WITH_GONE="1",
        HOLD="1",
    )
    assert start.returncode == 1, start.stderr
    # the same executor id relaunched by a deploy whose code lacks `gone_flow`
    stop = tmp_path / "relaunch.stop"
    relaunch = spawn_app(database_url, "serve", stop, EXECUTOR_ID="fixed-5")
    try:
        with Engine(database_url).connect() as observer:

            def stranded() -> str | None:
                return observer.get_workflow_status("gone-2").stranded

            wait_for(
                lambda: stranded() is not None and "fixed-5" in (stranded() or ""), 30, "gone-2 stranded"
            )
            assert "gone_flow" in (stranded() or "")
            assert observer.get_workflow_status("gone-2").status == "PENDING"
    finally:
        err = stop_app(relaunch, stop)
    assert "gone-2" in err and "gone_flow" in err, err  # the launch's warning

    # relaunched with the function registered again: it resumes at launch and finishes
    stop = tmp_path / "fixed.stop"
    fixed = spawn_app(database_url, "serve", stop, EXECUTOR_ID="fixed-5", WITH_GONE="1")
    try:
        with Engine(database_url).connect() as observer:
            assert observer.retrieve_workflow("gone-2").get_result(timeout_seconds=60) == 11
            assert observer.get_workflow_status("gone-2").stranded is None
    finally:
        stop_app(fixed, stop)
