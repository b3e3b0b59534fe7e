"""CPU an idle, launched engine uses: durable_core against dbos 3.4.0, in one run.

    python benchmarks/idle.py [--seconds 10]

Each configuration launches its engine (no workflows, no queues of the user's) in its own process
on SQLite (WAL) and on PostgreSQL, waits a second, then measures the process's CPU time over
`--seconds` of idling, per thread. Background work (lease heartbeats, the queue dispatcher's poll,
wait pollers) is all there is to measure. Prints percent of one CPU; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _harness import LIBRARIES, fresh_database, run_child, table

SCRIPT = __file__


def _thread_ticks() -> dict[str, int]:
    """CPU clock ticks per thread of this process, by thread name (Linux /proc)."""
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    ticks: dict[str, int] = {}
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{tid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        name = names.get(tid, "other")
        ticks[name] = ticks.get(name, 0) + int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


def child(kind: str, url: str, seconds: float) -> dict[str, Any]:
    if kind == "durable":
        from durable_core import Engine

        engine = Engine(url)
        engine.launch()
        stop = engine.shutdown
    else:
        from dbos import DBOS

        logging.getLogger("dbos").setLevel(logging.WARNING)
        DBOS(config={"name": "idle", "system_database_url": url, "log_level": "WARNING"})
        DBOS.launch()
        stop = DBOS.destroy
    try:
        time.sleep(1.0)
        before, cpu_before, wall_before = _thread_ticks(), time.process_time(), time.monotonic()
        time.sleep(seconds)
        after, cpu_after, wall_after = _thread_ticks(), time.process_time(), time.monotonic()
    finally:
        stop()
    hz = os.sysconf("SC_CLK_TCK")
    busiest = max(after, key=lambda name: after[name] - before.get(name, 0))
    return {
        "cpu_pct": 100 * (cpu_after - cpu_before) / (wall_after - wall_before),
        "busiest": busiest,
        "busiest_pct": 100 * (after[busiest] - before.get(busiest, 0)) / hz / (wall_after - wall_before),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "URL", "SECONDS"))
    args = parser.parse_args()
    if args.child:
        kind, url, seconds = args.child
        print(json.dumps(child(kind, url, float(seconds))))
        return
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgres"):
            for kind, label in LIBRARIES:
                with fresh_database(backend, tmp) as url:
                    result = run_child(SCRIPT, kind, url, str(args.seconds))
                if result is None:
                    rows.append([label, backend, "failed", "", ""])
                else:
                    rows.append([label, backend, result["cpu_pct"], result["busiest"], result["busiest_pct"]])
    table(
        f"idle engine, {args.seconds:.0f} s: % of one CPU",
        ["library", "backend", "cpu %", "busiest thread", "its %"],
        rows,
    )


if __name__ == "__main__":
    main()
