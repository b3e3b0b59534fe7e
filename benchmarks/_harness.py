"""Shared plumbing for the benchmarks: fresh databases, child processes, percentiles, tables."""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

PG_ADMIN = os.environ.get("DURABLE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def fresh_pg(admin_url: str = PG_ADMIN) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg(url: str) -> None:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def fresh_sqlite(directory: str, wal: bool = True) -> str:
    path = os.path.join(directory, uuid.uuid4().hex + ".db")
    if wal:  # the same file settings for every engine under test
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
    return f"sqlite:///{path}"


LIBRARIES = (("durable", "durable_core"), ("dbos", "dbos 3.4.0"))
"""(kind, label) of every library the side-by-side benchmarks run."""


@contextmanager
def fresh_database(backend: str, directory: str) -> Iterator[str]:
    """A new SQLite file (WAL) in `directory`, or a new Postgres database dropped afterwards."""
    url = fresh_sqlite(directory) if backend == "sqlite" else fresh_pg()
    try:
        yield url
    finally:
        if backend == "postgres":
            drop_pg(url)


def run_child(script: str, *args: str, timeout: float = 1800) -> Any:
    """Run `python script --child ...args`; return the JSON it printed last, or None on failure."""
    proc = subprocess.run(
        [sys.executable, script, "--child", *args], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        print(f"  child {args} failed: {tail}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spawn_child(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, script, "--child", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}\n")
    for n, row in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return "-" if value is None else str(value)
