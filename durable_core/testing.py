"""Helpers for testing durable code in your own test suite, and the crash-safety kit.

Example:
    ```python
    from durable_core.testing import check_crash_safety, crash_ledger, temporary_engine

    @step()
    def charge(order_id: str) -> str:
        crash_ledger.record("charge-card", order_id)  # a side effect the kit counts
        return payments.charge(order_id, idempotency_key=order_id)

    def test_order_survives_a_crash_at_every_step():
        check_crash_safety(place_order, "order-42").assert_ok()

    def test_in_process():
        with temporary_engine() as engine:
            assert my_workflow(2) == 4
    ```

`check_crash_safety(fn, *args, **kwargs)` answers "if the process dies at any point, do I get the
same result, with no tool called twice?": it runs `fn` once to learn its steps and its result,
replays that run once (nondeterminism found early), then for every step k runs `fn` again from
scratch on a fresh database, kills it just before step k's body and just after step k's record is
committed, recovers it in a fresh engine, and compares. See `check_crash_safety` for the details
and `CrashReport` for what it reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import importlib.util
import inspect
import json
import os
import pickle
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from ._context import _current, _in_step
from ._engine import Engine
from ._options import workflow_options
from ._records import StepInfo, WorkflowStatus
from ._registry import get_workflow
from ._run import CRASH_HOOKS, CRASH_POINTS, WorkflowRun
from ._status import TERMINAL_STATES, WorkflowState
from .errors import NondeterminismError

__all__ = [
    "CRASH_EXIT_CODE",
    "CrashLedger",
    "CrashPoint",
    "CrashReport",
    "PointResult",
    "ReplayCheck",
    "SimulatedCrash",
    "StepRef",
    "check_crash_safety",
    "crash_before_step",
    "crash_ledger",
    "run_script",
    "temporary_engine",
    "wait_until_waiting",
]

CRASH_EXIT_CODE = 86


def crash_before_step(
    step_id: int, *, workflow_id: str | None = None, exit_code: int = CRASH_EXIT_CODE
) -> None:
    """Make this process die with `os._exit` just before step `step_id` runs (of `workflow_id`, or of any
    workflow), the way a kill -9 or a power cut would: nothing is flushed, nothing cleaned up.

    Also armed by the environment variable ``DURABLE_CRASH_BEFORE_STEP=<step_id>`` (or
    ``<workflow_id>:<step_id>``) at import of this module.
    """
    CRASH_POINTS.append((workflow_id, step_id, exit_code))


def run_script(
    script: str | os.PathLike[str],
    *args: str,
    env: Mapping[str, str | None] | None = None,
    import_paths: Sequence[str | os.PathLike[str]] = (),
    timeout_seconds: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run a Python script in a fresh interpreter, as a crash test's "process" (it may `os._exit`).

    The child gets this environment with `env` applied (a None value removes the variable) and
    `import_paths` ahead of any PYTHONPATH. Output is captured as text; a non-zero exit is returned,
    not raised, so the test can assert the exit code of a deliberate crash.
    """
    environment = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    paths = [str(path) for path in import_paths if str(path)]
    if environment.get("PYTHONPATH"):
        paths.append(environment["PYTHONPATH"])
    if paths:
        environment["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )


@contextmanager
def temporary_engine(**kwargs: Any) -> Generator[Engine, None, None]:
    """A launched Engine on a fresh SQLite file in a temporary directory, shut down afterwards."""
    with tempfile.TemporaryDirectory(prefix="durable-") as directory:
        engine = Engine(f"sqlite:///{os.path.join(directory, 'durable.db')}", **kwargs)
        with engine:
            yield engine


def wait_until_waiting(engine: Engine, workflow_id: str, timeout_seconds: float = 20.0) -> WorkflowStatus:
    """Block until `workflow_id` waits (in recv, sleep or get_event); return its status.

    For tests of human-in-the-loop code: send the answer only once the workflow waits for it.
    """
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        waiting = engine.list_workflows(workflow_ids=[workflow_id], waiting=True)
        if waiting:
            return waiting[0]
        time.sleep(0.02)
    raise AssertionError(
        f"{workflow_id} did not start waiting within {timeout_seconds}s: {engine.get_workflow_status(workflow_id)}"
    )


def _arm_from_environment() -> None:
    spec = os.environ.get("DURABLE_CRASH_BEFORE_STEP")
    if not spec:
        return
    workflow_id, _, step = spec.rpartition(":")
    crash_before_step(int(step), workflow_id=workflow_id or None)


_arm_from_environment()


# == the crash-safety kit ===================================================================

PHASES = ("before", "in-flight", "after")
_PHASE_SETS: dict[str, tuple[str, ...]] = {
    "every-step": ("before", "after"),
    "all": PHASES,
    "before": ("before",),
    "in-flight": ("in-flight",),
    "after": ("after",),
}
_EXECUTOR_ID = "crash-kit"
_TERMINAL = TERMINAL_STATES
_POLL = 0.02


class SimulatedCrash(BaseException):
    """The in-process stand-in for a process death: raised at the crash point, and at every later
    step boundary, database access or outcome of the crashed engine, so nothing more is recorded.

    A `BaseException`, so user code's ``except Exception`` cannot swallow it.
    """


@dataclass(frozen=True, order=True)
class CrashPoint:
    """Where a run is killed: ``phase`` ``"before"`` step `step_id`'s body runs, ``"in-flight"`` (its
    body ran, its record is not committed yet: the at-least-once window), or ``"after"`` its record
    is committed."""

    workflow_id: str
    step_id: int
    phase: str
    step_name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"CrashPoint phase must be one of {PHASES}, got {self.phase!r}")

    def __str__(self) -> str:
        name = f" {self.step_name}" if self.step_name else ""
        return f"{self.phase} {self.workflow_id}:{self.step_id}{name}"


@dataclass(frozen=True, order=True)
class StepRef:
    """One step of one workflow: ``workflow_id:step_id name``."""

    workflow_id: str
    step_id: int
    name: str = field(compare=False)

    def __str__(self) -> str:
        return f"{self.workflow_id}:{self.step_id} {self.name}"


@dataclass(frozen=True)
class RepeatedEffect:
    """A side effect recorded with `crash_ledger.record` more often than in the uncrashed run."""

    effect: str
    key: str
    count: int
    expected: int
    where: str

    def __str__(self) -> str:
        return f"{self.effect}[{self.key}] x{self.count} (first run: x{self.expected}; {self.where})"


@dataclass
class PointResult:
    """What happened at one crash point: the crashed run, then its recovery in a fresh engine.

    Attributes:
        reached: the run was killed at this point (else it ended without passing it).
        result_equal: the recovered run's result and final records equal the uncrashed run's.
        differences: each difference in the result or in a workflow's final record.
        executed_again: steps whose body ran more than once over the crashed run and its recovery.
        allowed_again: those of them that were in flight at the crash (started, not recorded):
            the engine runs them again by design (at-least-once).
        unexpected_again: the others: completed steps executed again (a durability bug).
        repeated_effects: `crash_ledger` side effects that happened more often than in the
            uncrashed run: those tools must be idempotent.
        nondeterminism: where the recovered run's replay diverged from the record.
        errors: anything that kept the kit from running this point as planned.
    """

    point: CrashPoint
    reached: bool = False
    note: str = ""
    result_equal: bool = False
    differences: list[str] = field(default_factory=lambda: [])
    executed_again: list[StepRef] = field(default_factory=lambda: [])
    allowed_again: list[StepRef] = field(default_factory=lambda: [])
    unexpected_again: list[StepRef] = field(default_factory=lambda: [])
    repeated_effects: list[RepeatedEffect] = field(default_factory=lambda: [])
    nondeterminism: list[str] = field(default_factory=lambda: [])
    errors: list[str] = field(default_factory=lambda: [])
    crash_seconds: float = 0.0
    recovery_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.reached
            and self.result_equal
            and not self.unexpected_again
            and not self.repeated_effects
            and not self.nondeterminism
            and not self.errors
        )

    def problems(self) -> list[str]:
        found: list[str] = []
        if not self.reached:
            found.append(
                "the crash point was not reached: this run took another path than the first one "
                "(nondeterminism, or workflow ids that differ between runs: give every workflow a "
                "fixed id with workflow_options or run_id)"
            )
        found.extend(self.differences)
        found.extend(f"step executed again although it had completed: {s}" for s in self.unexpected_again)
        found.extend(
            f"side effect repeated: {e}; make that tool idempotent (and record the effect only when "
            "it really happens)"
            for e in self.repeated_effects
        )
        found.extend(f"nondeterminism: {n}" for n in self.nondeterminism)
        found.extend(self.errors)
        return found


@dataclass
class ReplayCheck:
    """The early nondeterminism check: a recorded workflow replayed once more in the process that
    recorded it (`fork_workflow` from after its last step: every step must replay, none run live)."""

    workflow_id: str
    ok: bool = True
    skipped: str | None = None
    problems: list[str] = field(default_factory=lambda: [])
    seconds: float = 0.0


@dataclass
class CrashReport:
    """The outcome of `check_crash_safety`. `ok` when every crash point recovered to the same result
    with nothing but the in-flight step executed again, no side effect repeated and no nondeterminism.

    ``str(report)`` (and the message of `assert_ok`) is a table, one line per crash point.
    """

    target: str
    process: str
    crash_points: str
    workflows: dict[str, list[StepRef]] = field(default_factory=lambda: {})
    baseline_result: Any = None
    baseline_seconds: float = 0.0
    baseline_errors: list[str] = field(default_factory=lambda: [])
    replay: list[ReplayCheck] = field(default_factory=lambda: [])
    points: list[PointResult] = field(default_factory=lambda: [])
    skipped_matrix: str | None = None
    total_seconds: float = 0.0
    files: str | None = None  # the kept databases and ledgers (keep_files=True)

    @property
    def matrix_size(self) -> int:
        """How many crash points the matrix has."""
        return len(self.points)

    @property
    def step_count(self) -> int:
        return sum(len(steps) for steps in self.workflows.values())

    @property
    def failures(self) -> list[PointResult]:
        return [p for p in self.points if not p.ok]

    @property
    def ok(self) -> bool:
        return (
            not self.baseline_errors
            and self.skipped_matrix is None
            and all(r.ok for r in self.replay)
            and not self.failures
        )

    def problems(self) -> list[str]:
        """Every finding, one line each (empty when `ok`)."""
        found = [f"first run: {e}" for e in self.baseline_errors]
        for check in self.replay:
            found.extend(f"replay of {check.workflow_id}: {p}" for p in check.problems)
        if self.skipped_matrix:
            found.append(f"crash matrix not run: {self.skipped_matrix}")
        for index, point in enumerate(self.points, 1):
            found.extend(f"#{index} {point.point}: {p}" for p in point.problems())
        return found

    def summary(self) -> str:
        """One line: verdict, matrix size and time."""
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.target}: {verdict} -- {self.matrix_size} crash points over {self.step_count} steps in "
            f"{len(self.workflows)} workflow(s), {self.process}, {self.total_seconds:.1f}s"
        )

    def table(self) -> str:
        lines = [f"crash-safety report: {self.summary()}"]
        lines.append(f"first run: {self.baseline_seconds:.2f}s, result {_short(self.baseline_result)}")
        for check in self.replay:
            state = f"skipped ({check.skipped})" if check.skipped else ("ok" if check.ok else "DIVERGED")
            lines.append(f"replay check {check.workflow_id}: {state}")
        if self.points:
            rows = [
                ("#", "crash point", "verdict", "result", "ran again", "effects twice", "crash", "recover")
            ]
            for index, p in enumerate(self.points, 1):
                again = [f"{s.workflow_id}:{s.step_id} (in flight)" for s in p.allowed_again]
                again += [f"{s.workflow_id}:{s.step_id} NOT ALLOWED" for s in p.unexpected_again]
                if not p.reached:
                    result = "not reached"
                elif p.nondeterminism:
                    result = "NONDETERMINISM"
                else:
                    result = "same" if p.result_equal else "DIFFERENT"
                rows.append(
                    (
                        str(index),
                        _clip(str(p.point), 64) + (" +" if p.note else ""),
                        "ok" if p.ok else "FAIL",
                        result,
                        _clip(", ".join(again) or "-", 44),
                        _clip(
                            ", ".join(f"{e.effect}[{e.key}] x{e.count}" for e in p.repeated_effects) or "-",
                            28,
                        ),
                        f"{p.crash_seconds:.2f}s",
                        f"{p.recovery_seconds:.2f}s",
                    )
                )
            widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
            for row in rows:
                lines.append(
                    "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                )
            if any(p.note for p in self.points):
                lines.append(
                    "+ recorded by an engine operation (sleep, recv, send, events): killed at the workflow's "
                    "next boundary, the same database state"
                )
        problems = self.problems()
        if problems:
            lines.append(f"{len(problems)} problem(s):")
            lines.extend(f"  - {p}" for p in problems)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def assert_ok(self) -> None:
        """Raise `AssertionError` with the report's table unless every check passed."""
        if not self.ok:
            raise AssertionError(self.table())


# -- the ledger: step executions and side effects, in a file the kit owns ----------------------


class _Ledger:
    """Append-only JSON lines, each written with one `os.write` and fsynced: a process killed
    right after an entry still leaves it in the file."""

    def __init__(self, path: str, phase: str) -> None:
        self.path = path
        self.phase = phase
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        entry["phase"] = self.phase
        data = (json.dumps(entry, default=str) + "\n").encode()
        with self._lock:
            if self._fd < 0:
                return
            os.write(self._fd, data)
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _read_ledger(path: str | Path) -> list[dict[str, Any]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            entries.append(json.loads(line))
    return entries


class CrashLedger:
    """Side effects your tools perform, counted by `check_crash_safety`.

    Call ``crash_ledger.record("charge-card", order_id)`` where a tool really performs its effect
    (after an idempotency check, if it has one). During a crash-safety check the kit reports every
    (effect, key) recorded more often than in the uncrashed run, with the step it happened in:
    that tool would run twice after a crash and must be idempotent. Outside a check, `record`
    does nothing (one attribute read), so it can stay in production code.
    """

    def record(self, effect: str, key: object = None) -> None:
        kit = _KIT
        ledger = kit.ledger
        if ledger is None:
            return
        ctx = _current.get()
        if ctx is not None and ctx.engine in kit.dead:
            return  # after a simulated crash nothing more happens in that process
        entry: dict[str, Any] = {"t": "effect", "effect": str(effect), "key": "" if key is None else str(key)}
        if ctx is not None:
            entry["wf"] = ctx.workflow_id
            running = _kit_step.get()
            if _in_step.get() and running is not None and running[0] == ctx.workflow_id:
                entry.update(step=running[1], name=running[2], in_step=True)
            else:
                entry.update(step=ctx.next_step_id - 1, in_step=False)
        ledger.write(entry)


crash_ledger = CrashLedger()
"""The process's `CrashLedger`: ``crash_ledger.record("send-email", to)`` in a tool."""

# the live step a body runs in (set when the kit sees a step start live): attributes side effects
_kit_step: contextvars.ContextVar[tuple[str, int, str] | None] = contextvars.ContextVar(
    "durable_crash_kit_step", default=None
)


# -- the hook: counting executions, crashing at the armed point ----------------------------------


class _Kit:
    """Process-wide state of the running check (one at a time per process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ledger: _Ledger | None = None
        self.target: CrashPoint | None = None
        self.at_next_boundary = False
        self.exit_on_crash = False
        self.snapshot: tuple[str, str] | None = None  # (database file, copy the recovery runs on)
        self.engines: weakref.WeakSet[Engine] = weakref.WeakSet()
        self.dead: weakref.WeakSet[Engine] = weakref.WeakSet()
        self.crashed = threading.Event()
        self.crash_note = ""

    def activate(self, op: _Op) -> None:
        self.ledger = _Ledger(op.ledger_path, op.phase)
        self.target = op.target
        self.at_next_boundary = op.at_next_boundary
        self.exit_on_crash = op.exit_on_crash
        self.snapshot = (op.database_path, op.snapshot_path) if op.snapshot_path else None
        self.crashed = threading.Event()
        if _crash_hook not in CRASH_HOOKS:
            CRASH_HOOKS.append(_crash_hook)

    def deactivate(self) -> None:
        with contextlib.suppress(ValueError):
            CRASH_HOOKS.remove(_crash_hook)
        ledger, self.ledger = self.ledger, None
        self.target = None
        if ledger is not None:
            ledger.close()

    def fire(self, ctx: WorkflowRun, point: CrashPoint, phase: str, step_id: int) -> None:
        note = ""
        if phase != point.phase:
            where = "its outcome" if phase == "finish" else f"step {step_id}"
            note = (
                f"step {point.step_id} is recorded by an engine operation: crashed at the next boundary "
                f"of {point.workflow_id} ({where})"
            )
        if self.ledger is not None:
            self.ledger.write({"t": "crash", "wf": ctx.workflow_id, "step": step_id, "note": note})
        if self.exit_on_crash:
            os._exit(CRASH_EXIT_CODE)  # a real process death: nothing flushed, nothing cleaned up
        if self.snapshot is not None:
            _copy_sqlite(*self.snapshot)  # the database as the dead process leaves it
        engine = cast(Engine, ctx.engine)
        self.dead.add(engine)
        engine.stopping = True  # its other bodies stop at their next step boundary, unrecorded
        engine.waiters.wake_all()
        self.crash_note = note
        self.crashed.set()
        raise SimulatedCrash(f"simulated crash at {point}")


_KIT = _Kit()


def _crash_hook(phase: str, ctx: WorkflowRun, step_id: int, name: str) -> None:
    kit = _KIT
    engine = ctx.engine
    if engine not in kit.engines:
        return
    if engine in kit.dead:
        raise SimulatedCrash("this engine crashed (simulated): nothing more runs or is recorded in it")
    target = kit.target
    if (
        target is not None
        and target.workflow_id == ctx.workflow_id
        and _fires(target, phase, step_id, kit.at_next_boundary)
    ):
        with kit.lock:
            fire = kit.target is target
            kit.target = None
        if fire:
            kit.fire(ctx, target, phase, step_id)
    ledger = kit.ledger
    if ledger is None:
        return
    if phase == "before":
        row = ctx.recorded.get(step_id) if ctx.recorded else None
        if row is None:
            _kit_step.set((ctx.workflow_id, step_id, name))
            ledger.write({"t": "run", "wf": ctx.workflow_id, "step": step_id, "name": name})
        elif row.name != name:
            ledger.write(
                {
                    "t": "diverged",
                    "wf": ctx.workflow_id,
                    "step": step_id,
                    "recorded": row.name,
                    "called": name,
                }
            )
    elif phase == "after" and ledger.phase == "baseline":
        ledger.write({"t": "recorded", "wf": ctx.workflow_id, "step": step_id, "name": name})


def _fires(target: CrashPoint, phase: str, step_id: int, at_next_boundary: bool) -> bool:
    if target.phase != "after" or not at_next_boundary:
        return phase == target.phase and step_id == target.step_id
    # a step that an engine operation records itself (sleep, recv, send, set_event, ...) has no
    # "after" hook: crash at the workflow's next boundary, which is the same database state
    return phase == "finish" or step_id > target.step_id


def _copy_sqlite(source: str, destination: str) -> None:
    """A consistent copy of a live SQLite database (WAL content included), taken at this instant."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(destination)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


class _DeadStorage:
    """Stands in for a crashed engine's stores: any use ends the caller like the process death would."""

    def __getattr__(self, name: str) -> Any:
        raise SimulatedCrash("this engine crashed (simulated): its database is gone for it")


def _kill(engine: Engine) -> None:
    """Drop a crashed engine without cleanup: background services stop, its stores refuse all use
    (bodies still running end at their next database access), nothing is recorded for its workflows."""
    engine.stopping = True
    engine.waiters.wake_all()
    for stop in reversed(engine._services):
        with contextlib.suppress(Exception):
            stop()
    engine._services.clear()
    dead: Any = _DeadStorage()
    engine.workflows = engine.steps = engine.messages = engine.executors = engine.queues = dead
    with contextlib.suppress(BaseException):
        engine.shutdown(timeout_seconds=0.5)


# -- one run ("op") of the program: the first run, a crashed run, or a recovery ------------------


@dataclass
class _Program:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    setup: Callable[[Engine], Any] | None
    answer: Callable[[Engine, WorkflowStatus], Any] | Mapping[str | None, Any] | None
    normalize: Callable[[Any], Any] | None
    workflow_id: str
    engine_options: dict[str, Any]
    timeout_seconds: float


@dataclass
class _Op:
    phase: str  # "baseline" | "crash" | "recovery"
    database_path: str
    ledger_path: str
    target: CrashPoint | None = None
    # "after" a step that an engine operation records itself (no hook after its commit): crash at
    # the workflow's next boundary instead, which is the same database state
    at_next_boundary: bool = False
    snapshot_path: str | None = None
    exit_on_crash: bool = False
    replay: bool = False
    result_path: str = ""
    log_path: str = ""


@dataclass(frozen=True)
class _FinalState:
    """One workflow at the end of a run, in comparable form (outputs as recorded JSON)."""

    name: str
    status: str
    output: str | None
    error: str | None
    waiting: str | None
    steps: tuple[tuple[int, str], ...]


@dataclass
class _Repr:
    """A value that could not cross a process boundary: compared by its repr."""

    text: str

    def __repr__(self) -> str:
        return self.text


@dataclass
class _RunResult:
    crashed: bool = False
    crash_note: str = ""
    result: Any = None
    raised: str | None = None
    states: dict[str, _FinalState] = field(default_factory=lambda: {})
    recorded_at_start: frozenset[tuple[str, int]] = frozenset()
    errors: list[str] = field(default_factory=lambda: [])
    replay: list[ReplayCheck] = field(default_factory=lambda: [])
    seconds: float = 0.0


def _run_op(program: _Program, op: _Op) -> _RunResult:
    """Run the program once on `op.database_path`: from scratch, or (recovery) on what a crash left."""
    started = time.monotonic()
    out = _RunResult()
    url = f"sqlite:///{op.database_path}"
    kit = _KIT
    if op.phase == "recovery":
        out.recorded_at_start = _recorded_steps(url)
    kit.activate(op)
    engine = Engine(url, executor_id=_EXECUTOR_ID, **program.engine_options)
    kit.engines.add(engine)
    answerer: _Answerer | None = None
    killed = False
    try:
        setup_value = program.setup(engine) if program.setup is not None else None
        engine.launch()  # a recovery: launch resumes the crashed run's workflows, as after a restart
        if program.answer is not None:
            answerer = _Answerer(engine, program.answer)
            answerer.start()
        if op.phase == "recovery":
            problem = _settle(engine, answerer, kit, program.timeout_seconds)
            if problem:
                out.errors.append(f"recovery: {problem}")
        outcome, value = _call(program, setup_value, kit)
        if not kit.crashed.is_set() and outcome != "timeout":
            problem = _settle(engine, answerer, kit, program.timeout_seconds)
            if problem and not kit.crashed.is_set():
                out.errors.append(problem)
        if kit.crashed.is_set():
            out.crashed, out.crash_note = True, kit.crash_note
            if answerer is not None:
                answerer.stop()
            _kill(engine)
            killed = True
            return out
        if outcome == "timeout":
            out.errors.append(f"{_describe(program)} did not return within {program.timeout_seconds:.0f}s")
        elif outcome == "raised":
            error = cast(BaseException, value)
            out.raised = _error_text(error)
        else:
            out.result = value
        out.states = _final_states(engine)
        if op.replay:
            if answerer is not None:
                answerer.stop()
            out.replay = _replay_check(engine, out.states, op, program.timeout_seconds)
        return out
    finally:
        if answerer is not None:
            answerer.stop()
            out.errors.extend(answerer.failures)
        if not killed:
            with contextlib.suppress(Exception):
                engine.shutdown()
        kit.deactivate()
        out.seconds = time.monotonic() - started


def _call(program: _Program, setup_value: Any, kit: _Kit) -> tuple[str, Any]:
    """Call the program in a thread (a crashed run's thread may never come back); return
    ("value", v), ("raised", exc), ("crashed", None) or ("timeout", None)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            with workflow_options(workflow_id=program.workflow_id):
                args = (setup_value, *program.args) if program.setup is not None else program.args
                value = program.fn(*args, **program.kwargs)
                if inspect.isawaitable(value):
                    value = asyncio.run(_await(value))
            box["value"] = program.normalize(value) if program.normalize is not None else value
        except SimulatedCrash:
            box["crashed"] = True
        except BaseException as exc:
            box["raised"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name="crash-kit-run", daemon=True)
    thread.start()
    deadline = time.monotonic() + program.timeout_seconds
    while not done.wait(_POLL):
        if kit.crashed.is_set():
            return "crashed", None
        if time.monotonic() > deadline:
            return "timeout", None
    if kit.crashed.is_set() or "crashed" in box:
        return "crashed", None
    if "raised" in box:
        return "raised", box["raised"]
    return "value", box.get("value")


async def _await(awaitable: Any) -> Any:
    return await awaitable


class _Answerer(threading.Thread):
    """Answers the run's message waits (``engine.send(wid, answer, topic=waiting.topic)``), each once,
    with an idempotency key per wait so a recovered run never gets a second copy."""

    def __init__(
        self, engine: Engine, answer: Callable[[Engine, WorkflowStatus], Any] | Mapping[str | None, Any]
    ) -> None:
        super().__init__(name="crash-kit-answers", daemon=True)
        self.engine = engine
        self.answer = answer
        self.answered: set[tuple[str, int | None]] = set()
        self.declined: set[tuple[str, int | None]] = set()
        self.failures: list[str] = []
        self.halt = threading.Event()

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)

    def run(self) -> None:
        while not self.halt.wait(_POLL):
            try:
                for status in self.engine.list_workflows(waiting=True):
                    self.consider(status)
            except BaseException:
                if self.halt.is_set() or self.engine in _KIT.dead or not self.engine.launched:
                    return
                time.sleep(0.1)

    def key(self, status: WorkflowStatus) -> tuple[str, int | None]:
        row = self.engine.workflows.get(status.workflow_id)
        return status.workflow_id, row.wait_step if row is not None else None

    def unanswered(self, status: WorkflowStatus) -> bool:
        """A wait the kit will not answer (its answer function declined it)."""
        return self.key(status) in self.declined

    def consider(self, status: WorkflowStatus) -> None:
        wait = status.waiting
        if wait is None or wait.kind != "recv":
            return
        key = self.key(status)
        if key in self.answered or key in self.declined:
            return
        if isinstance(self.answer, Mapping):
            if wait.topic not in self.answer:
                self.declined.add(key)
                return
            message = self.answer[wait.topic]
        else:
            try:
                message = self.answer(self.engine, status)
            except Exception as exc:
                self.declined.add(key)
                self.failures.append(
                    f"answering {key[0]}'s wait (topic {wait.topic!r}) raised {_error_text(exc)}"
                )
                return
            if message is None:
                self.declined.add(key)
                return
        self.engine.send(
            status.workflow_id, message, wait.topic, idempotency_key=f"crash-kit:{key[0]}:{key[1]}"
        )
        self.answered.add(key)


def _settle(engine: Engine, answerer: _Answerer | None, kit: _Kit, timeout: float) -> str | None:
    """Wait until nothing more happens by itself: every workflow finished, or waiting for a message
    nobody here sends, or left to its caller. Returns a problem, or None."""
    deadline = time.monotonic() + timeout
    busy: list[str] = []
    while time.monotonic() < deadline:
        if kit.crashed.is_set():
            return None
        busy = []
        active = set(engine.active.ids())
        for status in engine.list_workflows():
            if status.status in _TERMINAL:
                continue
            wait = status.waiting
            if wait is not None and wait.kind not in ("sleep", "event", "workflow"):
                if wait.kind != "recv" or answerer is None or answerer.unanswered(status):
                    continue  # only a person (or another program) ends this wait
            elif status.status == WorkflowState.PENDING and wait is None and status.workflow_id not in active:
                continue  # nothing runs it here: its caller resumes it by calling it again
            busy.append(f"{status.workflow_id} ({status.status}{f', waiting {wait.kind}' if wait else ''})")
        if not busy:
            return None
        time.sleep(_POLL)
    return f"workflows still running after {timeout:.0f}s: {', '.join(busy)}"


def _final_states(engine: Engine) -> dict[str, _FinalState]:
    states: dict[str, _FinalState] = {}
    for status in engine.list_workflows():
        row = engine.workflows.get(status.workflow_id)
        wait = status.waiting
        states[status.workflow_id] = _FinalState(
            name=status.name,
            status=status.status,
            output=row.output if row is not None and status.status == WorkflowState.SUCCESS else None,
            error=_error_text(status.error) if status.error is not None else None,
            waiting=f"{wait.kind}:{wait.topic}" if wait is not None else None,
            steps=_sequence(engine.list_steps(status.workflow_id)),
        )
    return states


def _sequence(steps: list[StepInfo]) -> tuple[tuple[int, str], ...]:
    """(id, name) of a workflow's steps. Rows with an id below 1 are records an integration writes
    outside the step sequence (the model calls inside a LangGraph node, with their usage): no
    body of their own to crash around, and a node re-executed after a crash may make them again."""
    return tuple((s.step_id, s.name) for s in steps if s.step_id > 0)


def _recorded_steps(url: str) -> frozenset[tuple[str, int]]:
    """The steps recorded in a crashed run's database (read before anything resumes it)."""
    reader = Engine(url, executor_id="crash-kit-reader").connect()
    try:
        return frozenset(
            (status.workflow_id, info.step_id)
            for status in reader.list_workflows()
            for info in reader.list_steps(status.workflow_id)
            if info.step_id > 0  # see _sequence
        )
    finally:
        reader.shutdown()


_REPLAY_LABELS = ("recorded", "replay")


def _replay_check(
    engine: Engine, states: dict[str, _FinalState], op: _Op, timeout: float
) -> list[ReplayCheck]:
    """Replay each finished workflow once more here: a fork from after its last step must replay
    every step from the record, run none live, and end exactly as recorded."""
    ledger = _KIT.ledger
    checks: list[ReplayCheck] = []
    for workflow_id, state in states.items():
        check = ReplayCheck(workflow_id)
        checks.append(check)
        defn = get_workflow(state.name)
        if state.status not in (WorkflowState.SUCCESS, WorkflowState.ERROR):
            check.skipped = f"it ended {state.status}{f' waiting {state.waiting}' if state.waiting else ''}"
            continue
        if defn is None:
            check.skipped = "its workflow function is not registered in this process"
            continue
        if not defn.auto_recover:
            check.skipped = "it runs only with its caller's live objects; the crash matrix replays it"
            continue
        replay_id = f"{workflow_id}~replay"
        if ledger is not None:
            ledger.phase = "replay"
        started = time.monotonic()
        last = max((step_id for step_id, _ in state.steps), default=0)
        try:
            handle = engine.fork_workflow(workflow_id, last + 1, new_workflow_id=replay_id)
            with contextlib.suppress(Exception, NondeterminismError):
                handle.get_result(timeout_seconds=timeout)
            status = engine.get_workflow_status(replay_id)
            row = engine.workflows.get(replay_id)
        except Exception as exc:
            check.ok = False
            check.problems.append(f"could not replay it: {_error_text(exc)}")
            continue
        finally:
            check.seconds = time.monotonic() - started
        output = row.output if row is not None and status.status == WorkflowState.SUCCESS else None
        if output is not None:
            output = output.replace(replay_id, workflow_id)
        error = _error_text(status.error) if status.error is not None else None
        if error is not None:
            error = error.replace(replay_id, workflow_id)
        for entry in _read_ledger(op.ledger_path):
            if entry.get("phase") != "replay" or entry.get("wf") != replay_id:
                continue
            if entry["t"] == "effect":
                check.problems.append(
                    f"the replay performed the side effect {entry['effect']}[{entry['key']}] "
                    f"({_where(entry).replace(replay_id, workflow_id)}): it is not inside a step, so every "
                    "recovery performs it again"
                )
            elif entry["t"] == "diverged":
                check.problems.append(
                    f"step {entry['step']} was recorded as {entry['recorded']!r} but the replay called "
                    f"{entry['called']!r}: the workflow's code takes another path on replay (it must "
                    "not branch on time, randomness or anything else outside steps)"
                )
            elif entry["t"] == "run":
                check.problems.append(
                    f"the replay ran step {entry['step']} ({entry['name']}) live, which the recorded run "
                    "did not have at that point: the code takes another path on replay"
                )
        if status.status != state.status:
            check.problems.append(f"the replay ended {status.status}, the recorded run {state.status}")
        elif _masked(output) != _masked(state.output):
            check.problems.append(
                f"the replay returned another value: {_difference(state.output, output, ids=False, labels=_REPLAY_LABELS)}"
            )
        elif _masked(error) != _masked(state.error) and not (error or "").startswith("NondeterminismError"):
            check.problems.append(
                f"the replay raised another error: {_difference(state.error, error, ids=False, labels=_REPLAY_LABELS)}"
            )
        if error is not None and error.startswith("NondeterminismError") and not check.problems:
            check.problems.append(error)
        check.ok = not check.problems
    return checks


# -- running ops: in this process, or in child processes ------------------------------------------


class _InProcessRunner:
    """Every run in this process; a crash is simulated (`SimulatedCrash`), the database copied at
    that instant, and the recovery runs on the copy in a fresh engine."""

    process = "in-process"

    def __init__(self, program: _Program) -> None:
        self.program = program

    def __enter__(self) -> _InProcessRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, op: _Op) -> _RunResult:
        return _run_op(self.program, op)


class _SubprocessRunner:
    """Every run in a fresh child process. Children are forked from a server process that imported
    the program once (a fresh interpreter per run where fork is unavailable). A crash is a real
    `os._exit` in the child; the recovery is another child on the same database file."""

    process = "subprocess"

    def __init__(self, program: _Program, directory: Path) -> None:
        self.program = program
        self.directory = directory
        self.program_path = directory / "program.pickle"
        self.server: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.forking = False
        self.counter = 0

    def __enter__(self) -> _SubprocessRunner:
        self.program_path.write_bytes(_dump_program(self.program))
        log = open(self.directory / "server.log", "w")
        self.server = subprocess.Popen(
            [sys.executable, "-c", _CHILD_COMMAND, "server", str(self.program_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=_child_environment(),
            text=True,
            bufsize=1,
        )
        log.close()
        assert self.server.stdout is not None
        threading.Thread(target=self._read, args=(self.server.stdout,), daemon=True).start()
        first = self._line(timeout=max(60.0, self.program.timeout_seconds))
        if first == "ready fork":
            self.forking = True
            self.process = "subprocess (forked from an interpreter that loaded the program)"
        elif first == "ready spawn":
            self.forking = False
            self.process = "subprocess (a fresh interpreter per run)"
        else:
            self.__exit__()
            raise RuntimeError(
                "the crash-safety kit could not load the program in a child process:\n"
                + _tail(self.directory / "server.log")
            )
        return self

    def __exit__(self, *exc: object) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        with contextlib.suppress(Exception):
            assert server.stdin is not None
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _line(self, timeout: float) -> str | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return "timeout"

    def run(self, op: _Op) -> _RunResult:
        self.counter += 1
        base = self.directory / f"op-{self.counter:04d}"
        op.result_path, op.log_path = f"{base}.result", f"{base}.log"
        op_path = Path(f"{base}.op")
        op_path.write_bytes(pickle.dumps(op))
        started = time.monotonic()
        limit = 3 * self.program.timeout_seconds + 30
        code = self._run_forked(op_path, limit) if self.forking else self._run_spawned(op_path, limit)
        seconds = time.monotonic() - started
        if code == CRASH_EXIT_CODE:
            notes = [
                e
                for e in _read_ledger(op.ledger_path)
                if e.get("t") == "crash" and e.get("phase") == op.phase
            ]
            return _RunResult(
                crashed=True, crash_note=notes[-1].get("note", "") if notes else "", seconds=seconds
            )
        if code == 0 and Path(op.result_path).exists():
            result: _RunResult = pickle.loads(Path(op.result_path).read_bytes())
            return result
        reason = "timed out" if code is None else f"exited with code {code}"
        return _RunResult(
            errors=[f"the {op.phase} run's child process {reason}:\n{_tail(op.log_path)}"], seconds=seconds
        )

    def _run_forked(self, op_path: Path, limit: float) -> int | None:
        server = self.server
        assert server is not None and server.stdin is not None
        server.stdin.write(f"{op_path}\n")
        server.stdin.flush()
        line = self._line(timeout=60)
        if line is None or not line.startswith("pid "):
            raise RuntimeError(
                f"the crash-safety kit's fork server stopped ({line}):\n"
                + _tail(self.directory / "server.log")
            )
        pid = int(line.split()[1])
        line = self._line(timeout=limit)
        if line == "timeout":
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._line(timeout=30)
            return None
        if line is None or not line.startswith("exit "):
            raise RuntimeError(f"the crash-safety kit's fork server stopped ({line})")
        return int(line.split()[1])

    def _run_spawned(self, op_path: Path, limit: float) -> int | None:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD_COMMAND, "op", str(self.program_path), str(op_path)],
            stdin=subprocess.DEVNULL,
            env=_child_environment(),
        )
        try:
            return child.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            return None


def _child_environment() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DURABLE_CRASH_BEFORE_STEP", "DURABLE_DATABASE_URL", "DURABLE_EXECUTOR_ID")
    }
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _child_main() -> None:
    """Entry point of the kit's child processes (``python -c ... server|op <program> [<op>]``)."""
    mode, program_path = sys.argv[1], sys.argv[2]
    if mode == "op":
        os._exit(_child_op(_load_program(Path(program_path)), Path(sys.argv[3])))
    # the protocol keeps the real stdout; whatever the program prints goes to the server's log
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    program = _load_program(Path(program_path))
    forking = hasattr(os, "fork") and threading.active_count() == 1
    protocol.write("ready fork\n" if forking else "ready spawn\n")
    protocol.flush()
    if not forking:
        return
    for line in sys.stdin:
        op_path = line.strip()
        if not op_path:
            break
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked child
            code = 1
            try:
                code = _child_op(program, Path(op_path))
            finally:
                os._exit(code)
        protocol.write(f"pid {pid}\n")
        protocol.flush()
        _, status = os.waitpid(pid, 0)
        protocol.write(f"exit {os.waitstatus_to_exitcode(status)}\n")
        protocol.flush()


_CHILD_COMMAND = f"from durable_core.testing import {_child_main.__name__}; {_child_main.__name__}()"


def _child_op(program: _Program, op_path: Path) -> int:
    op: _Op = pickle.loads(op_path.read_bytes())
    log = os.open(op.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        result = _run_op(program, op)
    except BaseException:
        result = _RunResult(errors=[f"the {op.phase} run failed in the kit:\n{traceback.format_exc()}"])
    result.result = _portable(result.result)
    data = pickle.dumps(result)
    temporary = f"{op.result_path}.tmp"
    Path(temporary).write_bytes(data)
    os.replace(temporary, op.result_path)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _portable(value: Any) -> Any:
    try:
        pickle.dumps(value)
    except Exception:
        return _Repr(repr(value))
    return value


# -- shipping the program to a child: functions by reference, modules by name or by file --------


class _ProgramPickler(pickle.Pickler):
    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.modules: dict[str, str | None] = {}

    def note(self, module_name: str | None) -> None:
        if not module_name or module_name in self.modules or module_name == "builtins":
            return
        module = sys.modules.get(module_name)
        self.modules[module_name] = getattr(module, "__file__", None) if module is not None else None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type):
            self.note(obj.__module__)
            return NotImplemented
        self.note(getattr(type(obj), "__module__", None))
        qualname = getattr(obj, "__qualname__", None)
        module_name = getattr(obj, "__module__", None)
        if not callable(obj) or not isinstance(qualname, str) or not isinstance(module_name, str):
            return NotImplemented
        if inspect.ismethod(obj) or inspect.isbuiltin(obj):
            return NotImplemented
        if "<lambda>" in qualname or "<locals>" in qualname:
            raise TypeError(
                f"{module_name}.{qualname} cannot be sent to a child process (a lambda or a local "
                "function): use module-level functions in process='subprocess' mode, or "
                "process='in-process'"
            )
        self.note(module_name)
        if inspect.isfunction(obj):
            return NotImplemented  # pickled by reference (module and qualified name)
        module = sys.modules.get(module_name)
        if module is None or _lookup(module, qualname) is not obj:
            return NotImplemented
        return _resolve, (module_name, qualname)  # e.g. an async workflow's wrapper object


def _lookup(module: Any, qualname: str) -> Any:
    value = module
    for part in qualname.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _resolve(module_name: str, qualname: str) -> Any:
    return _lookup(sys.modules[module_name], qualname)


def _dump_program(program: _Program) -> bytes:
    import io

    buffer = io.BytesIO()
    pickler = _ProgramPickler(buffer)
    try:
        pickler.dump(program)
    except TypeError:
        raise
    except Exception as exc:
        raise TypeError(
            f"process='subprocess' needs a program that can be sent to a child process ({exc}): "
            "module-level functions and picklable arguments; or use process='in-process'"
        ) from exc
    return pickle.dumps(
        {"sys_path": list(sys.path), "modules": pickler.modules, "program": buffer.getvalue()}
    )


def _load_program(path: Path) -> _Program:
    package = pickle.loads(path.read_bytes())
    for entry in reversed(package["sys_path"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    for name, file in package["modules"].items():
        _load_module(name, file)
    return pickle.loads(package["program"])


def _load_module(name: str, file: str | None) -> None:
    if name in sys.modules and name != "__main__":
        return
    if name != "__main__":
        try:
            importlib.import_module(name)
            return
        except ImportError:
            if file is None:
                raise
    if file is None:
        return
    alias = "__crash_kit_main__" if name == "__main__" else name
    spec = importlib.util.spec_from_file_location(alias, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load module {name} from {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    if name == "__main__":
        sys.modules["__main__"] = module


# -- the check --------------------------------------------------------------------------------------


def check_crash_safety(
    fn: Callable[..., Any],
    *args: Any,
    database_url: str | None = None,
    crash_points: str | Iterable[str | CrashPoint] = "every-step",
    process: str = "subprocess",
    setup: Callable[[Engine], Any] | None = None,
    answer: Callable[[Engine, WorkflowStatus], Any] | Mapping[str | None, Any] | None = None,
    normalize: Callable[[Any], Any] | None = None,
    workflow_id: str | None = None,
    replay: bool = True,
    timeout_seconds: float = 120.0,
    engine_options: Mapping[str, Any] | None = None,
    keep_files: bool = False,
    **kwargs: Any,
) -> CrashReport:
    """Crash `fn(*args, **kwargs)` at every step in turn, recover it, and report what differs.

    Example:
        ```python
        report = check_crash_safety(place_order, "order-42")
        report.assert_ok()          # AssertionError with a table, one line per crash point
        ```

    `fn` is a workflow, or any callable that starts durable runs (a `DurableAgent` run, a CrewAI
    kickoff, a `DurableGraph` invoke, a driver starting several workflows): the kit calls it inside
    ``workflow_options(workflow_id=...)`` with a launched engine (reach it with
    ``durable_core.current_engine()``), waits until nothing more runs by itself, and reads every
    workflow of the database. What it does:

    1. The first run (uncrashed) records each workflow's steps (`engine.list_steps`) and `fn`'s
       result. Then (`replay=True`) each finished workflow is replayed once more in that process
       (a fork from after its last step): a workflow that branches on ``time.time()``, ``random``
       or any other state outside its steps shows up here, before the matrix.
    2. For each crash point (workflow W, step k, phase), `fn` runs again from scratch on a fresh
       database and is killed there: ``"before"`` k's body runs, or ``"after"`` k's record is
       committed (``crash_points="every-step"``, the default, also adds ``"in-flight"`` -- after
       the body ran, before its record -- for every step whose body recorded a `crash_ledger`
       effect in the first run; ``"all"`` adds it for every step).
    3. A fresh engine on what the crash left launches (which resumes the workflows, as a restarted
       process does), the kit waits for them, calls `fn` again (a finished or running workflow is
       never run twice, so this returns its result, and resumes runs left to their caller such as
       a CrewAI kickoff), waits again, and compares with the first run.

    Per crash point the report has: the result and every workflow's final record equal or not;
    which steps executed again -- none may, except a step that was in flight at the crash
    (started, not recorded); `crash_ledger` side effects repeated; `NondeterminismError` with the
    step where the replay diverged; and timings.

    Args:
        database_url: where the kit's databases live: None for a temporary directory, or a
            ``sqlite:///dir/name.db`` URL whose directory receives one fresh file per run. The kit
            runs on SQLite only (a fresh database per run, copied at the crash in-process).
        crash_points: ``"every-step"``, ``"all"``, a phase (``"before"``, ``"in-flight"``,
            ``"after"``) or a list of phases and `CrashPoint` objects.
        process: ``"subprocess"`` (default): every run in a fresh child process forked from one that
            imported the program; a crash is a real ``os._exit``, and module state dies with it.
            `fn`, `setup`, `answer`, `normalize` must then be module-level functions (or partials of
            them) and the arguments picklable. ``"in-process"``: every run in this process (fast,
            works with lambdas); a crash raises `SimulatedCrash` at the point, the database is copied
            at that instant and the crashed engine is dropped without cleanup. Module-level state
            survives such a crash, so state kept outside steps may go unnoticed.
        setup: called with each fresh engine before it launches (build graphs and agents bound to it,
            as a restarted process does before launch); its return value is passed to `fn` as its
            first argument.
        answer: answers the run's message waits (human-in-the-loop): a mapping from
            `status.waiting.topic` to the message, or a function ``(engine, status) -> message``
            (None leaves the wait unanswered). Each wait is answered once.
        normalize: maps `fn`'s return value to what is compared (e.g. ``lambda r: r.output``).
        workflow_id: the id of the first workflow `fn` starts (default ``"crash-safety-<fn name>"``).
        replay: run the early replay check.
        timeout_seconds: the limit for each call of `fn` and each wait for the runs to settle.
        engine_options: more `Engine` arguments (e.g. ``serializer=PickleSerializer()``).
        keep_files: keep the databases and ledgers (their directory is in the report's problems).
        **kwargs: passed to `fn`.
    """
    started = time.monotonic()
    if process not in ("subprocess", "in-process"):
        raise ValueError(f"process must be 'subprocess' or 'in-process', got {process!r}")
    selection = _selection(crash_points)
    program = _Program(
        fn=fn,
        args=tuple(args),
        kwargs=dict(kwargs),
        setup=setup,
        answer=answer,
        normalize=normalize,
        workflow_id=workflow_id or f"crash-safety-{getattr(fn, '__name__', 'run')}",
        # a process death loses no committed WAL transaction with NORMAL (only a power cut would)
        engine_options={"sqlite_synchronous": "NORMAL", **(engine_options or {})},
        timeout_seconds=timeout_seconds,
    )
    report = CrashReport(
        target=_describe(program),
        process=process,
        crash_points=crash_points if isinstance(crash_points, str) else "explicit",
    )
    with _CHECK_LOCK, _workspace(database_url, keep_files) as directory:
        runner: _InProcessRunner | _SubprocessRunner = (
            _InProcessRunner(program) if process == "in-process" else _SubprocessRunner(program, directory)
        )
        with runner:
            baseline_ledger = str(directory / "first-run.ledger")
            baseline = runner.run(
                _Op("baseline", str(directory / "first-run.db"), baseline_ledger, replay=replay)
            )
            report.baseline_seconds = baseline.seconds
            report.baseline_result = baseline.raised if baseline.raised is not None else baseline.result
            report.baseline_errors = list(baseline.errors)
            report.process = runner.process
            report.workflows = {
                wid: [StepRef(wid, step_id, name) for step_id, name in state.steps]
                for wid, state in baseline.states.items()
            }
            report.replay = baseline.replay
            if not baseline.states and not baseline.errors:
                report.baseline_errors.append(
                    f"{report.target} started no durable workflow on the kit's engine (reach the engine "
                    "with durable_core.current_engine(), or build it in setup=)"
                )
            if report.baseline_errors:
                report.skipped_matrix = "the first run did not complete"
            elif not all(check.ok for check in report.replay):
                report.skipped_matrix = "the recorded run does not replay as recorded; fix that first"
            else:
                entries = _read_ledger(baseline_ledger)
                for index, point in enumerate(_plan(baseline, selection, entries), 1):
                    report.points.append(_run_point(runner, directory, index, point, baseline, entries))
        if keep_files:
            report.files = str(directory)
    report.total_seconds = time.monotonic() - started
    return report


_CHECK_LOCK = threading.RLock()


@contextmanager
def _workspace(database_url: str | None, keep: bool) -> Generator[Path, None, None]:
    if database_url is None:
        parent: str | None = None
    else:
        if not database_url.startswith("sqlite:///"):
            raise ValueError(
                "check_crash_safety runs on SQLite (a fresh database file per run): pass None or a "
                f"sqlite:///path URL, got {database_url!r}"
            )
        parent = str(Path(database_url.removeprefix("sqlite:///")).resolve().parent)
        Path(parent).mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="crash-safety-", dir=parent))
    try:
        yield directory
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


def _selection(crash_points: str | Iterable[str | CrashPoint]) -> tuple[set[str], list[CrashPoint], bool]:
    """(phases for every step, explicit points, add in-flight where the first run recorded effects)."""
    if isinstance(crash_points, str):
        if crash_points not in _PHASE_SETS:
            raise ValueError(
                f"crash_points must be one of {sorted(_PHASE_SETS)} or a list, got {crash_points!r}"
            )
        return set(_PHASE_SETS[crash_points]), [], crash_points == "every-step"
    phases: set[str] = set()
    explicit: list[CrashPoint] = []
    for item in crash_points:
        if isinstance(item, CrashPoint):
            explicit.append(item)
        elif item in PHASES:
            phases.add(item)
        else:
            raise ValueError(f"unknown crash point {item!r}: use a phase {PHASES} or a CrashPoint")
    return phases, explicit, False


def _windows(entries: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """Steps the first run recorded through a step record (with hooks around its commit), as
    opposed to engine operations that record themselves."""
    return {(e["wf"], e["step"]) for e in entries if e.get("t") == "recorded"}


def _plan(
    baseline: _RunResult, selection: tuple[set[str], list[CrashPoint], bool], entries: list[dict[str, Any]]
) -> list[CrashPoint]:
    phases, explicit, effect_windows = selection
    windows = _windows(entries)
    effects = {(e.get("wf"), e.get("step")) for e in entries if e.get("t") == "effect" and e.get("in_step")}
    names = {(wid, step_id): name for wid, state in baseline.states.items() for step_id, name in state.steps}
    points = [
        CrashPoint(
            p.workflow_id, p.step_id, p.phase, p.step_name or names.get((p.workflow_id, p.step_id), "")
        )
        for p in explicit
    ]
    for wid, state in baseline.states.items():
        for step_id, name in state.steps:
            for phase in PHASES:
                if phase == "in-flight":
                    if (wid, step_id) not in windows:
                        continue  # recorded by an engine operation: there is no window between body and record
                    if phase not in phases and not (effect_windows and (wid, step_id) in effects):
                        continue
                elif phase not in phases:
                    continue
                points.append(CrashPoint(wid, step_id, phase, name))
    return points


def _run_point(
    runner: _InProcessRunner | _SubprocessRunner,
    directory: Path,
    index: int,
    point: CrashPoint,
    baseline: _RunResult,
    baseline_entries: list[dict[str, Any]],
) -> PointResult:
    windows = _windows(baseline_entries)
    folder = directory / f"point-{index:03d}"
    folder.mkdir()
    ledger = str(folder / "ledger")
    database = str(folder / "crashed.db")
    in_process = isinstance(runner, _InProcessRunner)
    recovered = str(folder / "recovered.db") if in_process else database
    crash = runner.run(
        _Op(
            "crash",
            database,
            ledger,
            target=point,
            at_next_boundary=point.phase == "after" and (point.workflow_id, point.step_id) not in windows,
            snapshot_path=recovered if in_process else None,
            exit_on_crash=not in_process,
        )
    )
    result = PointResult(point, reached=crash.crashed, note=crash.crash_note, crash_seconds=crash.seconds)
    result.errors.extend(f"crashed run: {e}" for e in crash.errors)
    if not crash.crashed:
        return result
    recovery = runner.run(_Op("recovery", recovered, ledger))
    result.recovery_seconds = recovery.seconds
    result.errors.extend(recovery.errors)
    _compare(result, baseline, recovery, _read_ledger(ledger), baseline_entries)
    if not result.errors:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def _compare(
    result: PointResult,
    baseline: _RunResult,
    recovery: _RunResult,
    entries: list[dict[str, Any]],
    baseline_entries: list[dict[str, Any]],
) -> None:
    differences: list[str] = []
    if recovery.raised != baseline.raised:
        after = f"raised {_clip(recovery.raised, 160)}" if recovery.raised else "returned normally"
        first = f"raised {_clip(baseline.raised, 160)}" if baseline.raised else "returned normally"
        differences.append(f"after recovery the call {after}; in the first run it {first}")
    elif not _equal(recovery.result, baseline.result):
        differences.append(f"the result differs: {_difference(baseline.result, recovery.result)}")
    for wid in sorted(set(baseline.states) | set(recovery.states)):
        before, after = baseline.states.get(wid), recovery.states.get(wid)
        if before is None:
            differences.append(f"workflow {wid} exists only after recovery")
        elif after is None:
            differences.append(f"workflow {wid} is missing after recovery")
        else:
            for label in ("status", "output", "error", "waiting", "steps"):
                a, b = getattr(before, label), getattr(after, label)
                if a != b and (
                    label not in ("output", "error") or _masked(a, ids=True) != _masked(b, ids=True)
                ):
                    differences.append(f"{wid} {label} differs: {_difference(a, b)}")
    result.differences = differences
    result.result_equal = not differences
    runs: Counter[tuple[str, int]] = Counter()
    names: dict[tuple[str, int], str] = {}
    started_in_crash: set[tuple[str, int]] = set()
    for entry in entries:
        if entry.get("t") == "run":
            key = (entry["wf"], entry["step"])
            runs[key] += 1
            names[key] = entry["name"]
            if entry.get("phase") == "crash":
                started_in_crash.add(key)
        elif entry.get("t") == "diverged":
            result.nondeterminism.append(
                f"{entry['wf']} step {entry['step']}: recorded {entry['recorded']!r}, the recovered run "
                f"called {entry['called']!r}"
            )
    in_flight = started_in_crash - recovery.recorded_at_start
    for key, count in sorted(runs.items()):
        if count < 2:
            continue
        ref = StepRef(key[0], key[1], names[key])
        result.executed_again.append(ref)
        (result.allowed_again if key in in_flight else result.unexpected_again).append(ref)
    for wid, state in recovery.states.items():
        if (
            state.error is not None
            and state.error.startswith("NondeterminismError")
            and not any(wid in n for n in result.nondeterminism)
        ):
            result.nondeterminism.append(state.error)
    expected = Counter(
        (e["effect"], e["key"])
        for e in baseline_entries
        if e.get("t") == "effect" and e.get("phase") == "baseline"
    )
    seen = Counter((e["effect"], e["key"]) for e in entries if e.get("t") == "effect")
    for (effect, key), count in sorted(seen.items()):
        if count > expected[(effect, key)]:
            places = [
                _where(e)
                for e in entries
                if e.get("t") == "effect" and (e["effect"], e["key"]) == (effect, key)
            ]
            result.repeated_effects.append(
                RepeatedEffect(effect, key, count, expected[(effect, key)], "; ".join(dict.fromkeys(places)))
            )


def _where(entry: dict[str, Any]) -> str:
    wid = entry.get("wf")
    if wid is None:
        return "outside any workflow"
    if entry.get("in_step"):
        return f"in step {wid}:{entry.get('step')} {entry.get('name', '')}".rstrip()
    return f"outside any step, in workflow {wid} after step {entry.get('step')}"


def _equal(a: Any, b: Any) -> bool:
    """Equal values, or values whose reprs differ only in timestamps."""
    try:
        if bool(a == b):
            return True
    except Exception:
        pass
    return _masked(repr(a), ids=True) == _masked(repr(b), ids=True)


_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|datetime\.datetime\([^()]*(?:\([^()]*\)[^()]*)*\)"
)


_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")


def _masked(text: str | None, *, ids: bool = False) -> str | None:
    """Two runs started at different times record different times (and, with `ids`, different
    generated UUIDs, such as LangGraph's time-based checkpoint ids): compare everything else."""
    if text is None:
        return None
    text = _TIMESTAMP.sub("<time>", text)
    return _UUID.sub("<uuid>", text) if ids else text


def _difference(
    first: Any, second: Any, *, ids: bool = True, labels: tuple[str, str] = ("first run", "after recovery")
) -> str:
    """Where two values first differ (timestamps and ids aside), with a little context from each."""
    a = first if isinstance(first, str) else repr(first)
    b = second if isinstance(second, str) else repr(second)
    ma, mb = _masked(a, ids=ids) or "", _masked(b, ids=ids) or ""
    index = next((i for i, (x, y) in enumerate(zip(ma, mb, strict=False)) if x != y), min(len(ma), len(mb)))
    start = max(0, index - 40)

    def excerpt(text: str) -> str:
        part = text[start : index + 60]
        return ("..." if start else "") + part + ("..." if index + 60 < len(text) else "")

    return f"{labels[0]} {excerpt(ma)!r}, {labels[1]} {excerpt(mb)!r}"


def _error_text(error: BaseException) -> str:
    type_name = getattr(error, "type_name", None) or type(error).__name__
    return f"{str(type_name).rsplit('.', 1)[-1]}: {error}"


def _describe(program: _Program) -> str:
    name = getattr(program.fn, "__qualname__", None) or repr(program.fn)
    parts = [_clip(repr(a), 30) for a in program.args] + [
        f"{k}={_clip(repr(v), 30)}" for k, v in program.kwargs.items()
    ]
    return _clip(f"{name}({', '.join(parts)})", 90)


def _short(value: Any, limit: int = 120) -> str:
    return _clip(repr(value), limit)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tail(path: str | Path, limit: int = 3000) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    return text[-limit:]
