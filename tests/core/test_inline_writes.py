"""SQLite checkpoint writes made on the workflow's own event loop, and when they are not.

An async workflow running alone in its engine records its start, steps and finish right on its
event loop (no hand-off to an IO thread), but only while SQLite's write lock is free at once and
commits are fast; otherwise the same write runs on an IO thread and the loop keeps running.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from durable_core import Engine, step, workflow, workflow_options

T = TypeVar("T")


async def while_ticking(ticks: list[int], work: Awaitable[T]) -> T:
    """Await `work` while a task counts event-loop ticks, 10 ms apart, in `ticks[0]`: a loop
    that a database write blocks makes none."""
    stop = asyncio.Event()

    async def tick() -> None:
        while not stop.is_set():
            ticks[0] += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.ensure_future(tick())
    try:
        return await work
    finally:
        stop.set()
        await ticking


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = Engine(f"sqlite:///{tmp_path / 'inline.db'}", heartbeat_seconds=0.5, lease_seconds=5.0)
    engine.launch()
    try:
        yield engine
    finally:
        engine.shutdown()


def _spy_step_writes(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Thread idents of every step record, in order."""
    threads: list[int] = []
    record = engine.steps.record

    def spy(**kwargs: Any) -> bool:
        threads.append(threading.get_ident())
        return record(**kwargs)

    monkeypatch.setattr(engine.steps, "record", spy)
    return threads


@step()
async def double(x: int) -> int:
    return 2 * x


@workflow()
async def double_twice(x: int) -> tuple[int, int]:
    loop_thread = threading.get_ident()
    return await double(await double(x)), loop_thread


def test_a_lone_async_workflow_records_its_steps_on_its_event_loop(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _spy_step_writes(sqlite_engine, monkeypatch)
    # commits count as fast however loaded the machine is (test_slow_commits_... covers the gate)
    monkeypatch.setattr("durable_core.storage._database.INLINE_WRITE_LIMIT_SECONDS", 10.0)

    async def main() -> tuple[int, int]:
        with workflow_options(workflow_id="alone"):
            return await double_twice(3)

    value, loop_thread = asyncio.run(main())
    assert value == 12
    assert threads == [loop_thread, loop_thread]
    assert [s.output for s in sqlite_engine.list_steps("alone")] == [6, 12]
    assert sqlite_engine.get_workflow_status("alone").status == "SUCCESS"


def test_concurrent_workflows_record_on_io_threads(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _spy_step_writes(sqlite_engine, monkeypatch)
    started = asyncio.Event()

    @workflow(name="inline.waits_for_a_second")
    async def first() -> int:
        started.set()
        await asyncio.sleep(0.3)
        return await double(1)

    async def main() -> list[Any]:
        with workflow_options(workflow_id="first"):
            running = asyncio.ensure_future(first())
        await started.wait()
        with workflow_options(workflow_id="second"):
            second = await double_twice(5)
        return [await running, second, threading.get_ident()]

    first_value, (second_value, _), loop_thread = asyncio.run(main())
    assert (first_value, second_value) == (2, 20)
    # the second workflow's two steps ran while the first was active: both on IO threads
    assert len(threads) == 3
    assert loop_thread not in threads[:2]


def test_slow_commits_send_writes_to_io_threads(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _spy_step_writes(sqlite_engine, monkeypatch)
    sqlite_engine.database.write_seconds = 1.0  # as if commits had been taking a second

    async def main() -> tuple[int, int]:
        with workflow_options(workflow_id="slow-disk"):
            return await double_twice(1)

    value, loop_thread = asyncio.run(main())
    assert value == 4
    assert threads and loop_thread not in threads
    # fast commits on the IO threads bring the average back down: inline writes resume later
    assert sqlite_engine.database.write_seconds < 1.0


def test_one_slow_commit_among_fast_ones_keeps_writes_on_the_loop(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone slow commit (a WAL checkpoint, a hiccup of the disk) does not send the next writes
    off the loop; commits slow twice in a row (a slow disk) do."""
    threads = _spy_step_writes(sqlite_engine, monkeypatch)
    database = sqlite_engine.database
    raw: Any = database.raw
    for _ in range(20):
        raw.note_write(0.0002)
    raw.note_write(0.5)  # one spike: alone it would have moved the average to 50 ms
    assert database.writes_inline

    async def main() -> tuple[int, int]:
        with workflow_options(workflow_id="one-spike"):
            return await double_twice(1)

    monkeypatch.setattr(  # the real commits count as fast however loaded the machine is
        raw, "note_write", lambda seconds, note=raw.note_write: note(min(seconds, 0.0002))
    )
    value, loop_thread = asyncio.run(main())
    assert value == 4
    assert threads == [loop_thread, loop_thread]

    monkeypatch.undo()
    raw.note_write(0.5)
    raw.note_write(0.5)  # slow twice in a row: the disk is slow now
    assert not database.writes_inline


def test_the_wal_stays_small_so_commits_reuse_its_space(sqlite_engine: Engine, tmp_path: Path) -> None:
    """The WAL is checkpointed every `SQLITE_WAL_AUTOCHECKPOINT_PAGES` pages (SQLite's default: 1000,
    4 MB), so commits soon overwrite space the WAL file has instead of growing it (each growth is
    a file-size change the file system records with the commit)."""
    from durable_core.storage._database import SQLITE_WAL_AUTOCHECKPOINT_PAGES

    async def main() -> None:
        for run in range(60):  # about 700 pages of WAL: 2.8 MB at SQLite's default
            with workflow_options(workflow_id=f"wal-{run}"):
                assert (await double_twice(run))[0] == 4 * run

    asyncio.run(main())
    wal = tmp_path / "inline.db-wal"
    assert wal.stat().st_size < 3 * SQLITE_WAL_AUTOCHECKPOINT_PAGES * 4096
    assert sqlite_engine.get_workflow_status("wal-59").status == "SUCCESS"


def test_a_write_that_would_wait_for_the_lock_moves_off_the_loop(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Another writer holds SQLite's write lock when a step finishes: the record waits on an IO
    thread, the event loop keeps running meanwhile, and the step is recorded once the lock frees."""
    holder = sqlite3.connect(tmp_path / "inline.db", isolation_level=None, check_same_thread=False)
    lock_taken = threading.Event()
    ticks_while_locked: list[int] = []
    ticks = [0]

    def release_later() -> None:
        ticks_at_lock = ticks[0]
        threading.Event().wait(0.5)
        ticks_while_locked.append(ticks[0] - ticks_at_lock)
        holder.execute("COMMIT")

    @step(name="inline.takes_the_lock")
    async def takes_the_lock() -> str:
        holder.execute("BEGIN IMMEDIATE")  # as another process writing would
        lock_taken.set()
        threading.Thread(target=release_later, daemon=True).start()
        return "recorded after the lock"

    @workflow(name="inline.blocked_writer")
    async def blocked_writer() -> str:
        return await takes_the_lock()

    async def main() -> str:
        with workflow_options(workflow_id="blocked"):
            return await while_ticking(ticks, blocked_writer())

    try:
        assert asyncio.run(main()) == "recorded after the lock"
    finally:
        holder.close()
    assert lock_taken.is_set()
    # about 50 ticks in the half second the lock was held; a loop stuck in a busy wait makes none
    assert ticks_while_locked and ticks_while_locked[0] >= 10
    assert [s.output for s in sqlite_engine.list_steps("blocked")] == ["recorded after the lock"]
    assert sqlite_engine.get_workflow_status("blocked").status == "SUCCESS"


# -- PostgreSQL: writes over the event loop's own AsyncConnection -----------------------------------


@pytest.fixture
def pg_engine(database_url: str) -> Iterator[Engine]:
    engine = Engine(database_url, heartbeat_seconds=0.5, lease_seconds=5.0, db_retry_seconds=30.0)
    engine.launch()
    try:
        yield engine
    finally:
        engine.shutdown()


@pytest.mark.backends("postgres")
def test_postgres_async_steps_are_written_on_the_event_loop_thread(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _spy_step_writes(pg_engine, monkeypatch)

    async def main() -> tuple[tuple[int, int], tuple[int, int]]:
        # two workflows at once on one loop: PostgreSQL writes stay on the loop even then
        with workflow_options(workflow_id="pg-loop-a"):
            a = asyncio.ensure_future(double_twice(3))
        with workflow_options(workflow_id="pg-loop-b"):
            b = asyncio.ensure_future(double_twice(4))
        return await a, await b

    (value_a, loop_a), (value_b, loop_b) = asyncio.run(main())
    assert (value_a, value_b) == (12, 16)
    assert loop_a == loop_b
    assert threads == [loop_a] * 4
    assert [s.output for s in pg_engine.list_steps("pg-loop-a")] == [6, 12]
    assert pg_engine.get_workflow_status("pg-loop-b").status == "SUCCESS"


@pytest.mark.backends("postgres")
def test_postgres_loop_connections_close_with_their_loop_and_the_engine(
    pg_engine: Engine, recwarn: pytest.WarningsRecorder
) -> None:
    import gc

    gc.collect()  # connections an earlier test in this process left to the collector are not ours
    recwarn.clear()
    for run in range(3):  # a loop per run, as pytest-asyncio makes one per test

        async def main(run: int = run) -> tuple[int, int]:
            with workflow_options(workflow_id=f"pg-loops-{run}"):
                return await double_twice(run)

        assert asyncio.run(main())[0] == 4 * run
    gc.collect()
    connections = pg_engine.database.loop_connection_count()
    assert connections <= 1  # those of closed loops are closed at the next write, or when collected
    pg_engine.shutdown()
    assert pg_engine.database.loop_connection_count() == 0
    gc.collect()
    unclosed = [str(w.message) for w in recwarn if issubclass(w.category, ResourceWarning)]
    assert not [text for text in unclosed if "Connection" in text]  # psycopg's "deleted while still open"


@pytest.fixture
def short_writes_engine(database_url: str) -> Iterator[Engine]:
    """An engine whose event-loop writes are abandoned after 0.3 s (`Engine(write_timeout=...)`)."""
    with pytest.raises(ValueError, match="write_timeout must be a positive"):
        Engine(database_url, write_timeout=0)
    engine = Engine(
        database_url, heartbeat_seconds=0.5, lease_seconds=5.0, db_retry_seconds=30.0, write_timeout=0.3
    )
    engine.launch()
    try:
        yield engine
    finally:
        engine.shutdown()


@pytest.mark.backends("postgres")
def test_a_blocked_postgres_write_is_bounded_retried_and_never_stalls_the_loop(
    short_writes_engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holds a lock on the steps table while a step is recorded: each attempt
    is abandoned after the write timeout (`Engine(write_timeout=...)`) and retried as an outage,
    the loop keeps running, and the step is recorded once the lock is released."""
    import psycopg

    pg_engine = short_writes_engine
    assert pg_engine.database.write_timeout == 0.3
    holder = psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql"))
    ticks = [0]
    ticks_while_locked: list[int] = []

    def release_later() -> None:
        ticks_at_lock = ticks[0]
        threading.Event().wait(1.5)
        ticks_while_locked.append(ticks[0] - ticks_at_lock)
        holder.commit()

    @step(name="pg_loop.blocked")
    async def blocked() -> str:
        holder.execute("LOCK TABLE durable.steps IN ACCESS EXCLUSIVE MODE")
        threading.Thread(target=release_later, daemon=True).start()
        return "recorded after the lock"

    @workflow(name="pg_loop.blocked_writer")
    async def blocked_writer() -> tuple[str, int]:
        return await blocked(), threading.get_ident()

    async def main() -> tuple[str, int]:
        with workflow_options(workflow_id="pg-blocked"):
            return await while_ticking(ticks, blocked_writer())

    try:
        with caplog.at_level("WARNING", logger="durable_core.storage"):
            value, _loop = asyncio.run(main())
    finally:
        holder.close()
    assert value == "recorded after the lock"
    # about 150 ticks in the 1.5 s the lock was held; a loop blocked on the write makes none
    assert ticks_while_locked and ticks_while_locked[0] >= 50
    retries = [r for r in caplog.records if "record step: database unavailable" in r.getMessage()]
    assert len(retries) >= 2  # bounded attempts (0.3 s each), retried while the lock was held
    assert [s.output for s in pg_engine.list_steps("pg-blocked")] == ["recorded after the lock"]
    assert pg_engine.get_workflow_status("pg-blocked").status == "SUCCESS"


@pytest.mark.backends("postgres")
def test_a_postgres_write_blocked_past_the_retries_interrupts_and_resumes(database_url: str) -> None:
    """Blocked for longer than `db_retry_seconds`: the step's write is reported as the outage it
    is (the run stops without an outcome, never ERROR), and the live engine resumes it once the
    database answers; the loop kept running all along."""
    import psycopg

    engine = Engine(database_url, heartbeat_seconds=0.2, lease_seconds=5.0, db_retry_seconds=1.0)
    engine.launch()
    engine.database.write_timeout = 0.3
    holder = psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql"))
    bodies: list[int] = []
    ticks = [0]
    ticks_while_locked: list[int] = []

    def release_later() -> None:
        ticks_at_lock = ticks[0]
        threading.Event().wait(2.5)  # the write's retries give up after about 1 s
        ticks_while_locked.append(ticks[0] - ticks_at_lock)
        holder.commit()

    @step(name="pg_loop.outlasts_the_retries")
    async def outlasts() -> str:
        bodies.append(1)
        if len(bodies) == 1:
            holder.execute("LOCK TABLE durable.steps IN ACCESS EXCLUSIVE MODE")
            threading.Thread(target=release_later, daemon=True).start()
        return "recorded on the second run"

    @workflow(name="pg_loop.interrupted_writer")
    async def interrupted_writer() -> str:
        return await outlasts()

    async def run_it() -> str:
        with workflow_options(workflow_id="pg-interrupted"):
            handle = await engine.start_workflow_async(interrupted_writer)
        return await handle.get_result_async(timeout_seconds=60)

    async def main() -> str:
        return await while_ticking(ticks, run_it())

    try:
        assert asyncio.run(main()) == "recorded on the second run"
        assert ticks_while_locked and ticks_while_locked[0] >= 50
        assert len(bodies) == 2  # the step in flight at the outage ran again, once
        assert engine.get_workflow_status("pg-interrupted").status == "SUCCESS"
        assert [s.output for s in engine.list_steps("pg-interrupted")] == ["recorded on the second run"]
    finally:
        holder.close()
        engine.shutdown()
