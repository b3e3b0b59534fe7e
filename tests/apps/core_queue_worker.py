"""A queue worker process for the crash-torture test: serves Queue("torture") until told to stop."""

from __future__ import annotations

import os
import sys
import time

from durable_core import Engine, Queue, step, workflow

URL, LEDGER, STOP = sys.argv[1:4]
torture = Queue("torture", worker_concurrency=8)
_fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def log(line: str) -> None:
    os.write(_fd, (line + "\n").encode())


@step(name="work")
def work(job: int, index: int) -> int:
    log(f"start {job} {index}")
    time.sleep(0.05)
    log(f"done {job} {index}")
    return job * 10 + index


@workflow(name="job")
def job(n: int) -> int:
    return sum(work(n, i) for i in range(3))


if __name__ == "__main__":
    engine = Engine(URL, heartbeat_seconds=0.2, lease_seconds=1.5, executor_id=os.environ.get("EXECUTOR_ID"))
    engine.launch()
    while not os.path.exists(STOP):
        time.sleep(0.05)
    engine.shutdown()
