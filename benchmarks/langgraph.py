"""LangGraph checkpointers side by side: DurableCheckpointer against LangGraph's own savers.

A StateGraph of 5 chained trivial nodes (``count += 1``, ``items += [name]``) is invoked on
distinct threads with no checkpointer, InMemorySaver, SqliteSaver (file, WAL), PostgresSaver
and DurableCheckpointer on SQLite and on Postgres, for each durability mode. Then: bytes stored
per thread, and the time to list one 50-checkpoint history (20 other threads present).

    python benchmarks/langgraph.py                 # 200 invokes per cell, both backends
    python benchmarks/langgraph.py --runs 50 --no-postgres
    DURABLE_BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/postgres python benchmarks/langgraph.py

It prints tables with ratios and never asserts timings. SQLite savers use the same durability
(``synchronous=FULL``, SQLite's default) so the comparison is like for like.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import operator
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is named like the package it measures: keep its directory off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path[:0] = [str(ROOT), str(ROOT / "adapters")]

from durable_langgraph import DurableCheckpointer  # noqa: E402
from langgraph.checkpoint.base import BaseCheckpointSaver  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402

from durable_core import Engine  # noqa: E402

PG_URL = os.environ.get("DURABLE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MODES = ("sync", "async", "exit")


class State(TypedDict, total=False):
    count: int
    items: Annotated[list[str], operator.add]
    doc: str


def build(n: int = 5) -> StateGraph[Any]:
    builder: StateGraph[Any] = StateGraph(State)
    names = [f"n{i}" for i in range(1, n + 1)]
    for name in names:
        builder.add_node(name, lambda s, name=name: {"count": s["count"] + 1, "items": [name]})
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder


# -- savers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh Postgres database; yields its plain libpq URL."""
    import psycopg

    name = f"lgbench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Target:
    """A saver under test, with a way to measure what it stored."""

    def __init__(self, label: str, saver: BaseCheckpointSaver[Any] | None, size: Callable[[], int]) -> None:
        self.label = label
        self.saver = saver
        self.size = size


@contextlib.contextmanager
def targets(use_postgres: bool) -> Iterator[list[Target]]:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lgbench-")))
        out: list[Target] = [
            Target("no checkpointer", None, lambda: 0),
            Target("InMemorySaver", InMemorySaver(), lambda: 0),
        ]

        from langgraph.checkpoint.sqlite import SqliteSaver

        lite_path = tmp / "langgraph.sqlite"
        lite = stack.enter_context(SqliteSaver.from_conn_string(str(lite_path)))
        lite.setup()
        lite.conn.execute("PRAGMA synchronous=FULL")
        out.append(Target("SqliteSaver", lite, lambda: _sqlite_size(lite_path, lite.conn)))

        durable_path = tmp / "durable.sqlite"
        engine = stack.enter_context(Engine(f"sqlite:///{durable_path}", executor_id="bench"))
        out.append(Target("Durable (sqlite)", DurableCheckpointer(engine), lambda: _durable_size(engine)))

        if use_postgres:
            from langgraph.checkpoint.postgres import PostgresSaver

            pg_plain = stack.enter_context(pg_database())
            pg = stack.enter_context(PostgresSaver.from_conn_string(pg_plain))
            pg.setup()
            out.append(Target("PostgresSaver", pg, lambda: _pg_size(pg_plain, "public")))
            durable_pg = stack.enter_context(pg_database())
            pg_engine = stack.enter_context(
                Engine(durable_pg.replace("postgresql://", "postgresql+psycopg://"), executor_id="bench-pg")
            )
            out.append(
                Target("Durable (postgres)", DurableCheckpointer(pg_engine), lambda: _durable_size(pg_engine))
            )
        yield out


def _sqlite_size(path: Path, conn: Any) -> int:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def _durable_size(engine: Engine) -> int:
    database = engine.database
    if database.dialect == "sqlite":
        import sqlite3

        path = Path(str(database.sa_engine.url.database))
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size
    return _pg_size(
        str(database.sa_engine.url.render_as_string(hide_password=False)), database.schema, prefix="lg_"
    )


def _pg_size(url: str, schema: str, prefix: str = "checkpoint") -> int:
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r' "
            "AND c.relname LIKE %s",
            (schema, prefix + "%"),
        ).fetchone()
    return int(row[0]) if row else 0


# -- measurements ------------------------------------------------------------------------------


def time_invokes(all_targets: list[Target], mode: str, runs: int, batch: int = 10) -> dict[str, float]:
    """Median milliseconds per invoke on fresh threads, per target.

    Targets take turns in batches, so load on the machine during the run hits them all alike.
    """
    graphs = {t.label: build().compile(checkpointer=t.saver) for t in all_targets}
    samples: dict[str, list[float]] = {t.label: [] for t in all_targets}
    tag = uuid.uuid4().hex[:6]
    for t in all_targets:  # warm-up
        kwargs: dict[str, Any] = {"durability": mode} if t.saver is not None else {}
        for i in range(10):
            graphs[t.label].invoke(
                {"count": 0, "items": []}, {"configurable": {"thread_id": f"w-{tag}-{i}"}}, **kwargs
            )
    for round_ in range(max(1, runs // batch)):
        for t in all_targets:
            kwargs = {"durability": mode} if t.saver is not None else {}
            graph = graphs[t.label]
            for i in range(batch):
                config = {"configurable": {"thread_id": f"b-{mode}-{tag}-{round_}-{i}"}}
                start = time.perf_counter()
                graph.invoke({"count": 0, "items": []}, config, **kwargs)
                samples[t.label].append((time.perf_counter() - start) * 1000)
    return {label: statistics.median(values) for label, values in samples.items()}


def bytes_per_thread(target: Target, threads: int = 50) -> float:
    big = "x" * 10_000  # a large value set once and never changed (the dedup probe)
    graph = build().compile(checkpointer=target.saver)
    before = target.size()
    for i in range(threads):
        config = {"configurable": {"thread_id": f"size-{uuid.uuid4().hex}-{i}"}}
        graph.invoke({"count": 0, "items": [], "doc": big}, config, durability="async")
    return (target.size() - before) / threads


def list_history_ms(all_targets: list[Target], rounds: int = 5) -> dict[str, tuple[float, float]]:
    """(all 50 checkpoints, limit=10) median ms for one thread among 20 others, per target.

    Targets take turns (rounds of 4 listings each), so load on the machine hits them all alike.
    """
    configs: dict[str, Any] = {}
    for target in all_targets:
        assert target.saver is not None
        graph = build().compile(checkpointer=target.saver)
        for i in range(20):
            graph.invoke(
                {"count": 0, "items": []}, {"configurable": {"thread_id": f"o-{uuid.uuid4().hex}-{i}"}}
            )
        config = {"configurable": {"thread_id": f"hist-{uuid.uuid4().hex}"}}
        for _ in range(7):  # 7 checkpoints per run: 49, plus one update -> 50
            graph.invoke({"count": 0, "items": []}, config, durability="sync")
        graph.update_state(config, {"count": -1})
        assert len(list(target.saver.list(config))) == 50
        configs[target.label] = config
    full: dict[str, list[float]] = {t.label: [] for t in all_targets}
    short: dict[str, list[float]] = {t.label: [] for t in all_targets}
    for _ in range(rounds):
        for target in all_targets:
            assert target.saver is not None
            config = configs[target.label]
            for _ in range(4):
                start = time.perf_counter()
                list(target.saver.list(config))
                full[target.label].append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                list(target.saver.list(config, limit=10))
                short[target.label].append((time.perf_counter() - start) * 1000)
    return {label: (statistics.median(full[label]), statistics.median(short[label])) for label in full}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    use_postgres = not args.no_postgres and _postgres_up()
    with targets(use_postgres) as all_targets:
        by_mode = {m: time_invokes(all_targets, m, args.runs) for m in MODES}
        results = {t.label: {m: by_mode[m][t.label] for m in MODES} for t in all_targets}
        base = results["no checkpointer"]
        print(
            f"\n5-node graph, {args.runs} invokes on distinct threads, "
            "median ms per invoke (x = vs no checkpointer)"
        )
        print(f"{'saver':<22}" + "".join(f"{m:>18}" for m in MODES))
        print(f"{'no checkpointer':<22}" + "".join(f"{base[m]:>12.2f} ms     " for m in MODES))
        for target in all_targets[1:]:
            row = results[target.label]
            print(
                f"{target.label:<22}" + "".join(f"{row[m]:>9.2f} ({row[m] / base[m]:>4.1f}x) " for m in MODES)
            )
        pairs = [("Durable (sqlite)", "SqliteSaver"), ("Durable (postgres)", "PostgresSaver")]
        print("\nDurableCheckpointer vs LangGraph's saver on the same database (< 1.00 means faster)")
        for ours, theirs in pairs:
            if ours in results and theirs in results:
                ratios = "  ".join(f"{m}: {results[ours][m] / results[theirs][m]:.2f}" for m in MODES)
                print(f"  {ours:<20} / {theirs:<14} {ratios}")

        print(
            "\nStorage: growth per thread (50 threads, 'async', a 10 KB value set once), "
            "and list() of a 50-checkpoint thread"
        )
        print(f"{'saver':<22}{'bytes/thread':>14}{'list all':>12}{'limit=10':>12}")
        sizes = {target.label: bytes_per_thread(target) for target in all_targets[2:]}
        listing = list_history_ms(all_targets[2:])
        for target in all_targets[2:]:
            full, short = listing[target.label]
            print(f"{target.label:<22}{sizes[target.label]:>14,.0f}{full:>9.2f} ms{short:>9.2f} ms")
        for ours, theirs in pairs:
            if ours in sizes and theirs in sizes and sizes[theirs]:
                print(f"  {ours} stores {sizes[ours] / sizes[theirs]:.2f}x the bytes of {theirs}")


def _postgres_up() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
        return True
    except Exception as error:
        print(f"(Postgres unavailable at {PG_URL}: {error}; SQLite only)")
        return False


if __name__ == "__main__":
    main()
