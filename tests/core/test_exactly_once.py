"""Exactly once under every change of ownership, counted by an external ledger (issue 16, item 3).

Worker processes (tests/apps/core_torture_worker.py: 3 on PostgreSQL, 2 on SQLite, each an Engine with
a 0.2 s heartbeat and a 1.5 s lease serving the queue ``exactly_once``) drain 50 queued workflows
of 20 sequential steps. While they run the test SIGKILLs random workers (each replaced by a new
process, so a new executor id), SIGSTOPs a random worker for 2.5 leases (its workflows are taken
over by the survivors) then SIGCONTs it, and cancels a workflow whose worker has just started a
slow step then resumes it at once from the test process's own launched engine (which has the
code, so the resumed body runs there and usually records that step before the worker does).

The ledger is a file outside the library's database: each step body appends ``S`` when it starts
and ``D`` before it returns, each workflow function ``W`` when it starts (first run or replay)
and ``E`` before it returns; every line carries the workflow id, the step, the pid and
CLOCK_MONOTONIC nanoseconds, written with O_APPEND and fsynced. Counting is done on those lines
only, never on the library's records.

Pass rule:

1. Every workflow ends SUCCESS with the sum of its step values; every (workflow, step) has a ``D``
   line (no step missing).
2. Duplicates. A *re-execution* is every ``S`` line of a (workflow, step) after its first. Each
   disruption d grants one re-execution *token* to each workflow that was in the hands of the
   disrupted process at d, i.e. the workflow's latest ledger line before d was written by that
   process and is not its ``E`` line (for a cancel: the cancelled workflow, whoever held it). With
   s the step of that latest line (the step in flight, or just finished and maybe not committed):
   a kill allows a re-execution of s; a freeze or a cancel allows s or s + 1, because the process
   that lost the workflow may still start the next step before its next step write proves it no
   longer owns it (DESIGN 3: the ownership proof is the step write itself). If that latest line is
   ``W`` (a replay that had not reached a live step), a freeze or cancel allows m or m + 1 (m: the
   highest step started so far) and a kill allows nothing. A freeze is judged at the moments the
   survivors claim the frozen executor's workflows (the library's "Executor X is gone" log line),
   not at SIGSTOP: a claim can come just after SIGCONT, before the thawed process renews its
   heartbeat, when it has already started further steps (or picked the requeued workflow up
   again: then each such claim takes it away once more and grants its own token). A freeze also grants a token to a
   workflow the frozen process had taken (dequeued or claimed) but not started, seen as its first
   line after the freeze being a ``W`` written within 0.5 s of SIGCONT: that body loads the steps
   recorded by then, and the token allows the first step it starts. A logged takeover that no
   kill or freeze of X explains is a *lapse* (a live executor judged dead, e.g. a machine too busy
   for its heartbeat): a legitimate loss of ownership, counted apart and granting tokens like a
   freeze. Every re-execution must consume its own token (a maximum bipartite matching per
   workflow); an unmatched one is a violation.
3. One body, ever. An *out-of-order start* is an ``S`` line of (workflow, step s) by process P
   whose start time is after another process's ``S`` line of a later step s' > s of that workflow:
   step s was already recorded when P started it, so P ran a body it no longer owned. Per
   (workflow, process) at most one per freeze, cancel or lapse token held by that process (the step
   the contract lets a stopped-then-resumed owner start before its write is refused). A stale body
   that keeps going after losing its workflow fails this rule at its second step.

The counts are printed (run with ``-s`` to see them) and are in every assertion message.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import pytest

from durable_core import Engine, workflow_options

WORKER = Path(__file__).parents[1] / "apps" / "core_torture_worker.py"
pytestmark = pytest.mark.crash

WORKFLOWS = 50
STEPS = 20
HEARTBEAT, LEASE = 0.2, 1.5
FREEZE_SECONDS = 2.5 * LEASE
WORKER_COUNT = {"postgres": 3, "sqlite": 2}
WORKER_ENV = {
    "EO_STEP_SLEEP_SCALE": "1.0",
    "EO_WORKER_CONCURRENCY": "3",
    "EO_HEARTBEAT": str(HEARTBEAT),
    "EO_LEASE": str(LEASE),
}
SCHEDULE = ["kill", "cancel", "freeze", "cancel", "kill", "cancel", "kill", "freeze", "cancel", "kill"]
W_AFTER_THAW_NS = 500_000_000
TAKEOVER_LOG = re.compile(r"^(\d+\.\d+) pid=\d+ \S+ \S+ (Executor \S+ is gone; resumed \d+)", re.M)
TAKEOVER = re.compile(r"Executor (\S+) is gone; resumed (\d+)")


def _app() -> ModuleType:
    """The worker module, imported once per pytest process (it registers eo_flow and the queue)."""
    name = "durable_torture_worker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, WORKER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# -- the ledger and its analysis ------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    pos: int
    wf: str
    step: int
    pid: int
    kind: str
    ns: int
    sleep_ms: int = 0


@dataclass
class Disruption:
    kind: str  # "kill", "freeze" or "cancel"
    ns: int
    pid: int | None = None  # the process killed or frozen
    end_ns: int | None = None  # SIGCONT of a freeze
    workflow_id: str | None = None  # the workflow cancelled
    resumed: bool = False
    claims: list[int] = field(default_factory=list)  # a freeze: when survivors took its workflows


@dataclass
class Token:
    disruption: int
    kind: str
    holder: int
    allowed: frozenset[int]


@dataclass
class Analysis:
    s_lines: int = 0
    d_lines: int = 0
    missing: list[tuple[str, int]] = field(default_factory=list)
    reexecutions: int = 0
    tokens: int = 0
    unmatched: list[str] = field(default_factory=list)  # one entry per workflow
    unmatched_count: int = 0
    out_of_order: int = 0
    stale: list[str] = field(default_factory=list)
    replays: int = 0
    explained: Counter[str] = field(default_factory=Counter)  # re-executions matched, by disruption


def read_ledger(path: Path) -> list[Line]:
    lines: list[Line] = []
    for pos, raw in enumerate(path.read_text().splitlines()):
        wf, step_no, pid, kind, ns, sleep_ms = raw.split(",")
        lines.append(Line(pos, wf, int(step_no), int(pid), kind, int(ns), int(sleep_ms)))
    return lines


def _tokens_for(d_index: int, d: Disruption, ordered: list[Line]) -> list[Token]:
    """The re-execution tokens disruption d grants to the workflow whose lines are `ordered`.

    A freeze takes workflows away when survivors claim them, which may also happen just after
    SIGCONT (before the thawed process renews its heartbeat), even twice by two claimers, each
    time the process has picked the requeued workflow up again. So a freeze is judged at each
    logged claim of the frozen executor (at SIGSTOP when none was logged): a claim finds the
    workflow in the frozen process's hands at the first claim, or at a later one if the process
    wrote a line of it since the previous claim (it had taken it again)."""
    if d.kind != "freeze":
        token = _token_at(d_index, d, d.ns, ordered, first=True)
        return [token] if token is not None else []
    tokens: list[Token] = []
    previous: int | None = None
    for at in sorted(d.claims) or [d.ns]:
        fresh = previous is None or any(ln.pid == d.pid and previous <= ln.ns < at for ln in ordered)
        token = _token_at(d_index, d, at, ordered, first=previous is None) if fresh else None
        if token is not None:
            tokens.append(token)
        previous = at
    return tokens


def _token_at(d_index: int, d: Disruption, at: int, ordered: list[Line], *, first: bool) -> Token | None:
    before = [ln for ln in ordered if ln.ns < at]
    if d.kind != "cancel" and (not before or before[-1].pid != d.pid):
        if d.kind == "freeze" and d.end_ns is not None and first:
            # taken (dequeued or claimed) by the frozen process but not started: its body starts at
            # thaw, from the steps recorded when it loads them, and may run that one first step
            after = [ln for ln in ordered if ln.ns >= at and ln.pid == d.pid]
            if after and after[0].kind == "W" and after[0].ns - d.end_ns < W_AFTER_THAW_NS:
                first = next((ln.step for ln in after if ln.kind == "S"), None)
                if first is not None:
                    return Token(d_index, d.kind, d.pid or 0, frozenset({first}))
        return None
    if not before or before[-1].kind == "E":
        return None
    last = before[-1]
    if last.kind == "W":
        if d.kind == "kill":
            return None
        m = max((ln.step for ln in before if ln.kind == "S"), default=0)
        return Token(d_index, d.kind, last.pid, frozenset({m, m + 1} - {0}))
    allowed = {last.step} if d.kind == "kill" else {last.step, last.step + 1}
    return Token(d_index, d.kind, last.pid, frozenset(allowed))


def _match(extras: list[int], tokens: list[Token]) -> tuple[list[int], list[Token]]:
    """Maximum bipartite matching of re-executed steps to tokens: (unmatched steps, tokens used)."""
    owner: dict[int, int] = {}  # token index -> extra index

    def augment(e: int, seen: set[int]) -> bool:
        for t, token in enumerate(tokens):
            if extras[e] in token.allowed and t not in seen:
                seen.add(t)
                if t not in owner or augment(owner[t], seen):
                    owner[t] = e
                    return True
        return False

    unmatched = [extras[e] for e in range(len(extras)) if not augment(e, set())]
    return unmatched, [tokens[t] for t in owner]


def analyse(
    lines: list[Line], disruptions: list[Disruption], workflow_ids: list[str], origin: int
) -> Analysis:
    def at(ns: int) -> str:
        return f"+{(ns - origin) / 1e9:.2f}s"

    def lost(tokens: list[Token], pid: int) -> str:
        held = [f"{t.kind} {at(disruptions[t.disruption].ns)}" for t in tokens if t.holder == pid]
        return ", ".join(held) or "no disruption"

    result = Analysis()
    by_wf: dict[str, list[Line]] = defaultdict(list)
    for ln in lines:
        by_wf[ln.wf].append(ln)
    for wf in workflow_ids:
        ordered = sorted(by_wf[wf], key=lambda ln: (ln.ns, ln.pos))
        starts = Counter(ln.step for ln in ordered if ln.kind == "S")
        dones = Counter(ln.step for ln in ordered if ln.kind == "D")
        result.s_lines += sum(starts.values())
        result.d_lines += sum(dones.values())
        result.replays += max(0, sum(1 for ln in ordered if ln.kind == "W") - 1)
        result.missing.extend((wf, s) for s in range(1, STEPS + 1) if dones[s] == 0)

        # rule 2: every re-execution consumes a token of a disruption that hit this workflow
        tokens = [
            token
            for i, d in enumerate(disruptions)
            if d.kind != "cancel" or d.workflow_id == wf
            for token in _tokens_for(i, d, ordered)
        ]
        result.tokens += len(tokens)
        extras = [s for s, c in sorted(starts.items()) for _ in range(c - 1)]
        result.reexecutions += len(extras)
        unmatched, used = _match(extras, tokens)
        result.explained.update(t.kind for t in used)
        if unmatched:
            first = unmatched[0]
            runs = ", ".join(
                f"pid {ln.pid} {at(ln.ns)}" for ln in ordered if ln.kind == "S" and ln.step == first
            )
            result.unmatched.append(
                f"{wf}: steps {unmatched} re-executed with no disruption left to explain them "
                f"(step {first} started by {runs}); tokens "
                f"{[(t.kind, t.holder, sorted(t.allowed)) for t in tokens]}"
            )
            result.unmatched_count += len(unmatched)

        # rule 3: a step started after another process had started a later step of the workflow
        stale: dict[int, list[int]] = defaultdict(list)
        for i, ln in enumerate(ordered):
            if ln.kind == "S" and any(
                o.kind == "S" and o.pid != ln.pid and o.step > ln.step for o in ordered[:i]
            ):
                stale[ln.pid].append(ln.step)
                result.out_of_order += 1
        for pid, steps in stale.items():
            grace = sum(1 for t in tokens if t.kind != "kill" and t.holder == pid)
            if len(steps) > grace:
                first = next(ln for ln in ordered if ln.pid == pid and ln.kind == "S" and ln.step == steps[0])
                result.stale.append(
                    f"{wf}: pid {pid} started steps {steps} (from {at(first.ns)}) after another process "
                    f"had started a later step; {grace} allowed (it lost {wf} at: {lost(tokens, pid)})"
                )
    return result


def takeover_disruptions(
    logged: list[tuple[float, str]], disruptions: list[Disruption], wall_minus_mono: float
) -> tuple[Counter[str], list[Disruption]]:
    """Sort the library's "Executor X is gone" claims by cause: a freeze of X (during it or within
    a second of SIGCONT), a kill of X (after it), or a lapse: a live executor judged dead (the
    machine was too busy for its heartbeat). A claim of a frozen executor is noted on its freeze. A
    lapse is a legitimate loss of ownership, so it is returned as a disruption of that process
    (tokens like a freeze: s or s + 1)."""
    counts: Counter[str] = Counter()
    lapses: list[Disruption] = []
    for created, message in logged:
        match = TAKEOVER.search(message)
        if match is None:
            continue
        parts = match.group(1).split(":")  # default executor ids: host:pid or host:pid:n
        pid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
        ns = int((created - wall_minus_mono) * 1e9)
        freezes = [
            d
            for d in disruptions
            if d.kind == "freeze" and d.pid == pid and d.ns <= ns <= (d.end_ns or 0) + 10**9
        ]
        if freezes:
            counts["of frozen"] += 1
            freezes[0].claims.append(ns)
        elif any(d.kind == "kill" and d.pid == pid and d.ns <= ns for d in disruptions):
            counts["of killed"] += 1
        else:
            counts["lapsed"] += 1
            lapses.append(Disruption("lapse", ns, pid=pid))
    return counts, lapses


# -- processes ------------------------------------------------------------------------------


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    out: IO[bytes]
    err: IO[bytes]
    out_path: Path
    err_path: Path


def _freeze(worker: Worker, url: str) -> int:
    """SIGSTOP the worker when it holds no SQLite write lock (a writer frozen inside its write
    transaction would block every process: that is SQLite's locking); return the stop time."""
    for _ in range(200):
        stopped_at = time.monotonic_ns()
        worker.process.send_signal(signal.SIGSTOP)
        if not url.startswith("sqlite"):
            return stopped_at
        probe = sqlite3.connect(url.split("///", 1)[1], timeout=0.3, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return stopped_at
        except sqlite3.OperationalError:
            worker.process.send_signal(signal.SIGCONT)
            time.sleep(0.02)
        finally:
            probe.close()
    raise AssertionError(f"{worker.name} held the SQLite write lock at every attempt to freeze it")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(none)"


@pytest.mark.timeout(300)
def test_exactly_once_under_kills_freezes_and_cancels(
    backend: str,
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    caplog.set_level(logging.WARNING, logger="durable_core")
    app = _app()
    ledger = tmp_path / "ledger.csv"
    ledger.touch()
    app.configure(str(ledger))
    stop, ready = tmp_path / "stop", tmp_path / "ready"
    ready.mkdir()
    seed = int(os.environ.get("EO_SEED", str(random.randrange(1_000_000))))
    rng = random.Random(seed)
    env = {**os.environ, **WORKER_ENV}
    workers: list[Worker] = []  # every worker ever started
    live: list[Worker] = []
    disruptions: list[Disruption] = []
    ids = [f"eo-{n:02d}" for n in range(WORKFLOWS)]
    counter = iter(range(1000))
    origin = time.monotonic_ns()
    wall_minus_mono = time.time() - time.monotonic()  # one offset for every process of the host

    def spawn() -> Worker:
        name = f"w{next(counter)}"
        out_path, err_path = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        out, err = open(out_path, "wb"), open(err_path, "wb")  # noqa: SIM115 - closed in finally
        process = subprocess.Popen(
            [sys.executable, str(WORKER), database_url, str(ledger), str(stop), str(ready)],
            env=env,
            stdout=out,
            stderr=err,
        )
        worker = Worker(name, process, out, err, out_path, err_path)
        workers.append(worker)
        live.append(worker)
        return worker

    def diagnostics() -> str:
        parts = []
        for w in workers:
            err = _tail(w.err_path)
            if err.strip():
                parts.append(f"--- {w.name} pid {w.process.pid} rc={w.process.poll()} stderr:\n{err}")
        return "\n".join(parts)

    engine = Engine(database_url, heartbeat_seconds=HEARTBEAT, lease_seconds=LEASE, queues=[])
    engine.launch()  # migrates once before the workers launch; runs the resumed workflows
    started = time.monotonic()
    statuses: dict[str, Any] = {}
    results: dict[str, Any] = {}
    cancel_misses: list[str] = []
    tail: IO[str] | None = None
    try:
        for _ in range(WORKER_COUNT[backend]):
            spawn()
        deadline = time.monotonic() + 60
        while len(list(ready.iterdir())) < WORKER_COUNT[backend]:
            dead = [w for w in live if w.process.poll() is not None]
            assert not dead and time.monotonic() < deadline, f"workers did not launch\n{diagnostics()}"
            time.sleep(0.05)
        for n, wid in enumerate(ids):
            with workflow_options(workflow_id=wid):
                app.exactly_once.enqueue(app.eo_flow, n)

        def done() -> int:
            return engine.count_workflows(status="SUCCESS", queue_name="exactly_once")

        def launched() -> list[Worker]:
            """Live workers whose engine has launched (a replacement may still be importing)."""
            ready_pids = {int(f.name) for f in ready.iterdir()}
            return [w for w in live if w.process.pid in ready_pids] or live

        latest: dict[str, Line] = {}  # each workflow's latest ledger line, read incrementally
        tail = open(ledger)  # noqa: SIM115 - closed in finally

        def running_now(kinds: str = "SD", max_age: float = 1.0, min_sleep_ms: int = 0) -> list[str]:
            for raw in tail.readlines():
                wf, step_no, pid, kind, ns, sleep_ms = raw.strip().split(",")
                latest[wf] = Line(0, wf, int(step_no), int(pid), kind, int(ns), int(sleep_ms))
            now = time.monotonic_ns()
            return sorted(
                wf
                for wf, ln in latest.items()
                if ln.kind in kinds
                and 3 <= ln.step <= STEPS - 4
                and now - ln.ns < max_age * 1e9
                and ln.sleep_ms >= min_sleep_ms
            )

        deadline = time.monotonic() + 60
        while not running_now():
            failed = engine.list_workflows(status="ERROR", queue_name="exactly_once", limit=1)
            assert not failed, f"a workflow failed: {failed[0].error}\n{diagnostics()}"
            assert time.monotonic() < deadline, f"no workflow made progress\n{diagnostics()}"
            time.sleep(0.05)

        for action in SCHEDULE:
            if done() >= WORKFLOWS:
                break
            time.sleep(rng.uniform(0.3, 0.8))
            if action == "kill":
                victim = rng.choice(launched())
                at = time.monotonic_ns()
                victim.process.kill()
                victim.process.wait()
                live.remove(victim)
                disruptions.append(Disruption("kill", at, pid=victim.process.pid))
                spawn()  # a new process: a new executor id
            elif action == "freeze":
                victim = rng.choice(launched())
                at = _freeze(victim, database_url)
                time.sleep(FREEZE_SECONDS)
                end = time.monotonic_ns()
                victim.process.send_signal(signal.SIGCONT)
                disruptions.append(Disruption("freeze", at, pid=victim.process.pid, end_ns=end))
            else:
                # a workflow whose worker has just started a slow step: cancel it and resume it here
                # at once, so the resumed run records that step before the worker's own write does
                candidates: list[str] = []
                give_up = time.monotonic() + 3
                while not candidates and time.monotonic() < give_up:
                    time.sleep(0.003)
                    candidates = running_now("S", max_age=0.03, min_sleep_ms=250)
                if not candidates:
                    continue
                wid = rng.choice(candidates)
                at = time.monotonic_ns()
                engine.cancel_workflow(wid)
                status = engine.get_workflow_status(wid).status
                if status == "CANCELLED":
                    engine.resume_workflow(wid)  # the code is registered here: the body runs here
                else:
                    cancel_misses.append(f"{wid} was {status}")
                disruptions.append(Disruption("cancel", at, workflow_id=wid, resumed=status == "CANCELLED"))

        deadline = time.monotonic() + 120
        while done() < WORKFLOWS and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # a body still running without ownership gets the time to show itself
        for status in engine.list_workflows(workflow_ids=ids):
            statuses[status.workflow_id] = status.status
            if status.status == "SUCCESS":
                results[status.workflow_id] = engine.retrieve_workflow(status.workflow_id).get_result(
                    timeout_seconds=5
                )
    finally:
        if tail is not None:
            tail.close()
        stop.touch()
        for w in workers:
            if w.process.poll() is None:
                w.process.send_signal(signal.SIGCONT)
        for w in workers:
            try:
                w.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait()
            w.out.close()
            w.err.close()
        engine.shutdown()
    elapsed = time.monotonic() - started

    logged = [(float(m[0]), m[1]) for w in workers for m in TAKEOVER_LOG.findall(w.err_path.read_text())]
    logged += [(r.created, r.getMessage()) for r in caplog.records]  # claims made by the test's engine
    takeovers, lapses = takeover_disruptions(logged, disruptions, wall_minus_mono)
    analysis = analyse(read_ledger(ledger), disruptions + lapses, ids, origin)
    (tmp_path / "disruptions.json").write_text(  # with ledger.csv: enough to replay the analysis
        json.dumps(
            {
                "origin": origin,
                "wall_minus_mono": wall_minus_mono,
                "disruptions": [vars(d) for d in disruptions + lapses],
                "takeover_log": logged,
            }
        )
    )
    kinds = Counter(d.kind for d in disruptions)
    summary = (
        f"[exactly-once {backend}] seed={seed} workers={WORKER_COUNT[backend]} (started {len(workers)}) "
        f"workflows={WORKFLOWS} success={sum(1 for s in statuses.values() if s == 'SUCCESS')} "
        f"steps: started={analysis.s_lines} completed={analysis.d_lines} "
        f"distinct-completed={WORKFLOWS * STEPS - len(analysis.missing)}/{WORKFLOWS * STEPS} "
        f"re-executions={analysis.reexecutions} (explained by {dict(analysis.explained)}, "
        f"{analysis.tokens} tokens; unexplained {analysis.unmatched_count} in {len(analysis.unmatched)} "
        f"workflows) out-of-order-starts={analysis.out_of_order} "
        f"stale-bodies={len(analysis.stale)} replays={analysis.replays} "
        f"kills={kinds['kill']} freezes={kinds['freeze']} "
        f"cancel/resumes={sum(1 for d in disruptions if d.kind == 'cancel' and d.resumed)} "
        f"cancels-missed={cancel_misses} takeovers-logged={dict(takeovers)} elapsed={elapsed:.1f}s"
    )
    record_property("durable-figures", summary)  # printed in the session summary (tests/conftest.py)
    with capsys.disabled():  # the counts belong in every run's log (CI's included), not only on failure
        print("\n" + summary)
        for entry in analysis.stale:
            print("  stale body:", entry)
        for entry in analysis.unmatched:
            print("  unexplained re-execution:", entry)
    timeline = [
        (d.kind, d.pid or d.workflow_id, f"+{(d.ns - origin) / 1e9:.2f}s") for d in disruptions + lapses
    ]
    report = (
        f"{summary}\nstale bodies (first 10):\n  "
        + "\n  ".join(analysis.stale[:10])
        + "\nunexplained re-executions (first 10):\n  "
        + "\n  ".join(analysis.unmatched[:10])
        + f"\ndisruptions: {timeline}"
    )

    assert kinds["kill"] >= 3 and kinds["freeze"] >= 1 and kinds["cancel"] >= 2, (
        f"the workload finished before the disruptions ran\n{report}"
    )
    not_done = {wid: statuses.get(wid) for wid in ids if statuses.get(wid) != "SUCCESS"}
    assert not not_done, f"workflows not SUCCESS: {not_done}\n{report}\n{diagnostics()}"
    wrong = {wid: results[wid] for wid in ids if results[wid] != app.expected_result(int(wid[3:]))}
    failures = [
        f"rule 1: wrong results {wrong}" if wrong else "",
        f"rule 1: steps never completed {analysis.missing[:20]}" if analysis.missing else "",
        f"rule 2: {analysis.unmatched_count} re-executions no disruption explains"
        if analysis.unmatched
        else "",
        f"rule 3: {len(analysis.stale)} bodies kept running after losing their workflow"
        if analysis.stale
        else "",
    ]
    assert not any(failures), "; ".join(f for f in failures if f) + "\n" + report
