"""Cancelling the caller's asyncio task ends the local wait promptly and never hangs the event loop;
the workflow stays PENDING in the database and is recovered like any interrupted run."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from durable_core import Engine, recv_async, step, workflow, workflow_options

RUNS: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    RUNS.clear()


@step(name="acancel_first")
async def acancel_first(workflow_id: str) -> str:
    RUNS[workflow_id] += 1
    return "first"


@workflow(name="acancel_waiter")
async def acancel_waiter(workflow_id: str) -> str:
    first = await acancel_first(workflow_id)
    message = await recv_async("go", timeout_seconds=60)
    return f"{first}+{message}"


def bounded(fn: Callable[[], Any], limit: float) -> tuple[Any, float]:
    """Run `fn` on a daemon thread; fail (instead of hanging the suite) if it takes over `limit` s."""
    box: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc
        box["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"still running after {limit}s: the event loop hangs"
    if "error" in box:
        raise box["error"]
    return box.get("value"), box["elapsed"]


def _left_pending(engine: Engine, workflow_id: str) -> None:
    status = engine.get_workflow_status(workflow_id)
    assert status.status == "PENDING" and status.executor_id == engine.executor_id
    assert workflow_id not in engine.active  # released here: a recovery in this process may run it


def test_wait_for_timeout_around_a_waiting_workflow_returns_promptly(engine: Engine) -> None:
    async def main() -> float:
        with workflow_options(workflow_id="wf-timeout"):
            call = acancel_waiter("wf-timeout")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call, 0.5)
        return time.monotonic() - started

    waited, _ = bounded(lambda: asyncio.run(main()), 15)
    assert waited < 2.0
    _left_pending(engine, "wf-timeout")

    engine.send("wf-timeout", "hello", "go")
    handles = engine.recover()
    assert [h.workflow_id for h in handles] == ["wf-timeout"]
    assert handles[0].get_result(timeout_seconds=30) == "first+hello"
    assert RUNS["wf-timeout"] == 1  # the recorded step was replayed, not run again


def test_cancelling_the_callers_task_raises_cancelled_promptly(engine: Engine) -> None:
    async def main() -> float:
        with workflow_options(workflow_id="wf-cancel"):
            task = asyncio.ensure_future(acancel_waiter("wf-cancel"))
        await asyncio.sleep(0.5)
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    waited, _ = bounded(lambda: asyncio.run(main()), 15)
    assert waited < 1.0
    _left_pending(engine, "wf-cancel")
    engine.send("wf-cancel", "again", "go")
    (handle,) = engine.recover()
    assert handle.get_result(timeout_seconds=30) == "first+again"


def test_asyncio_run_exits_promptly_while_a_durable_run_waits(engine: Engine, database_url: str) -> None:
    left: list[asyncio.Future[str]] = []

    async def main() -> float:
        with workflow_options(workflow_id="wf-left"):
            left.append(asyncio.ensure_future(acancel_waiter("wf-left")))
        await asyncio.sleep(0.5)  # it waits in recv now; asyncio.run cancels it on the way out
        return time.monotonic()

    returned_at, _ = bounded(lambda: asyncio.run(main()), 15)
    assert time.monotonic() - returned_at < 2.0  # asyncio.run's exit: cancel the task, close the loop
    assert left[0].cancelled()
    _left_pending(engine, "wf-left")
    executor_id = engine.executor_id
    engine.shutdown()

    # a relaunch of the same executor resumes it; the recv still gets its message
    with Engine(database_url, executor_id=executor_id, heartbeat_seconds=0.5, lease_seconds=5.0) as again:
        again.send("wf-left", "after restart", "go")
        assert again.retrieve_workflow("wf-left").get_result(timeout_seconds=30) == "first+after restart"
    assert RUNS["wf-left"] == 1


def test_a_timed_out_get_result_async_leaves_the_run_intact(engine: Engine) -> None:
    async def main() -> str:
        with workflow_options(workflow_id="wf-bg"):
            handle = await engine.start_workflow_async(acancel_waiter, "wf-bg")
        with pytest.raises(TimeoutError):
            await handle.get_result_async(timeout_seconds=0.3)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(handle.get_result_async(), 0.3)
        await engine.send_async("wf-bg", "later", "go")
        return await handle.get_result_async(timeout_seconds=30)

    result, _ = bounded(lambda: asyncio.run(main()), 30)
    assert result == "first+later"
    assert engine.get_workflow_status("wf-bg").status == "SUCCESS"
