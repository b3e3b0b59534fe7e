"""Wake-up latency of durable waits, durable_core against dbos 3.4.0, in one run.

    python benchmarks/waits.py [--n 20]

Measures, on SQLite (WAL) and PostgreSQL:
- send -> recv wake-up, sender and waiting workflow in the same process;
- send -> recv wake-up across processes (the workflow runs in a child process);
- set_event -> get_event wake-up (same process);
- timeout accuracy: how late a recv(timeout_seconds=0.2) with no message returns.
Each configuration runs in its own process. Prints p50/p90 in milliseconds; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _harness import LIBRARIES, fresh_database, median, pct, run_child, spawn_child, table

SCRIPT = __file__


# -- one API over both libraries ------------------------------------------------------------------


class Lib:
    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        if kind == "durable":
            from durable_core import Engine, get_event, recv, set_event, workflow

            self.engine = Engine(url)

            @workflow(name="bench_recv")
            def bench_recv(timeout: float) -> float:
                set_event("ready", True)
                recv("t", timeout_seconds=timeout)
                return time.time()

            @workflow(name="bench_event")
            def bench_event() -> None:
                recv("go", timeout_seconds=30)
                set_event("k", time.time())

            self.recv_wf, self.event_wf, self._get_event = bench_recv, bench_event, get_event
            self.engine.launch()
        else:
            from dbos import DBOS

            logging.getLogger("dbos").setLevel(logging.WARNING)
            DBOS(config={"name": "bench", "system_database_url": url, "log_level": "WARNING"})

            @DBOS.workflow(name="bench_recv")
            def bench_recv(timeout: float) -> float:
                DBOS.set_event("ready", True)
                DBOS.recv("t", timeout_seconds=timeout)
                return time.time()

            @DBOS.workflow(name="bench_event")
            def bench_event() -> None:
                DBOS.recv("go", timeout_seconds=30)
                DBOS.set_event("k", time.time())

            self.recv_wf, self.event_wf = bench_recv, bench_event
            DBOS.launch()

    def start(self, fn: Any, *args: Any, workflow_id: str) -> Any:
        if self.kind == "durable":
            from durable_core import workflow_options

            with workflow_options(workflow_id=workflow_id):
                return self.engine.start_workflow(fn, *args)
        from dbos import DBOS, SetWorkflowID

        with SetWorkflowID(workflow_id):
            return DBOS.start_workflow(fn, *args)

    def send(self, workflow_id: str, message: Any, topic: str) -> None:
        if self.kind == "durable":
            self.engine.send(workflow_id, message, topic)
        else:
            from dbos import DBOS

            DBOS.send(workflow_id, message, topic)

    def get_event(self, workflow_id: str, key: str, timeout: float) -> Any:
        if self.kind == "durable":
            return self.engine.get_event(workflow_id, key, timeout)
        from dbos import DBOS

        return DBOS.get_event(workflow_id, key, timeout)

    def result(self, workflow_id: str) -> Any:
        if self.kind == "durable":
            return self.engine.retrieve_workflow(workflow_id).get_result(timeout_seconds=60)
        from dbos import DBOS

        return DBOS.retrieve_workflow(workflow_id).get_result()

    def close(self) -> None:
        if self.kind == "durable":
            self.engine.shutdown()
        else:
            from dbos import DBOS

            DBOS.destroy()


# -- children ---------------------------------------------------------------------------------


def child_inproc(kind: str, url: str, n: int) -> dict[str, list[float]]:
    lib = Lib(kind, url)
    wake: list[float] = []
    event: list[float] = []
    late: list[float] = []
    try:
        for i in range(n):
            wid = f"r{i}"
            lib.start(lib.recv_wf, 30.0, workflow_id=wid)
            lib.get_event(wid, "ready", 30)
            time.sleep(0.05)  # let it block in recv
            t0 = time.time()
            lib.send(wid, i, "t")
            wake.append((lib.result(wid) - t0) * 1000)

            eid = f"e{i}"
            lib.start(lib.event_wf, workflow_id=eid)
            time.sleep(0.05)
            lib.send(eid, "go", "go")
            set_at = lib.get_event(eid, "k", 30)
            event.append((time.time() - set_at) * 1000)

            tid = f"t{i}"
            start = time.time()
            lib.start(lib.recv_wf, 0.2, workflow_id=tid)
            ended = lib.result(tid)
            late.append((ended - start - 0.2) * 1000)
    finally:
        lib.close()
    return {"wake": wake, "event": event, "late": late}


def child_serve(kind: str, url: str, n: int) -> dict[str, Any]:
    """The cross-process receiver: runs workflows x0..x{n-1}, one at a time."""
    lib = Lib(kind, url)
    try:
        for i in range(n):
            lib.start(lib.recv_wf, 30.0, workflow_id=f"x{i}")
            lib.result(f"x{i}")
    finally:
        lib.close()
    return {}


def child_sender(kind: str, url: str, n: int) -> dict[str, list[float]]:
    """The cross-process sender: waits for each workflow of the server to wait, sends, measures."""
    if kind == "durable":
        from durable_core import Engine

        engine = Engine(url, queues=[])
        engine.launch()

        def get_event(wid: str) -> Any:
            return engine.get_event(wid, "ready", 60)

        def send(wid: str) -> None:
            engine.send(wid, 1, "t")

        def result(wid: str) -> Any:
            return engine.retrieve_workflow(wid).get_result(timeout_seconds=60)
    else:
        from dbos import DBOSClient

        client = DBOSClient(system_database_url=url)

        def get_event(wid: str) -> Any:
            return client.get_event(wid, "ready", 60)

        def send(wid: str) -> None:
            client.send(wid, 1, "t")

        def result(wid: str) -> Any:
            return client.retrieve_workflow(wid).get_result()

    wake: list[float] = []
    for i in range(n):
        wid = f"x{i}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if get_event(wid):
                    break
            except Exception:
                time.sleep(0.02)
        time.sleep(0.05)
        t0 = time.time()
        send(wid)
        wake.append((result(wid) - t0) * 1000)
    return {"wake": wake}


def child(args: list[str]) -> None:
    mode, kind, url, n = args[0], args[1], args[2], int(args[3])
    fn = {"inproc": child_inproc, "serve": child_serve, "sender": child_sender}[mode]
    print(json.dumps(fn(kind, url, n)))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgres"):
            for kind, label in LIBRARIES:
                with fresh_database(backend, tmp) as url:
                    inproc = run_child(SCRIPT, "inproc", kind, url, str(args.n)) or {}
                    server = spawn_child(SCRIPT, "serve", kind, url, str(args.n))
                    cross = run_child(SCRIPT, "sender", kind, url, str(args.n)) or {}
                    server.communicate(timeout=600)
                rows.append(
                    [
                        label,
                        backend,
                        median(inproc.get("wake", [])),
                        pct(inproc.get("wake", []), 90),
                        median(cross.get("wake", [])),
                        pct(cross.get("wake", []), 90),
                        median(inproc.get("event", [])),
                        median(inproc.get("late", [])),
                        pct(inproc.get("late", []), 90),
                    ]
                )
    table(
        f"waits: wake-up latency in ms ({args.n} samples each; p50 unless noted)",
        ["library", "backend", "send->recv", "p90", "cross-proc", "p90", "event", "timeout late", "p90"],
        rows,
    )
    print("\ncross-proc: the waiting workflow runs in another process. timeout late: how long after its")
    print("0.2 s deadline a recv with no message returned.")


if __name__ == "__main__":
    main()
