"""Queue latency and throughput, durable_core against dbos 3.4.0 (default settings), in one run.

    python benchmarks/queues.py [--latency-n 30] [--burst 1000]

- enqueue -> start: a client process enqueues one workflow at a time to an idle worker
  process; the workflow records when it started (p50, p90);
- burst: 1,000 trivial workflows enqueued at once, drained by 1 and by 2 worker processes
  (seconds until the last one finished, and workflows per second).
SQLite (WAL) and PostgreSQL. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _harness import LIBRARIES, fresh_database, median, pct, run_child, spawn_child, table

SCRIPT = __file__


def _durable_app(url: str, serve: bool) -> tuple[Any, Any]:
    from durable_core import Engine, Queue, workflow

    Queue("bench", worker_concurrency=50)

    @workflow(name="stamp")
    def stamp(i: int) -> float:
        return time.time()

    engine = Engine(url, queues=["bench"] if serve else [])
    engine.launch()
    return engine, stamp


def _dbos_app(url: str, serve: bool) -> Any:
    from dbos import DBOS

    logging.getLogger("dbos").setLevel(logging.WARNING)
    DBOS(config={"name": "benchq", "system_database_url": url, "log_level": "WARNING"})

    @DBOS.workflow(name="stamp")
    def stamp(i: int) -> float:
        return time.time()

    DBOS.launch()
    DBOS.register_queue("bench", worker_concurrency=50)  # dbos 3.x: queues are database rows
    return stamp


def child_worker(kind: str, url: str, stop_file: str) -> dict[str, Any]:
    if kind == "durable":
        engine, _ = _durable_app(url, serve=True)
    else:
        _dbos_app(url, serve=True)
    while not os.path.exists(stop_file):
        time.sleep(0.05)
    if kind == "durable":
        engine.shutdown()
    else:
        from dbos import DBOS

        DBOS.destroy()
    return {}


def _client(kind: str, url: str) -> tuple[Any, Any, Any]:
    """enqueue(i) -> handle id; result(id) -> value; count_done() -> int."""
    if kind == "durable":
        from durable_core import Engine

        engine = Engine(url, queues=[])
        engine.launch()
        return (
            lambda i: engine.enqueue("bench", "stamp", i).workflow_id,
            lambda wid: engine.retrieve_workflow(wid).get_result(timeout_seconds=600),
            lambda: engine.count_workflows(status="SUCCESS", queue_name="bench"),
        )
    from dbos import DBOSClient, EnqueueOptions

    client = DBOSClient(system_database_url=url)
    options: EnqueueOptions = {"queue_name": "bench", "workflow_name": "stamp"}
    return (
        lambda i: client.enqueue(options, i).get_workflow_id(),
        lambda wid: client.retrieve_workflow(wid).get_result(),
        lambda: len(
            client.list_workflows(status="SUCCESS", queue_name="bench", load_input=False, load_output=False)
        ),
    )


def _warm_up(enqueue: Any, result: Any) -> None:
    """Wait until a worker has launched (and advertised the workflow), then run one."""
    deadline = time.time() + 60
    while True:
        try:
            result(enqueue(-1))
            return
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def child_latency(kind: str, url: str, n: str) -> dict[str, Any]:
    enqueue, result, _ = _client(kind, url)
    _warm_up(enqueue, result)
    samples: list[float] = []
    for i in range(int(n)):
        time.sleep(0.1)  # random-ish arrival relative to any poller
        t0 = time.time()
        wid = enqueue(i)
        samples.append((result(wid) - t0) * 1000)
    return {"latency": samples}


def child_burst(kind: str, url: str, n: str) -> dict[str, Any]:
    enqueue, result, count = _client(kind, url)
    _warm_up(enqueue, result)
    base = count()
    t0 = time.time()
    ids = [enqueue(i) for i in range(int(n))]
    enqueued = time.time() - t0
    while count() < base + int(n):
        time.sleep(0.02)
    total = time.time() - t0
    return {"seconds": total, "enqueue_ms": enqueued / int(n) * 1000, "n": len(ids)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, *rest = sys.argv[2:]
        fn = {"worker": child_worker, "latency": child_latency, "burst": child_burst}[mode]
        print(json.dumps(fn(*rest)))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-n", type=int, default=30)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgres"):
            for kind, label in LIBRARIES:
                results: dict[str, Any] = {}
                for workers in (1, 2):
                    with fresh_database(backend, tmp) as url:
                        stop = os.path.join(tmp, f"stop-{time.time_ns()}")
                        procs = [spawn_child(SCRIPT, "worker", kind, url, stop) for _ in range(workers)]
                        try:
                            if workers == 1:
                                results["latency"] = (
                                    run_child(SCRIPT, "latency", kind, url, str(args.latency_n)) or {}
                                ).get("latency", [])
                            results[f"burst{workers}"] = (
                                run_child(SCRIPT, "burst", kind, url, str(args.burst)) or {}
                            )
                        finally:
                            open(stop, "w").close()
                            for p in procs:
                                p.communicate(timeout=120)
                b1, b2 = results.get("burst1", {}), results.get("burst2", {})
                rows.append(
                    [
                        label,
                        backend,
                        median(results.get("latency", [])),
                        pct(results.get("latency", []), 90),
                        b1.get("enqueue_ms"),
                        b1.get("seconds"),
                        args.burst / b1["seconds"] if b1.get("seconds") else None,
                        b2.get("seconds"),
                        args.burst / b2["seconds"] if b2.get("seconds") else None,
                    ]
                )
    table(
        f"queues: enqueue->start latency (ms, {args.latency_n} samples) and a burst of {args.burst} workflows",
        [
            "library",
            "backend",
            "enq->start p50",
            "p90",
            "enqueue ms",
            "1 worker s",
            "wf/s",
            "2 workers s",
            "wf/s",
        ],
        rows,
    )
    print("\nenq->start: from enqueue in a client process to the workflow's first line in a worker process.")


if __name__ == "__main__":
    main()
