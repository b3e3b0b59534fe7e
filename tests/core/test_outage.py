"""A storage outage is never a terminal outcome (DESIGN §2): a PostgreSQL server that stops for
longer than the engine's `db_retry_seconds`, or a SQLite disk that fills up, interrupts the
running workflows; once storage is back, the live process resumes them by itself and at most
the step in flight runs again.

Real parts only: a private PostgreSQL cluster (initdb into a temporary directory, its own port;
never the shared server) stopped and started with pg_ctl, and a SQLite file on a small tmpfs
that a filler file fills to the last byte.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_core import Engine, step, workflow, workflow_options

pytestmark = pytest.mark.crash
STEPS = 6
executions: collections.Counter[int] = collections.Counter()
reached: dict[int, threading.Event] = collections.defaultdict(threading.Event)


@step(name="outage_step")
def outage_step(index: int) -> str:
    executions[index] += 1
    reached[index].set()
    time.sleep(0.2)
    return f"{index}:" + "x" * 20_000  # sizeable rows, so a full disk is hit quickly


@workflow(name="outage_workflow")
def outage_workflow() -> int:
    return sum(len(outage_step(i)) for i in range(1, STEPS + 1))


EXPECTED = sum(len(f"{i}:") + 20_000 for i in range(1, STEPS + 1))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the outage tests must run under CI=true: {reason}")
    pytest.skip(reason)


def _reset() -> None:
    executions.clear()
    reached.clear()


def _check_counts() -> None:
    print(f"executions per step: {dict(sorted(executions.items()))}")
    assert set(executions) == set(range(1, STEPS + 1))
    twice = [s for s, n in executions.items() if n > 1]
    assert len(twice) <= 1 and all(executions[s] == 2 for s in twice), executions


# -- a private PostgreSQL cluster (tests/conftest.py) -----------------------------------------------


def test_postgres_outage_longer_than_the_retries_is_resumed_by_the_live_process(
    private_postgres: Any,
) -> None:
    _reset()
    engine = Engine(private_postgres.url, heartbeat_seconds=0.2, lease_seconds=1.0, db_retry_seconds=1.0)
    engine.launch()
    try:
        with workflow_options(workflow_id="outage-pg"):
            handle = engine.start_workflow(outage_workflow)
        assert reached[3].wait(30)
        private_postgres.stop()  # mid-step 3: its record, and the heartbeats, fail for 3 s
        time.sleep(3.0)
        private_postgres.start()
        assert handle.get_result(timeout_seconds=60) == EXPECTED
        assert engine.get_workflow_status("outage-pg").status == "SUCCESS"
        _check_counts()
    finally:
        engine.shutdown()


# -- a full disk under SQLite -----------------------------------------------------------------------


@pytest.fixture
def small_disk() -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        _unavailable("mounting a small tmpfs needs root")
    mount_point = Path(tempfile.mkdtemp(prefix="durable-disk-"))
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if result.returncode != 0:
        mount_point.rmdir()
        _unavailable(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        with contextlib.suppress(OSError):
            mount_point.rmdir()


def _fill(path: Path) -> int:
    """Fill the file system to the last byte; return how much was written."""
    written = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]


def test_sqlite_full_disk_interrupts_and_the_live_process_resumes_once_space_is_freed(
    small_disk: Path,
) -> None:
    _reset()
    url = f"sqlite:///{small_disk / 'durable.db'}"
    engine = Engine(url, heartbeat_seconds=0.2, lease_seconds=1.0, db_retry_seconds=1.0)
    engine.launch()
    filler = small_disk / "filler"
    try:
        with workflow_options(workflow_id="outage-disk"):
            handle = engine.start_workflow(outage_workflow)
        assert reached[3].wait(30)
        print(f"filled the disk with {_fill(filler)} bytes")
        time.sleep(3.0)  # step 3's record and the heartbeats fail with "database or disk is full"
        filler.unlink()
        assert handle.get_result(timeout_seconds=60) == EXPECTED
        assert engine.get_workflow_status("outage-disk").status == "SUCCESS"
        _check_counts()
    finally:
        with contextlib.suppress(FileNotFoundError):
            filler.unlink()
        engine.shutdown()
