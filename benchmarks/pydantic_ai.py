"""Benchmark: what durability costs a Pydantic AI agent run, against plain runs and DBOS.

A `FunctionModel` agent calls three tools in sequence, then answers: 4 model requests and
3 tool calls per run (7 steps when every call is checkpointed). Variants, each in its own
process on a fresh database:

- plain      `Agent.run`, no durability
- capability the same agent with our `Durability` capability, outside any workflow: the toolkit
             stands aside there (what merely attaching it costs)
- toolkit-nodb  pydantic-ai's durability toolkit engaged (our capability told it is in a durable
             context) with steps that record nothing, and no workflow and no database at all: what
             any engine built on the toolkit pays before it stores anything
- toolkit    pydantic-ai's durability toolkit (our `Durability` capability) in a durable_core workflow
             on SQLite, with steps that record nothing: the toolkit's own cost, plus the workflow's
             start and finish rows (what DurableAgent cannot go below)
- commit-floor-sqlite  9 bare single-row INSERTs, each its own commit, with the sqlite3 module
             (WAL, `synchronous=FULL`, DurableAgent's default, and the engine's WAL checkpoint
             interval): the least that recording 7 steps plus the workflow's start and finish can
             cost on this disk, whatever the engine
- commit-floor-postgres  the same 9 commits on PostgreSQL: one autocommit INSERT each over one
             psycopg connection (the least a network round trip and a WAL flush per step cost)
- toolkit-commits-sqlite, toolkit-commits-postgres  `toolkit-nodb` with those bare commits made
             where a durable run makes them: one after each step's body, one before the run and
             one after it. On a VM a commit that follows a millisecond of other work can cost twice
             one made right after another, which the back-to-back `commit-floor-*` leave out;
             `toolkit-commits-postgres-async` makes them with an `await` on a psycopg
             `AsyncConnection` (as DurableAgent's async runs write), to compare with the sync ones
- durable    `DurableAgent.run` on SQLite and on PostgreSQL (every model request and tool a step);
             `durable-sqlite-normal` with `sqlite_synchronous="NORMAL"` (no fsync per commit)
- dbos       pydantic-ai's `DBOSDurability` inside a `@DBOS.workflow`, tools as `@DBOS.step`
             (so both engines checkpoint the same 7 steps), on SQLite and on PostgreSQL
- plain-20ms, durable-sqlite-20ms, durable-postgres-20ms  the same agent on a model whose every
             request takes 20 ms (an `await asyncio.sleep(0.02)`, a fast provider's latency);
             `toolkit-nodb-20ms` and `toolkit-commits-*-20ms`, the floors above on that model
             (an engine with no code of its own: what the toolkit and the bare commits alone cost
             when each commit follows a 20 ms wait)

Prints a table of per-run latency with the ratio to plain, then the floors no engine built on the
toolkit can go below with a commit per step (`toolkit-nodb` + `commit-floor-sqlite`, and
`toolkit-nodb` + `commit-floor-postgres`; and, measured in one run, `toolkit-commits-*`), and
DurableAgent's ratios to them, to DBOS and, on the 20 ms model, to plain. It never asserts timings.

    python benchmarks/pydantic_ai.py [--runs 100] [--rounds 4] [--warmup 5] [--pg URL]
        [--variants plain,durable-sqlite,...] [--paired]

`--paired` sets up the variants that can share a process side by side, one group per database
(`PAIRED_GROUPS`: plain, toolkit-nodb, the floors and DurableAgent, and the same on the 20 ms
model), and times them run by run in turn, so load that drifts on a shared VM falls on each alike;
the others (DBOS, toolkit-sqlite, durable-sqlite-normal) keep a process each.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OTEL_SDK_DISABLED", "true")
# This file is named like the package it measures: keep its directory off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

TOOLS = ("tool_a", "tool_b", "tool_c")
# A durable run of the benchmark agent commits 7 steps plus its workflow's start and finish.
COMMITS_PER_RUN = len(TOOLS) * 2 + 1 + 2
VARIANTS = (
    "plain",
    "capability",
    "toolkit-nodb",
    "toolkit-sqlite",
    "commit-floor-sqlite",
    "commit-floor-postgres",
    "toolkit-commits-sqlite",
    "toolkit-commits-postgres",
    "toolkit-commits-postgres-async",
    "durable-sqlite",
    "durable-sqlite-normal",
    "durable-postgres",
    "dbos-sqlite",
    "dbos-postgres",
    "plain-20ms",
    "toolkit-nodb-20ms",
    "toolkit-commits-sqlite-20ms",
    "toolkit-commits-postgres-20ms",
    "durable-sqlite-20ms",
    "durable-postgres-20ms",
)
MODEL_DELAY_SUFFIX = "-20ms"
MODEL_DELAY_SECONDS = 0.02
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def build_agent(
    name: str,
    *,
    capabilities: list[Any] | None = None,
    tool_wrapper: Callable[[Any], Any] | None = None,
    model_delay: float = 0.0,
):
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def respond(messages: list[ModelMessage]) -> ModelResponse:
        done = sum(1 for m in messages if m.kind == "response")
        if done < len(TOOLS):
            return ModelResponse(parts=[ToolCallPart(TOOLS[done], {"x": done})])
        return ModelResponse(parts=[TextPart("done")])

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return respond(messages)

    async def slow_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        await asyncio.sleep(model_delay)  # a fast provider's latency
        return respond(messages)

    function_model = FunctionModel(slow_model if model_delay else model)
    agent = Agent(function_model, name=name, capabilities=capabilities or [])
    for tool in TOOLS:

        def make(tool: str = tool) -> Callable[[int], Awaitable[str]]:
            async def run_tool(x: int) -> str:
                return f"{tool}:{x}"

            run_tool.__name__ = tool
            return tool_wrapper(run_tool) if tool_wrapper else run_tool

        agent.tool_plain(make())
    return agent


def _fresh_pg(admin_url: str) -> tuple[str, Callable[[], None]]:
    import psycopg
    from psycopg import sql

    name = f"bench_{uuid.uuid4().hex[:10]}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    return f"{admin_url.rsplit('/', 1)[0]}/{name}", drop


async def _settled(result: object) -> None:
    """Await what a commit returned if it is awaitable (an async commit), else nothing."""
    if inspect.isawaitable(result):
        await result


def _unrecorded_durability(*, engaged: bool = False, after_step: Callable[[], object] | None = None) -> Any:
    """Our `Durability` capability with steps that run their body and record nothing.

    `engaged`: the toolkit acts as if inside a workflow although there is none, and nothing reads
    workflow state: pydantic-ai's toolkit with no engine and no database under it.
    `after_step`: called after each step's body (where a durable run records the step).
    """
    from durable_pydantic_ai import Durability, StepBackend

    class UnrecordedBackend(StepBackend):
        async def execute(
            self, *, operation_id: Any, name: str, body: Any, cache_key: Any, config: Any
        ) -> object:
            payload = await body()
            if after_step is not None:
                await _settled(after_step())  # an async commit: `toolkit-commits-postgres-async`
            return payload

    class UnrecordedDurability(Durability[None]):
        def get_durable_operation_backend(self) -> StepBackend:
            if self._backend is None:
                self._backend = UnrecordedBackend(agent_name=self.name or "bench")
            return self._backend

    class EngagedDurability(UnrecordedDurability):
        @property
        def in_durable_context(self) -> bool:
            return True

        def get_default_run_id(self) -> str | None:
            return None

        def get_default_conversation_id(self, run_id: str) -> str | None:
            return None

    return EngagedDurability() if engaged else UnrecordedDurability()


def _wal_pages() -> int:
    """The engine's WAL checkpoint interval, which the SQLite floors use too: a commit that grows the
    WAL costs more than one that reuses its space, so the floors get the engine's setting."""
    from durable_core.storage._database import SQLITE_WAL_AUTOCHECKPOINT_PAGES

    return SQLITE_WAL_AUTOCHECKPOINT_PAGES


Runner = tuple[Callable[[int], Awaitable[object]], Callable[[], int]]
"""A variant ready to time: `run(i)` makes run number `i`; `steps()` counts the commits or steps of a run."""


def _commit_floor(tmp: Path, cleanup: list[Callable[[], None]]) -> Runner:
    """9 single-row INSERTs per run (7 steps, the workflow's start and finish), each committed on
    its own (WAL, synchronous=FULL)."""
    import sqlite3

    conn = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    cleanup.insert(0, conn.close)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA wal_autocheckpoint={_wal_pages()}")  # as the engine's (see `_wal_pages`)
    conn.execute("CREATE TABLE steps (run INTEGER, step INTEGER, output TEXT, PRIMARY KEY (run, step))")
    output = json.dumps({"parts": [{"part_kind": "text", "content": "x" * 200}], "kind": "response"})

    async def one(i: int) -> None:
        for step in range(COMMITS_PER_RUN):
            conn.execute("INSERT INTO steps VALUES (?, ?, ?)", (i, step, output))

    return one, lambda: COMMITS_PER_RUN


def _commit_floor_postgres(pg_url: str, cleanup: list[Callable[[], None]]) -> Runner:
    """9 single-row INSERTs per run on PostgreSQL, each an autocommit statement of its own (one
    round trip and one WAL flush each), over one psycopg connection."""
    import psycopg

    url, drop = _fresh_pg(pg_url)
    cleanup.append(drop)
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    cleanup.insert(0, conn.close)
    conn.execute("CREATE TABLE steps (run INTEGER, step INTEGER, output TEXT, PRIMARY KEY (run, step))")
    output = json.dumps({"parts": [{"part_kind": "text", "content": "x" * 200}], "kind": "response"})

    async def one(i: int) -> None:
        for step in range(COMMITS_PER_RUN):
            conn.execute("INSERT INTO steps VALUES (%s, %s, %s)", (i, step, output))

    return one, lambda: COMMITS_PER_RUN


def _toolkit_commits(
    backend: str, tmp: Path, pg_url: str, cleanup: list[Callable[[], None]], model_delay: float = 0.0
) -> Runner:
    """`toolkit-nodb` with one bare commit after each step's body and one before and after the run:
    the commits of `commit-floor-*`, made at the moments a durable run makes them."""
    import itertools

    output = json.dumps({"parts": [{"part_kind": "text", "content": "x" * 200}], "kind": "response"})
    keys = itertools.count()
    if backend == "sqlite":
        import sqlite3

        lite = sqlite3.connect(tmp / "commits.db", isolation_level=None)
        cleanup.insert(0, lite.close)
        lite.execute("PRAGMA journal_mode=WAL")
        lite.execute("PRAGMA synchronous=FULL")
        lite.execute(f"PRAGMA wal_autocheckpoint={_wal_pages()}")
        lite.execute("CREATE TABLE steps (id INTEGER PRIMARY KEY, output TEXT)")

        def commit_lite() -> None:
            lite.execute("INSERT INTO steps VALUES (?, ?)", (next(keys), output))

        commit: Callable[[], object] = commit_lite

    else:
        import psycopg

        url, drop = _fresh_pg(pg_url)
        cleanup.append(drop)
        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        pg = psycopg.connect(conninfo, autocommit=True)
        cleanup.insert(0, pg.close)
        pg.execute("CREATE TABLE steps (id INTEGER PRIMARY KEY, output TEXT)")

        def commit_sync() -> None:
            pg.execute("INSERT INTO steps VALUES (%s, %s)", (next(keys), output))

        loop_conn: list[psycopg.AsyncConnection[Any]] = []  # opened on the timing loop

        async def commit_async() -> None:
            if not loop_conn:
                loop_conn.append(await psycopg.AsyncConnection.connect(conninfo, autocommit=True))
            await loop_conn[0].execute("INSERT INTO steps VALUES (%s, %s)", (next(keys), output))

        commit = commit_async if backend == "postgres-async" else commit_sync

    agent = build_agent(
        "bench",
        capabilities=[_unrecorded_durability(engaged=True, after_step=commit)],
        model_delay=model_delay,
    )
    calls = itertools.count()

    async def one(i: int) -> object:
        next(calls)
        await _settled(commit())  # the workflow's start
        result = await agent.run("go")
        await _settled(commit())  # its finish
        return result

    return one, lambda: next(keys) // max(1, next(calls))


def _toolkit_only(tmp: Path, cleanup: list[Callable[[], None]]) -> Runner:
    """Pydantic AI's durability toolkit inside a durable_core workflow, with steps that record nothing:
    the part of DurableAgent's cost that is the toolkit's own (plus the workflow's start and finish)."""
    from durable_core import Engine, workflow, workflow_options

    agent = build_agent("bench", capabilities=[_unrecorded_durability()])

    @workflow(name="bench.toolkit_only")
    async def run_agent(prompt: str) -> str:
        return (await agent.run(prompt)).output

    engine = Engine(f"sqlite:///{tmp / 'toolkit.db'}")
    engine.launch()
    cleanup.insert(0, engine.shutdown)

    async def one(i: int) -> object:
        with workflow_options(workflow_id=f"run-{i}"):
            return await run_agent("go")

    return one, lambda: len(engine.list_steps("run-0"))


def _durable(
    variant: str, tmp: Path, pg_url: str, cleanup: list[Callable[[], None]], model_delay: float
) -> Runner:
    from durable_pydantic_ai import DurableAgent

    from durable_core import Engine

    if "sqlite" in variant:
        url = f"sqlite:///{tmp / 'durable.db'}"
    else:
        url, drop = _fresh_pg(pg_url)
        cleanup.append(drop)
    durable_agent = DurableAgent(build_agent("bench", model_delay=model_delay))
    engine = Engine(url, sqlite_synchronous="NORMAL" if variant.endswith("normal") else "FULL")
    engine.launch()
    cleanup.insert(0, engine.shutdown)
    return lambda i: durable_agent.run("go", run_id=f"run-{i}"), lambda: len(engine.list_steps("run-0"))


def _dbos(variant: str, tmp: Path, pg_url: str, cleanup: list[Callable[[], None]]) -> Runner:
    from dbos import DBOS, SetWorkflowID
    from pydantic_ai.durable_exec.dbos import DBOSDurability

    if variant.endswith("sqlite"):
        url = f"sqlite:///{tmp / 'dbos.sqlite'}"
    else:
        url, drop = _fresh_pg(pg_url)
        cleanup.append(drop)
    DBOS(config={"name": "bench", "system_database_url": url, "log_level": "WARNING"})
    agent = build_agent("bench", capabilities=[DBOSDurability()], tool_wrapper=DBOS.step())

    @DBOS.workflow()
    async def run_agent(prompt: str) -> str:
        return (await agent.run(prompt)).output

    DBOS.launch()
    cleanup.insert(0, DBOS.destroy)

    async def one(i: int) -> object:
        with SetWorkflowID(f"run-{i}"):
            return await run_agent("go")

    return one, lambda: len(DBOS.list_workflow_steps("run-0"))


def build_runner(variant: str, tmp: Path, pg_url: str, cleanup: list[Callable[[], None]]) -> Runner:
    """Set one variant up (its agent, engine, database); its teardown goes to `cleanup`."""
    model_delay = MODEL_DELAY_SECONDS if variant.endswith(MODEL_DELAY_SUFFIX) else 0.0
    if variant.startswith("plain"):
        agent = build_agent("bench", model_delay=model_delay)
        return lambda i: agent.run("go"), lambda: 0
    if variant == "capability":
        agent = build_agent("bench", capabilities=[_unrecorded_durability()])
        return lambda i: agent.run("go"), lambda: 0
    if variant.startswith("toolkit-nodb"):
        agent = build_agent(
            "bench", capabilities=[_unrecorded_durability(engaged=True)], model_delay=model_delay
        )
        return lambda i: agent.run("go"), lambda: 0
    if variant == "toolkit-sqlite":
        return _toolkit_only(tmp, cleanup)
    if variant == "commit-floor-sqlite":
        return _commit_floor(tmp, cleanup)
    if variant == "commit-floor-postgres":
        return _commit_floor_postgres(pg_url, cleanup)
    if variant.startswith("toolkit-commits-"):
        backend = variant.removesuffix(MODEL_DELAY_SUFFIX).removeprefix("toolkit-commits-")
        return _toolkit_commits(backend, tmp, pg_url, cleanup, model_delay)
    if variant.startswith("durable"):
        return _durable(variant, tmp, pg_url, cleanup, model_delay)
    if variant.startswith("dbos"):
        return _dbos(variant, tmp, pg_url, cleanup)
    raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")


def _teardown(cleanup: list[Callable[[], None]]) -> None:
    for action in cleanup:
        try:
            action()
        except Exception as error:  # a benchmark's teardown must not hide its numbers
            print(f"cleanup failed: {error}", file=sys.stderr)


def run_variant(variant: str, runs: int, warmup: int, pg_url: str) -> dict[str, Any]:
    """Runs in a child process: time one variant, return its per-run latencies (ms)."""
    return run_paired([variant], runs, warmup, pg_url)[variant]


def run_paired(variants: list[str], runs: int, warmup: int, pg_url: str) -> dict[str, dict[str, Any]]:
    """Runs in a child process: the variants set up side by side, then timed run by run in turn
    (one run of each, again and again), so load that drifts during the process falls on each alike."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-pai-"))
    cleanup: list[Callable[[], None]] = []
    try:
        runners = {variant: build_runner(variant, tmp, pg_url, cleanup) for variant in variants}
        times: dict[str, list[float]] = {variant: [] for variant in variants}

        async def interleaved() -> None:
            for i in range(-warmup, runs):
                for variant, (run, _steps) in runners.items():
                    start = time.perf_counter()
                    await run(i)
                    if i >= 0:
                        times[variant].append((time.perf_counter() - start) * 1000)

        asyncio.run(interleaved())
        return {variant: {"times": times[variant], "steps": runners[variant][1]()} for variant in variants}
    finally:
        _teardown(cleanup)


def _row(variant: str, data: dict[str, Any], plain_median: float | None) -> str:
    times: list[float] = data["times"]
    median = statistics.median(times)
    p90 = sorted(times)[int(len(times) * 0.9) - 1]
    ratio = f"{median / plain_median:5.2f}x" if plain_median else "   - "
    return (
        f"| {variant:<30} | {median:8.2f} | {p90:8.2f} | {min(times):8.2f} | {ratio} | {data['steps']:>5} |"
    )


# `--paired`: the variants that can share one process, one group per database (one engine each),
# timed run by run in turn; DBOS, `toolkit-sqlite` and `durable-sqlite-normal` keep their own
# processes (DBOS is one per process; `DurableAgent` runs on the engine launched last).
PAIRED_GROUPS = tuple(
    (
        f"plain{delay}",
        f"toolkit-nodb{delay}",
        *((f"commit-floor-{backend}",) if not delay else ()),
        f"toolkit-commits-{backend}{delay}",
        f"durable-{backend}{delay}",
    )
    for delay in ("", MODEL_DELAY_SUFFIX)
    for backend in ("sqlite", "postgres")
)


def _child(args: argparse.Namespace, flag: str, what: str, runs: int) -> Any:
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            flag,
            what,
            "--runs",
            str(runs),
            "--warmup",
            str(args.warmup),
            "--pg",
            args.pg,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        print(f"{what}: failed\n{child.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pg", default=os.environ.get("DURABLE_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=4, help="turns each variant takes (runs split evenly)")
    parser.add_argument(
        "--paired",
        action="store_true",
        help="time the variants that can share a process side by side, run by run in turn (see PAIRED_GROUPS)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-group", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(run_variant(args.child, args.runs, args.warmup, args.pg)))
        return
    if args.child_group:
        print(json.dumps(run_paired(args.child_group.split(","), args.runs, args.warmup, args.pg)))
        return

    # Variants take turns, `--rounds` times, each turn in a fresh process: load that drifts
    # during the run (a shared 2-core machine) then falls on every variant alike. `--paired`
    # goes further: within a process, the variants of a group alternate run by run.
    wanted = args.variants.split(",")
    groups = [[v for v in group if v in wanted] for group in PAIRED_GROUPS] if args.paired else []
    grouped = {variant for group in groups for variant in group}
    results: dict[str, dict[str, Any]] = {}

    def keep(variant: str, data: dict[str, Any]) -> None:
        if variant in results:
            results[variant]["times"].extend(data["times"])
        else:
            results[variant] = data

    per_round = max(1, args.runs // args.rounds)
    for _ in range(args.rounds):
        for group in groups:
            if group:
                for variant, data in (
                    _child(args, "--child-group", ",".join(group), per_round) or {}
                ).items():
                    keep(variant, data)
        for variant in wanted:
            if variant not in grouped and (data := _child(args, "--child", variant, per_round)) is not None:
                keep(variant, data)

    medians = {variant: statistics.median(data["times"]) for variant, data in results.items()}
    how = " (paired: the variants of a database side by side, run by run)" if args.paired else ""
    print(
        f"\n3-tool FunctionModel agent: {per_round * args.rounds} runs per variant in {args.rounds} turns,"
        f" {args.warmup} warm-up runs per turn{how} (ms per run; x plain: against plain on the same model)\n"
    )
    print("| variant                        |   median |      p90 |      min | x plain | steps |")
    print("|--------------------------------|----------|----------|----------|---------|-------|")
    for variant in [v for v in wanted if v in results]:
        same_model = "plain-20ms" if variant.endswith(MODEL_DELAY_SUFFIX) else "plain"
        print(_row(variant, results[variant], medians.get(same_model)))
    print(
        "\nsteps: checkpointed steps per run (model requests + tool calls; for the commit floors,"
        " bare commits: 7 steps + workflow start and finish). Timings vary run to run; compare ratios."
    )
    _print_targets(medians)


def _print_targets(medians: dict[str, float]) -> None:
    """The floors on each database, and DurableAgent's ratios to them, to DBOS and to plain."""
    plain = medians.get("plain")
    toolkit = medians.get("toolkit-nodb")
    for backend, label in (("sqlite", "SQLite FULL"), ("postgres", "PostgreSQL")):
        commits = medians.get(f"commit-floor-{backend}")
        if toolkit is None or commits is None:
            continue
        floor = toolkit + commits
        versus_plain = f" = {floor / plain:.2f}x plain" if plain else ""
        print(
            f"floor for any engine on pydantic-ai's toolkit with one commit per step, {label}:"
            f" toolkit-nodb + commit-floor-{backend} = {floor:.2f} ms{versus_plain}"
        )
        durable = medians.get(f"durable-{backend}")
        if durable is not None:
            print(f"  durable-{backend} / floor = {durable / floor:.3f}x")
    for backend, label in (("sqlite", "SQLite FULL"), ("postgres", "PostgreSQL")):
        in_place = medians.get(f"toolkit-commits-{backend}")
        if in_place is None:
            continue
        print(
            f"the same floor with the commits where a run makes them, {label}: toolkit-commits-{backend}"
            f" = {in_place:.2f} ms" + (f" = {in_place / plain:.2f}x plain" if plain else "")
        )
        durable = medians.get(f"durable-{backend}")
        if durable is not None:
            print(f"  durable-{backend} / toolkit-commits-{backend} = {durable / in_place:.3f}x")
        commits = medians.get(f"commit-floor-{backend}")
        if toolkit is not None and commits is not None:
            # an engine with no code of its own (bare commits where a run makes them) against the
            # back-to-back floor: what the floor leaves out of a commit made inside a run
            print(
                f"  toolkit-commits-{backend} / (toolkit-nodb + commit-floor-{backend})"
                f" = {in_place / (toolkit + commits):.3f}x"
            )
    for backend in ("sqlite", "postgres"):
        durable, dbos = medians.get(f"durable-{backend}"), medians.get(f"dbos-{backend}")
        if durable is not None and dbos is not None:
            print(f"durable-{backend} / dbos-{backend} = {durable / dbos:.3f}x")
    slow_plain = medians.get(f"plain{MODEL_DELAY_SUFFIX}")
    for backend in ("sqlite", "postgres"):
        durable = medians.get(f"durable-{backend}{MODEL_DELAY_SUFFIX}")
        if durable is not None and slow_plain:
            print(
                f"durable-{backend}{MODEL_DELAY_SUFFIX} / plain{MODEL_DELAY_SUFFIX} = {durable / slow_plain:.3f}x"
            )
        for measured in (
            f"toolkit-nodb{MODEL_DELAY_SUFFIX}",
            f"toolkit-commits-{backend}{MODEL_DELAY_SUFFIX}",
        ):
            if slow_plain and measured in medians:
                print(f"  {measured} / plain{MODEL_DELAY_SUFFIX} = {medians[measured] / slow_plain:.3f}x")
        commits = medians.get(f"commit-floor-{backend}")
        if slow_plain and plain and toolkit and commits is not None:
            # what the toolkit adds to a plain run, and the commits, do not overlap the model's wait
            floor = slow_plain + (toolkit - plain) + commits
            print(
                f"  floor on the {MODEL_DELAY_SUFFIX[1:]} model, {backend}: plain{MODEL_DELAY_SUFFIX}"
                f" + (toolkit-nodb - plain) + commit-floor-{backend} = {floor:.2f} ms"
                f" = {floor / slow_plain:.3f}x plain{MODEL_DELAY_SUFFIX}"
            )


if __name__ == "__main__":
    main()
