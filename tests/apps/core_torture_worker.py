"""The application of the exactly-once torture test (tests/core/test_exactly_once.py).

Run as a worker process: ``python core_torture_worker.py DATABASE_URL LEDGER STOP_FILE READY_DIR``.
It launches an Engine with a short heartbeat and lease, serves the queue ``exactly_once``, drops
``READY_DIR/<pid>`` once launched and runs until STOP_FILE exists. The test process imports the
same module (so its own engine can resume workflows) and calls `configure(ledger)` instead.

The ledger is the test's independent record of what really ran: every line is
``workflow_id,step,pid,kind,monotonic_ns,sleep_ms`` appended with one ``os.write`` on an ``O_APPEND``
descriptor and fsynced before the code goes on, where kind is
``W`` (the workflow function starts: first run or replay; step 0),
``S`` (a step body starts), ``D`` (a step body is about to return) and
``E`` (the workflow function is about to return; step 0). ``time.monotonic_ns`` is
CLOCK_MONOTONIC, one clock for every process of the host, so lines compare with the times the
test records for its kills, freezes and cancels; sleep_ms is how long an ``S`` body will sleep.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time

from durable_core import Engine, Queue, current_workflow_id, step, workflow

STEPS = 20
STEP_SLEEP_SCALE = float(os.environ.get("EO_STEP_SLEEP_SCALE", "1.0"))
HEARTBEAT = float(os.environ.get("EO_HEARTBEAT", "0.2"))
LEASE = float(os.environ.get("EO_LEASE", "1.5"))

exactly_once = Queue("exactly_once", worker_concurrency=int(os.environ.get("EO_WORKER_CONCURRENCY", "3")))
_ledger_fd: int | None = None


def configure(ledger: str) -> None:
    """Point this process's ledger at `ledger` (the test process calls this once per test)."""
    global _ledger_fd
    if _ledger_fd is not None:
        os.close(_ledger_fd)
    _ledger_fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def record(workflow_id: str, kind: str, step_no: int, sleep_ms: int = 0) -> None:
    assert _ledger_fd is not None, "core_torture_worker.configure(ledger) was not called"
    line = f"{workflow_id},{step_no},{os.getpid()},{kind},{time.monotonic_ns()},{sleep_ms}\n"
    os.write(_ledger_fd, line.encode())
    os.fsync(_ledger_fd)


def expected_result(n: int) -> int:
    return sum(n * 100 + i for i in range(1, STEPS + 1))


@step(name="eo_step")
def eo_step(workflow_id: str, n: int, i: int) -> int:
    # the workflow id is an argument: current_workflow_id() is refused inside a step body.
    # Bodies take 20-80 ms, one in seven 250-400 ms (a slow call): kills, freezes and cancels land
    # inside them, and a run resumed elsewhere can overtake a slow body it replaced.
    seconds = random.uniform(0.25, 0.4) if random.random() < 1 / 7 else random.uniform(0.02, 0.08)
    record(workflow_id, "S", i, int(seconds * 1000))
    time.sleep(seconds * STEP_SLEEP_SCALE)
    record(workflow_id, "D", i)
    return n * 100 + i


@workflow(name="eo_flow", max_recovery_attempts=10_000)
def eo_flow(n: int) -> int:
    workflow_id = current_workflow_id()
    record(workflow_id, "W", 0)
    total = 0
    for i in range(1, STEPS + 1):
        total += eo_step(workflow_id, n, i)
    record(workflow_id, "E", 0)
    return total


def main() -> None:
    url, ledger, stop, ready_dir = sys.argv[1:5]
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(created).3f pid=%(process)d %(name)s %(levelname)s %(message)s",
    )
    configure(ledger)
    engine = Engine(url, heartbeat_seconds=HEARTBEAT, lease_seconds=LEASE)
    engine.launch()
    print(f"launched executor {engine.executor_id} pid {os.getpid()}", flush=True)
    with open(os.path.join(ready_dir, str(os.getpid())), "w") as f:
        f.write(engine.executor_id)
    parent = os.getppid()
    while not os.path.exists(stop) and os.getppid() == parent:  # the test process died: stop too
        time.sleep(0.05)
    engine.shutdown()
    print("shut down", flush=True)


if __name__ == "__main__":
    main()
