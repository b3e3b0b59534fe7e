"""Benchmark: what durability costs a CrewAI kickoff, against plain kickoffs of the same crew.

The example research crew (examples/crewai/research_crew.py) without its human review: two
tasks, 4 LLM calls (a zero-latency scripted LLM) and 2 tool calls per kickoff, so a durable
kickoff records 10 steps (the 6 calls plus a start and an output step per task). Variants,
measured in one process, each on the same crew object:

- plain             `crew.kickoff`, no durability
- durable-sqlite    `durable_kickoff` on a fresh SQLite file (synchronous=FULL), a new workflow per run
- durable-sqlite-normal  the same with `Engine(sqlite_synchronous="NORMAL")` (no fsync per step)
- durable-postgres  the same on PostgreSQL (skipped when the server is unreachable)
- replay-sqlite     re-running a finished kickoff: its recorded result, no LLM or tool call

Prints a table of per-kickoff latency with the ratio to plain. It never asserts timings.

    python benchmarks/crewai.py [--runs 30] [--warmup 3] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

for _name in ("CREWAI_DISABLE_TELEMETRY", "OTEL_SDK_DISABLED", "CREWAI_TESTING"):
    os.environ.setdefault(_name, "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
# This file is named like the package it measures: keep its directory off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent / "examples" / "crewai"))

from research_crew import INPUTS, build_crew  # noqa: E402

from durable_core import Engine, workflow_options  # noqa: E402

PG_URL = os.environ.get("DURABLE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def measure(kickoff: Callable[[int], object], runs: int, warmup: int) -> list[float]:
    for index in range(warmup):
        kickoff(-1 - index)
    timings: list[float] = []
    for index in range(runs):
        started = time.perf_counter()
        kickoff(index)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def plain(runs: int, warmup: int) -> list[float]:
    crew = build_crew(durable=False, review=False)
    return measure(lambda _: crew.kickoff(inputs=INPUTS), runs, warmup)


def durable(url: str, runs: int, warmup: int, **engine_options: str) -> list[float]:
    crew = build_crew(durable=True, review=False)
    prefix = uuid.uuid4().hex[:8]

    def kickoff(index: int) -> object:
        with workflow_options(workflow_id=f"bench-{prefix}-{index}"):
            return crew.kickoff(inputs=INPUTS)

    with Engine(url, **engine_options):  # type: ignore[arg-type]
        return measure(kickoff, runs, warmup)


def replay(url: str, runs: int, warmup: int) -> list[float]:
    crew = build_crew(durable=True, review=False)
    with Engine(url):
        with workflow_options(workflow_id="bench-finished"):
            crew.kickoff(inputs=INPUTS)

        def kickoff(_: int) -> object:
            with workflow_options(workflow_id="bench-finished"):
                return crew.kickoff(inputs=INPUTS)

        return measure(kickoff, runs, warmup)


def postgres_reachable(url: str) -> bool:
    try:
        import sqlalchemy

        with sqlalchemy.create_engine(url).connect():
            return True
    except Exception:
        return False


def fresh_postgres(url: str) -> tuple[str, Callable[[], None]]:
    import sqlalchemy

    name = f"bench_crewai_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"{url.rsplit('/', 1)[0]}/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pg", default=PG_URL, help="PostgreSQL admin URL (a fresh database is created)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    results: dict[str, list[float]] = {"plain": plain(args.runs, args.warmup)}
    results["durable-sqlite"] = durable(f"sqlite:///{tmp / 'durable.db'}", args.runs, args.warmup)
    results["durable-sqlite-normal"] = durable(
        f"sqlite:///{tmp / 'normal.db'}", args.runs, args.warmup, sqlite_synchronous="NORMAL"
    )
    if postgres_reachable(args.pg):
        url, drop = fresh_postgres(args.pg)
        try:
            results["durable-postgres"] = durable(url, args.runs, args.warmup)
        finally:
            drop()
    else:
        print(f"(PostgreSQL unreachable at {args.pg}: durable-postgres skipped)")
    results["replay-sqlite"] = replay(f"sqlite:///{tmp / 'replay.db'}", args.runs, args.warmup)

    base = statistics.median(results["plain"])
    print(f"\nCrewAI kickoff: 2 tasks, 4 LLM + 2 tool calls; {args.runs} runs after {args.warmup} warm-up")
    print(f"{'variant':<23}{'median ms':>11}{'p90 ms':>10}{'min ms':>10}{'vs plain':>10}")
    for name, timings in results.items():
        ordered = sorted(timings)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        median = statistics.median(ordered)
        print(f"{name:<23}{median:>11.1f}{p90:>10.1f}{ordered[0]:>10.1f}{median / base:>9.2f}x")


if __name__ == "__main__":
    main()
