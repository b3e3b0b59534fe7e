"""A workflow of slow steps that record every execution in an external ledger, for ownership tests.

Imported by the tests (so the test's own engine can resume the workflow) and run as a process:

    python core_ownership_app.py DATABASE_URL LEDGER MODE WORKFLOW_ID

MODE is ``client`` (the workflow runs on a client engine opened with ``connect()``) or
``launched`` (a launched engine). Each step body appends ``workflow_id,step,pid`` to LEDGER
with O_APPEND and fsync before returning, so the test counts executions independently of the
library's own records. The process prints ``result <value>`` or ``stopped <exception type>``.
"""

from __future__ import annotations

import os
import sys
import time

from durable_core import Engine, step, workflow, workflow_options

STEPS = 8
STEP_SECONDS = 0.3  # a step's duration; env STEP_SECONDS overrides it per process
LEDGER_ENV = "OWNERSHIP_LEDGER"


def append_ledger(workflow_id: str, index: int) -> None:
    fd = os.open(os.environ[LEDGER_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{workflow_id},{index},{os.getpid()},{time.monotonic_ns()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_ledger(path: str) -> list[tuple[str, int, int]]:
    try:
        with open(path) as f:
            rows = [line.split(",") for line in f.read().splitlines() if line]
    except FileNotFoundError:
        return []
    return [(r[0], int(r[1]), int(r[2])) for r in rows]


@step(name="slow_step")
def slow_step(workflow_id: str, index: int) -> int:
    time.sleep(
        float(os.environ.get("STEP_SECONDS", STEP_SECONDS))
    )  # the step body's work; its execution is recorded when it completes
    append_ledger(workflow_id, index)
    return index * 10


@workflow(name="slow_workflow")
def slow_workflow(workflow_id: str) -> int:
    return sum(slow_step(workflow_id, i) for i in range(1, STEPS + 1))


def main() -> None:
    url, ledger, mode, workflow_id = sys.argv[1:5]
    os.environ[LEDGER_ENV] = ledger
    engine = Engine(url, heartbeat_seconds=0.2, lease_seconds=1.0, executor_id=f"{mode}-{os.getpid()}")
    if mode == "client":
        engine.connect()
    else:
        engine.launch()
    print("ready", flush=True)
    try:
        with workflow_options(workflow_id=workflow_id):
            handle = engine.start_workflow(slow_workflow, workflow_id)
        print(f"result {handle.get_result(timeout_seconds=60)}", flush=True)
    except BaseException as exc:
        print(f"stopped {type(exc).__name__}: {exc}", flush=True)
    finally:
        engine.shutdown()


if __name__ == "__main__":
    main()
