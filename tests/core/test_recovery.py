"""Recovery with real processes: crashes inside steps, lease takeover, racing starts, parking."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from durable_core import DatabaseUnavailable, Engine, RecoveryAttemptsExceeded

APP = str(Path(__file__).parents[1] / "apps" / "core_crash_app.py")
pytestmark = pytest.mark.crash


def run_app(
    url: str, mode: str, ledger: Path, workflow_id: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, APP, url, mode, str(ledger), workflow_id],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def spawn_app(url: str, mode: str, ledger: Path, workflow_id: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, APP, url, mode, str(ledger), workflow_id],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_stopped(pid: int, timeout: float = 10.0) -> None:
    """Wait until every thread of `pid` is stopped (state T in /proc/<pid>/task/*/stat).

    SIGSTOP does not stop a process at once: the kernel wakes one thread (the main thread, say,
    sleeping in a step) and the others keep running until that thread is scheduled and stops them
    all. On a loaded machine that can take tens of milliseconds, in which the other threads (the
    heartbeat, the dispatcher) still write: the process can take SQLite's write lock after
    `kill()` returned, and stop holding it.
    """
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():  # no procfs (not Linux): give the stop time to reach every thread
        time.sleep(0.5)
        return
    deadline = time.monotonic() + timeout
    while True:
        states: list[str] = []
        for task in tasks.iterdir():
            try:
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that just exited
        if states and all(state in ("T", "t") for state in states):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} did not stop within {timeout}s (thread states {states})")
        time.sleep(0.002)


def freeze_between_transactions(process: subprocess.Popen[str], url: str) -> None:
    """SIGSTOP `process` at a moment it holds no SQLite write lock.

    A process frozen inside a SQLite write transaction keeps the database's only write lock, so no
    other process can write (a claim included) until it resumes or dies; that is SQLite's locking,
    documented in the README. The test is about lease expiry, so it freezes the owner between its
    transactions (heartbeats every 0.2 s): once every one of its threads has stopped (not merely
    once SIGSTOP was sent, see `wait_until_stopped`), a one-shot BEGIN IMMEDIATE must get the lock;
    if it is refused, thaw and retry.
    """
    for _ in range(100):
        process.send_signal(signal.SIGSTOP)
        wait_until_stopped(process.pid)
        if not url.startswith("sqlite"):
            return
        probe = sqlite3.connect(url.split("///", 1)[1], timeout=0.5, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            process.send_signal(signal.SIGCONT)
            time.sleep(0.03)
        finally:
            probe.close()
    raise AssertionError("the owner held the SQLite write lock at every attempt to freeze it")


def ledger_counts(ledger: Path) -> Counter[str]:
    return Counter(line for line in ledger.read_text().splitlines() if line)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_crash_inside_step_then_new_process_resumes(database_url: str, tmp_path: Path, flavour: str) -> None:
    ledger = tmp_path / "ledger.txt"
    env = {"CRASH_IN_STEP": "3", "ASYNC": "1" if flavour == "async" else "0"}
    first = run_app(database_url, "run", ledger, "crashy", **env)
    assert first.returncode == 1, first.stderr
    counts = ledger_counts(ledger)
    assert counts["done step2"] == 1 and counts["start step3"] == 1 and counts["done step3"] == 0

    # a brand-new process on the same database resumes the workflow at launch and finishes it
    second = run_app(database_url, "wait", ledger, "crashy", **env)
    assert second.returncode == 0, second.stderr
    out = json.loads(second.stdout.strip().splitlines()[-1])
    assert out["result"] == [f"result{i}" for i in range(1, 6)]
    counts = ledger_counts(ledger)
    # completed steps ran once; the step in flight at the crash ran at most twice
    assert counts["done step1"] == 1 and counts["done step2"] == 1
    assert counts["start step3"] == 2 and counts["done step3"] == 1
    assert counts["done step4"] == 1 and counts["done step5"] == 1
    assert counts["body"] == 2  # the workflow function was replayed from the top once

    with Engine(database_url) as engine:
        status = engine.get_workflow_status("crashy")
        assert status.status == "SUCCESS" and status.recovery_attempts == 1
        assert [s.step_id for s in engine.list_steps("crashy")] == [1, 2, 3, 4, 5]


def test_lease_takeover_by_a_live_executor(database_url: str, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    survivor_ledger = tmp_path / "survivor.txt"
    env = {"HEARTBEAT": "0.2", "LEASE": "1.5", "HOLD_SECONDS": "3"}
    owner = spawn_app(database_url, "run", ledger, "leased", EXECUTOR_ID="owner", **env)
    survivor = spawn_app(
        database_url, "serve", survivor_ledger, "-", EXECUTOR_ID="survivor", SERVE_SECONDS="40", **env
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "start step2" not in (
            ledger.read_text() if ledger.exists() else ""
        ):
            time.sleep(0.02)
        with Engine(database_url) as observer:
            # the owner heartbeats: no claim while its lease is fresh
            time.sleep(2.0)
            assert observer.get_workflow_status("leased").executor_id == "owner"
            # freeze the owner (alive but silent): its lease expires and the survivor takes over
            freeze_between_transactions(owner, database_url)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if observer.get_workflow_status("leased").executor_id == "survivor":
                    break
                time.sleep(0.05)
            assert observer.get_workflow_status("leased").executor_id == "survivor"
            result = observer.retrieve_workflow("leased").get_result(timeout_seconds=30)
            assert result == [f"result{i}" for i in range(1, 6)]
        counts = ledger_counts(ledger)
        assert counts["done step1"] == 1  # completed before the takeover: not redone
    finally:
        owner.kill()
        (tmp_path / "survivor.txt.stop").touch()
        survivor.wait(timeout=30)
        owner.wait(timeout=30)


def test_two_processes_racing_for_one_id_run_the_body_once(database_url: str, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    with Engine(database_url):
        pass  # migrate once so both racers start from a ready schema
    racers = [spawn_app(database_url, "run", ledger, "race", HOLD_SECONDS="0.5") for _ in range(2)]
    outputs = [r.communicate(timeout=60) for r in racers]
    assert all(r.returncode == 0 for r in racers), outputs
    results = [json.loads(out.strip().splitlines()[-1])["result"] for out, _ in outputs]
    assert results[0] == results[1] == [f"result{i}" for i in range(1, 6)]
    counts = ledger_counts(ledger)
    assert counts["body"] == 1 and counts["done step1"] == 1 and counts["done step5"] == 1


def test_crash_looping_workflow_is_parked_then_resumed(database_url: str, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    env = {"CRASH_IN_STEP": "2", "ALWAYS_CRASH": "1", "MAX_RECOVERY": "2"}
    assert run_app(database_url, "run", ledger, "loop", **env).returncode == 1
    for _ in range(2):  # two recoveries, both crash
        assert run_app(database_url, "wait", ledger, "loop", **env).returncode == 1
    third = run_app(database_url, "wait", ledger, "loop", **env)  # third recovery exceeds the limit
    assert third.returncode != 0 and "RecoveryAttemptsExceeded" in third.stderr
    with Engine(database_url) as engine:
        status = engine.get_workflow_status("loop")
        assert status.status == "RETRIES_EXCEEDED" and status.recovery_attempts == 3
        with pytest.raises(RecoveryAttemptsExceeded):
            engine.retrieve_workflow("loop").get_result(timeout_seconds=5)
    assert ledger_counts(ledger)["done step1"] == 1
    # fixed (step 2 no longer crashes): resume_workflow revives it from its last completed step
    fixed = run_app(database_url, "resume", ledger, "loop", MAX_RECOVERY="2")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout.strip().splitlines()[-1])["result"] == [f"result{i}" for i in range(1, 6)]
    counts = ledger_counts(ledger)
    assert counts["done step1"] == 1 and counts["done step2"] == 1 and counts["crashed"] == 3


def test_unreachable_database_names_url_without_password() -> None:
    engine = Engine("postgresql+psycopg://alice:s3cret@127.0.0.1:1/nowhere")
    with pytest.raises(DatabaseUnavailable) as info:
        engine.launch()
    message = str(info.value)
    assert "127.0.0.1:1/nowhere" in message and "s3cret" not in message and "***" in message
    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        Engine("sqlite:////no/such/dir/x.db").launch()


def test_parent_and_queued_children_recover_without_rerunning_finished_children(
    database_url: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    first = run_app(database_url, "fanout", ledger, "fan", CRASH_CHILD="4")
    assert first.returncode == 1, first.stderr
    counts = ledger_counts(ledger)
    assert [counts[f"done child{i}"] for i in (1, 2, 3)] == [1, 1, 1] and counts["start child4"] == 1

    second = run_app(database_url, "wait", ledger, "fan")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout.strip().splitlines()[-1])["result"] == sum(i * i for i in range(1, 6))
    counts = ledger_counts(ledger)
    assert [counts[f"done child{i}"] for i in range(1, 6)] == [1, 1, 1, 1, 1]  # finished children not re-run
    assert counts["start child4"] == 2  # only the child in flight at the crash ran again
    with Engine(database_url) as engine:
        children = engine.list_workflows(name="child_job")
        assert {c.workflow_id for c in children} == {f"fan-{i}" for i in range(1, 6)}
        assert all(c.status == "SUCCESS" and c.parent_workflow_id == "fan" for c in children)


def test_explicit_recover_claims_a_frozen_executors_work(database_url: str, tmp_path: Path) -> None:
    """`engine.recover([executor])` is the operator's override: it claims at once, lease or not."""
    ledger = tmp_path / "ledger.txt"
    owner = spawn_app(
        database_url, "run", ledger, "frozen", EXECUTOR_ID="frozen-owner", HOLD_SECONDS="2", LEASE="600"
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "start step2" not in (
            ledger.read_text() if ledger.exists() else ""
        ):
            time.sleep(0.02)
        owner.send_signal(signal.SIGSTOP)
        with Engine(database_url, lease_seconds=600) as engine:
            assert (
                engine.get_workflow_status("frozen").executor_id == "frozen-owner"
            )  # fresh lease: untouched
        # an operator's process with the code claims it explicitly, although the lease is fresh
        rescue = run_app(
            database_url,
            "recover",
            ledger,
            "frozen",
            RECOVER_FROM="frozen-owner",
            LEASE="600",
            EXECUTOR_ID="rescuer",
        )
        assert rescue.returncode == 0, rescue.stderr
        assert json.loads(rescue.stdout.strip().splitlines()[-1])["result"] == [
            f"result{i}" for i in range(1, 6)
        ]
        with Engine(database_url) as engine:
            assert engine.get_workflow_status("frozen").executor_id == "rescuer"
    finally:
        owner.kill()
        owner.wait(timeout=30)


# A process whose threads write SQLite transactions back to back while its main thread (which a
# SIGSTOP wakes to stop the others) gets the CPU only when nothing else wants it (SCHED_IDLE): the
# stop reaches the writers late, as it does to a busy engine on a loaded machine.
_BUSY_WRITER = """
import os, sqlite3, sys, threading, time
def write():
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
    conn.execute("PRAGMA synchronous=FULL")  # an fsync per commit: the lock is held most of the time
    while True:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE t SET v = v + 1")
        conn.execute("COMMIT")
        time.sleep(0.0005)
for _ in range(os.cpu_count() or 1):
    threading.Thread(target=write, daemon=True).start()
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE") or not Path("/proc/self/task").is_dir(), reason="Linux")
def test_freeze_between_transactions_leaves_the_write_lock_free(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (v INTEGER)")
    setup.execute("INSERT INTO t VALUES (0)")
    setup.close()
    writer = subprocess.Popen(
        [sys.executable, "-c", _BUSY_WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        for _ in range(10):
            freeze_between_transactions(writer, f"sqlite:///{path}")
            time.sleep(0.05)  # a thread still running would take the lock again by now
            probe = sqlite3.connect(path, timeout=0.2, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")  # raises "database is locked" if it froze mid-write
                probe.execute("ROLLBACK")
            finally:
                probe.close()
            writer.send_signal(signal.SIGCONT)
            time.sleep(0.02)
    finally:
        writer.kill()
        writer.wait(timeout=30)
