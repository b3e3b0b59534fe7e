"""Per-step and per-workflow cost of durable_core against dbos and the one-commit floor.

Runs every configuration in its own subprocess (dbos is a process-wide singleton), in one
invocation, on the same machine, the same SQLite file settings (WAL, synchronous=FULL unless
noted) and the same PostgreSQL. Prints medians; never asserts timings.

    python benchmarks/core_steps.py [--runs 200] [--pg postgresql+psycopg://postgres@127.0.0.1/postgres]
        [--tracing]   # adds durable_core rows with OpenTelemetry SDK tracing on (no exporter)
                      # and with opentelemetry not importable (the other rows: API installed,
                      # no tracer provider set)

Per step = (median of a 10-step workflow - median of a 0-step workflow) / 10.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

STEPS = 10


def _measure(run_wf10: Callable[[], Any], run_wf0: Callable[[], Any], runs: int) -> dict[str, float]:
    for _ in range(min(20, runs)):  # warm-up
        run_wf10()
        run_wf0()
    t10: list[float] = []
    t0: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        run_wf10()
        t10.append(time.perf_counter() - start)
        start = time.perf_counter()
        run_wf0()
        t0.append(time.perf_counter() - start)
    m10, m0 = statistics.median(t10), statistics.median(t0)
    return {"wf10_ms": m10 * 1e3, "wf0_ms": m0 * 1e3, "step_ms": (m10 - m0) / STEPS * 1e3}


# -- children -------------------------------------------------------------------------------------


def child_plain(_url: str, runs: int, _mode: str) -> dict[str, float]:
    def s(i: int) -> int:
        return i + 1

    def wf10() -> int:
        return sum(s(i) for i in range(STEPS))

    return _measure(wf10, lambda: None, runs)


def child_floor(url: str, runs: int, _mode: str) -> dict[str, float]:
    """One single-row INSERT + COMMIT per step: the cost of one durable write."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS floor (k TEXT PRIMARY KEY, v TEXT)")

        def write() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO floor VALUES (?, ?)", (uuid.uuid4().hex, "x"))
            conn.execute("COMMIT")
    else:
        import psycopg

        pg = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
        pg.execute("CREATE TABLE IF NOT EXISTS floor (k TEXT PRIMARY KEY, v TEXT)")

        def write() -> None:
            pg.execute("INSERT INTO floor VALUES (%s, %s)", (uuid.uuid4().hex, "x"))

    def wf10() -> None:
        for _ in range(STEPS):
            write()

    return _measure(wf10, lambda: None, runs)


def child_durable(url: str, runs: int, mode: str) -> dict[str, float]:
    if mode == "no-otel":  # as if the `otel` extra were not installed: the import fails
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
    from durable_core import Engine, step, workflow

    if mode == "tracing":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())  # no exporter: spans are made, then dropped

    @step()
    def s(i: int) -> int:
        return i + 1

    @step()
    async def a(i: int) -> int:
        return i + 1

    @workflow()
    def wf10() -> int:
        return sum(s(i) for i in range(STEPS))

    @workflow()
    def wf0() -> int:
        return 0

    @workflow()
    async def awf10() -> int:
        total = 0
        for i in range(STEPS):
            total += await a(i)
        return total

    @workflow()
    async def awf0() -> int:
        return 0

    synchronous = "NORMAL" if mode == "normal" else "FULL"
    with Engine(url, sqlite_synchronous=synchronous):
        if mode == "async":
            loop = asyncio.new_event_loop()
            return _measure(
                lambda: loop.run_until_complete(awf10()), lambda: loop.run_until_complete(awf0()), runs
            )
        return _measure(wf10, wf0, runs)


def child_dbos(url: str, runs: int, mode: str) -> dict[str, float]:
    import logging

    from dbos import DBOS

    logging.getLogger("dbos").setLevel(logging.WARNING)
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")  # the same file settings as durable_core
        conn.close()
    DBOS(config={"name": "bench", "system_database_url": url, "log_level": "WARNING"})

    @DBOS.step()
    def s(i: int) -> int:
        return i + 1

    @DBOS.step()
    async def a(i: int) -> int:
        return i + 1

    @DBOS.workflow()
    def wf10() -> int:
        return sum(s(i) for i in range(STEPS))

    @DBOS.workflow()
    def wf0() -> int:
        return 0

    @DBOS.workflow()
    async def awf10() -> int:
        total = 0
        for i in range(STEPS):
            total += await a(i)
        return total

    @DBOS.workflow()
    async def awf0() -> int:
        return 0

    DBOS.launch()
    try:
        if mode == "async":
            loop = asyncio.new_event_loop()
            return _measure(
                lambda: loop.run_until_complete(awf10()), lambda: loop.run_until_complete(awf0()), runs
            )
        return _measure(wf10, wf0, runs)
    finally:
        DBOS.destroy()


CHILDREN = {"plain": child_plain, "floor": child_floor, "durable": child_durable, "dbos": child_dbos}


# -- parent -----------------------------------------------------------------------------------


def fresh_pg(admin_url: str) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg(url: str) -> None:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_child(kind: str, url: str, runs: int, mode: str) -> dict[str, float] | None:
    """Median over ROUNDS subprocess runs (the machine's noise is larger than the effects)."""
    results = [r for r in (_run_once(kind, url, runs, mode) for _ in range(ROUNDS)) if r is not None]
    if not results:
        return None
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


ROUNDS = 3


def _run_once(kind: str, url: str, runs: int, mode: str) -> dict[str, float] | None:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--runs", str(runs), "--mode", mode],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        print(f"  {kind}/{mode} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--pg",
        default=os.environ.get("DURABLE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--tracing", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="subprocess runs per configuration (median)")
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--mode", default="sync")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.url, args.runs, args.mode)))
        return
    global ROUNDS
    ROUNDS = args.rounds

    rows: list[tuple[str, str, dict[str, float] | None]] = []
    with tempfile.TemporaryDirectory() as tmp:

        def sqlite_url() -> str:
            return f"sqlite:///{os.path.join(tmp, uuid.uuid4().hex + '.db')}"

        rows.append(("plain Python", "-", run_child("plain", "-", args.runs, "sync")))
        configs = [
            ("floor: 1 INSERT+COMMIT per step", "floor", "sync"),
            ("durable_core sync", "durable", "sync"),
            ("durable_core async", "durable", "async"),
            ("dbos 3.4.0 sync", "dbos", "sync"),
            ("dbos 3.4.0 async", "dbos", "async"),
        ]
        if args.tracing:
            configs[3:3] = [
                ("durable_core sync, no opentelemetry", "durable", "no-otel"),
                ("durable_core sync + OTel SDK", "durable", "tracing"),
            ]
        for label, kind, mode in configs:
            rows.append((label, "sqlite", run_child(kind, sqlite_url(), args.runs, mode)))
        rows.append(
            (
                "durable_core sync, synchronous=NORMAL",
                "sqlite",
                run_child("durable", sqlite_url(), args.runs, "normal"),
            )
        )
        for label, kind, mode in configs:
            url = fresh_pg(args.pg)
            try:
                rows.append((label, "postgres", run_child(kind, url, args.runs, mode)))
            finally:
                drop_pg(url)

    floors = {backend: r for label, backend, r in rows if label.startswith("floor") and r}
    dbos = {
        (backend, label.rsplit(" ", 1)[1]): r for label, backend, r in rows if label.startswith("dbos") and r
    }
    print(f"\ncore_steps: {STEPS}-step workflows, {args.runs} runs x {ROUNDS} processes each, medians (ms)\n")
    header = f"{'configuration':<40} {'backend':<9} {'wf 10 steps':>11} {'wf 0 steps':>10} {'per step':>9} {'vs floor':>9} {'dbos/us':>8}"
    print(header)
    print("-" * len(header))
    for label, backend, r in rows:
        if r is None:
            print(f"{label:<40} {backend:<9} {'failed':>11}")
            continue
        floor = floors.get(backend)
        vs_floor = f"{r['step_ms'] / floor['step_ms']:.2f}x" if floor and floor["step_ms"] > 0 else "-"
        flavour = "async" if "async" in label else "sync"
        ref = dbos.get((backend, flavour))
        vs_dbos = (
            f"{ref['step_ms'] / r['step_ms']:.1f}x"
            if ref and r["step_ms"] > 0 and label.startswith("durable_core")
            else "-"
        )
        print(
            f"{label:<40} {backend:<9} {r['wf10_ms']:>11.3f} {r['wf0_ms']:>10.3f} {r['step_ms']:>9.3f} {vs_floor:>9} {vs_dbos:>8}"
        )
    print(
        "\nvs floor: per-step cost / one INSERT+COMMIT; dbos/us: dbos per-step cost (same sync/async flavour) / this row's."
    )


if __name__ == "__main__":
    main()
