"""Crash torture on Postgres: 3 worker processes drain 500 queued workflows while workers are SIGKILLed."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from durable_core import Engine

WORKER = str(Path(__file__).parents[1] / "apps" / "core_queue_worker.py")
JOBS = 500
pytestmark = pytest.mark.crash


def _spawn(url: str, ledger: Path, stop: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, WORKER, url, str(ledger), str(stop)],
        env={**os.environ, "EXECUTOR_ID": name},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.backends("postgres")
def test_workers_killed_while_draining_lose_nothing(database_url: str, tmp_path: Path) -> None:
    ledger, stop = tmp_path / "ledger.txt", tmp_path / "stop"
    rng = random.Random(7)
    workers = {f"w{i}": _spawn(database_url, ledger, stop, f"w{i}-0") for i in range(3)}
    kills = 0
    with Engine(database_url, queues=[]) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                client.enqueue("torture", "job", 0).get_result(timeout_seconds=30)
                break
            except Exception:
                time.sleep(0.2)  # workers not launched yet: names not advertised
        started = time.monotonic()
        handles = [client.enqueue("torture", "job", n) for n in range(1, JOBS)]
        print(f"enqueued {JOBS - 1} in {time.monotonic() - started:.2f}s")
        generation = 1
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            done = client.count_workflows(status="SUCCESS", queue_name="torture")
            if done >= JOBS:
                break
            if kills < 4 and done >= (kills + 1) * JOBS // 6:
                victim = rng.choice(sorted(workers))
                workers[victim].kill()  # SIGKILL
                workers[victim].wait()
                kills += 1
                workers[victim] = _spawn(database_url, ledger, stop, f"{victim}-{generation}")
                generation += 1
            time.sleep(0.02)
        results = {h.workflow_id: h.get_result(timeout_seconds=60) for h in handles}
        statuses = Counter(s.status for s in client.list_workflows(queue_name="torture"))
    stop.touch()
    for proc in workers.values():
        proc.wait(timeout=30)

    print(f"drained with {kills} kills")
    assert kills == 4
    assert statuses == Counter({"SUCCESS": JOBS})
    for n, h in enumerate(handles, start=1):
        assert results[h.workflow_id] == 30 * n + 3
    done = Counter(
        tuple(line.split()[1:]) for line in ledger.read_text().splitlines() if line.startswith("done")
    )
    assert set(done) == {(str(n), str(i)) for n in range(JOBS) for i in range(3)}
    reruns = sum(count - 1 for count in done.values())
    # only steps in flight at a kill can run again: at most one re-run each, 8 slots per killed worker
    assert all(count <= 2 for count in done.values())
    assert reruns <= kills * 8
