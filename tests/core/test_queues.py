"""Queues: limits, rate limit, priority, deduplication, enqueue by name, queued steps."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from durable_core import (
    DurableError,
    Engine,
    Queue,
    QueueDeduplicatedError,
    RateLimit,
    SerializationError,
    recv,
    step,
    workflow,
    workflow_options,
)

_lock = threading.Lock()
_state: dict[str, Any] = {"now": 0, "max": 0, "starts": [], "order": []}

limited = Queue("limited", worker_concurrency=2)
global_one = Queue("global-one", concurrency=1, worker_concurrency=5)
rated = Queue("rated", rate_limit=RateLimit(limit=3, period_seconds=1.0), worker_concurrency=10)
prioritized = Queue("prioritized", worker_concurrency=1, priority_enabled=True)
plain = Queue("plain")


def _reset() -> None:
    with _lock:
        _state.update(now=0, max=0, starts=[], order=[])


@step()
def busy(seconds: float) -> str:
    with _lock:
        _state["now"] += 1
        _state["max"] = max(_state["max"], _state["now"])
        _state["starts"].append(time.monotonic())
    time.sleep(seconds)
    with _lock:
        _state["now"] -= 1
    return "done"


@workflow()
def busy_flow(seconds: float) -> str:
    return busy(seconds)


@workflow()
def record_order(tag: str) -> str:
    with _lock:
        _state["order"].append(tag)
    return tag


@workflow()
def gatekeeper() -> Any:
    return recv(timeout_seconds=30)


def test_worker_concurrency_is_never_exceeded(engine: Engine) -> None:
    _reset()
    handles = [limited.enqueue(busy_flow, 0.15) for _ in range(6)]
    assert [h.get_result(timeout_seconds=30) for h in handles] == ["done"] * 6
    assert _state["max"] == 2


def test_global_concurrency_across_two_engines(engine: Engine, database_url: str) -> None:
    _reset()
    second = Engine(database_url, executor_id="second-engine")
    second.launch()
    try:
        handles = [global_one.enqueue(busy_flow, 0.1) for _ in range(5)]
        assert all(h.get_result(timeout_seconds=30) == "done" for h in handles)
        assert _state["max"] == 1
        executors = {engine.get_workflow_status(h.workflow_id).executor_id for h in handles}
        assert executors <= {engine.executor_id, "second-engine"}
    finally:
        second.shutdown()


def test_rate_limit_sliding_window(engine: Engine) -> None:
    _reset()
    handles = [rated.enqueue(busy_flow, 0.0) for _ in range(7)]
    for h in handles:
        h.get_result(timeout_seconds=30)
    # the recorded starts (dequeue times): any 4 consecutive ones span at least the period
    recorded = sorted(
        s.started_at
        for s in engine.list_workflows(workflow_ids=[h.workflow_id for h in handles])
        if s.started_at
    )
    assert len(recorded) == 7
    for i in range(len(recorded) - 3):
        assert recorded[i + 3] - recorded[i] >= 1000
    # and the step bodies really were held back (generous slack for thread scheduling)
    starts = sorted(_state["starts"])
    assert starts[-1] - starts[0] >= 1.5


def test_priority_lower_first_then_fifo(engine: Engine) -> None:
    _reset()
    with workflow_options(workflow_id="gate", priority=0):
        gate = prioritized.enqueue(gatekeeper)
    deadline = time.monotonic() + 10
    while engine.get_workflow_status("gate").status != "PENDING" and time.monotonic() < deadline:
        time.sleep(0.01)
    handles = []
    for tag, priority in [("p5", 5), ("p1-a", 1), ("p3", 3), ("p1-b", 1)]:
        with workflow_options(priority=priority):
            handles.append(prioritized.enqueue(record_order, tag))
    engine.send("gate", "open")
    gate.get_result(timeout_seconds=10)
    for h in handles:
        h.get_result(timeout_seconds=10)
    assert _state["order"] == ["p1-a", "p1-b", "p3", "p5"]


def test_priority_needs_priority_enabled(engine: Engine) -> None:
    with pytest.raises(ValueError, match="priority_enabled"), workflow_options(priority=1):
        plain.enqueue(record_order, "x")


def test_deduplication_while_queued_or_running(engine: Engine) -> None:
    with workflow_options(workflow_id="dedup-1", deduplication_id="doc-7"):
        first = prioritized.enqueue(gatekeeper)
    with pytest.raises(QueueDeduplicatedError, match="doc-7"), workflow_options(deduplication_id="doc-7"):
        prioritized.enqueue(record_order, "dup")
    engine.send("dedup-1", "go")
    first.get_result(timeout_seconds=10)
    with workflow_options(deduplication_id="doc-7"):
        again = prioritized.enqueue(record_order, "after")
    assert again.get_result(timeout_seconds=10) == "after"


def test_enqueue_by_name_and_unknown_names(engine: Engine) -> None:
    handle = engine.enqueue("plain", "record_order", "by-name")
    assert handle.get_result(timeout_seconds=10) == "by-name"
    with pytest.raises(DurableError, match="Unknown workflow 'no_such_flow'"):
        engine.enqueue("plain", "no_such_flow")
    with pytest.raises(DurableError, match="Unknown queue 'no-such-queue'"):
        engine.enqueue("no-such-queue", "record_order", "x")


@step()
def square(x: int) -> int:
    return x * x


def test_a_step_can_be_enqueued(engine: Engine) -> None:
    handle = plain.enqueue(square, 7)
    assert handle.get_result(timeout_seconds=10) == 49
    steps = engine.list_steps(handle.workflow_id)
    assert [s.name for s in steps] == ["square"]


class Opaque:
    pass


@workflow()
def takes(x: Any) -> Any:
    return x


def test_unserializable_arguments_enqueue_nothing(engine: Engine) -> None:
    with pytest.raises(SerializationError), workflow_options(workflow_id="bad-enqueue"):
        plain.enqueue(takes, Opaque())
    assert engine.list_workflows(workflow_ids=["bad-enqueue"]) == []


def test_invalid_limits() -> None:
    with pytest.raises(ValueError, match="worker_concurrency"):
        Queue("bad", worker_concurrency=0)
    with pytest.raises(ValueError, match="concurrency"):
        Queue("bad", concurrency=-1)
    with pytest.raises(ValueError, match="limit"):
        RateLimit(limit=0, period_seconds=1)
    with pytest.raises(ValueError, match="period"):
        RateLimit(limit=1, period_seconds=0)


@workflow()
def fan_out(n: int) -> int:
    handles = [plain.enqueue(square, i) for i in range(n)]
    return sum(h.get_result() for h in handles)


def test_parent_fans_out_to_queued_children(engine: Engine) -> None:
    with workflow_options(workflow_id="fan"):
        assert fan_out(5) == sum(i * i for i in range(5))
    children = engine.list_workflows(queue_name="plain", name="step:square")
    assert {c.workflow_id for c in children} >= {f"fan-{i}" for i in (1, 2, 3, 4, 5)}
    assert all(c.parent_workflow_id == "fan" for c in children if c.workflow_id.startswith("fan-"))


def test_enqueue_wakes_promptly(engine: Engine) -> None:
    plain.enqueue(record_order, "warm").get_result(timeout_seconds=10)
    latencies = []
    for _ in range(5):
        started = time.monotonic()
        plain.enqueue(square, 2).get_result(timeout_seconds=10)
        latencies.append(time.monotonic() - started)
    assert sorted(latencies)[2] < 0.5  # generous: the point is "not a 1 s poll"


graceful = Queue("graceful", worker_concurrency=2)
_graceful_ledger: list[str] = []


@step()
def slow_part(job: int, part: int) -> int:
    _graceful_ledger.append(f"{job}:{part}")
    time.sleep(0.2)
    return part


@workflow()
def slow_job(job: int) -> int:
    return sum(slow_part(job, p) for p in range(3))


def test_graceful_shutdown_releases_claimed_work(database_url: str) -> None:
    _graceful_ledger.clear()
    first = Engine(database_url, executor_id="first")
    first.launch()
    handles = [graceful.enqueue(slow_job, j) for j in range(4)]
    deadline = time.monotonic() + 10
    while len(_graceful_ledger) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    first.shutdown()
    with Engine(database_url, executor_id="second") as second:
        statuses = {second.get_workflow_status(h.workflow_id).status for h in handles}
        assert "PENDING" not in statuses or all(
            second.get_workflow_status(h.workflow_id).executor_id != "first" for h in handles
        )
        results = [second.retrieve_workflow(h.workflow_id).get_result(timeout_seconds=30) for h in handles]
        assert results == [3, 3, 3, 3]
        owners = {second.get_workflow_status(h.workflow_id).executor_id for h in handles}
        assert "second" in owners
    # each part ran once: the step in flight at shutdown finished before the work was released
    assert sorted(_graceful_ledger) == sorted(f"{j}:{p}" for j in range(4) for p in range(3))


held_queue = Queue("held")
_held_gate = threading.Event()
_held_started = threading.Event()
_held_ledger: list[str] = []


@step()
def held_part() -> str:
    _held_ledger.append("held")
    _held_started.set()
    _held_gate.wait(10)
    return "held"


@workflow()
def held_job() -> str:
    return held_part() + "+" + held_part()


def test_stopping_never_releases_queue_work_with_a_step_still_running(database_url: str) -> None:
    """A dispatcher that stops releases claimed queue work only once the workflows it started have
    stopped: released while a step still runs, another worker would run that step a second time
    (the race behind a rare duplicate in test_graceful_shutdown_releases_claimed_work)."""
    _held_gate.clear()
    _held_started.clear()
    _held_ledger.clear()
    first = Engine(database_url, executor_id="first")
    first.launch()
    try:
        handle = held_queue.enqueue(held_job)
        assert _held_started.wait(10)
        dispatcher_stop = next(stop for stop in first._services if stop.__qualname__ == "Dispatcher.stop")
        first.stopping = True  # what shutdown sets first; the dispatcher is stopped while the step runs
        stopping = threading.Thread(target=dispatcher_stop)
        stopping.start()
        time.sleep(0.5)
        status = first.get_workflow_status(handle.workflow_id)
        assert (status.status, status.executor_id) == ("PENDING", "first")  # not released under it
        _held_gate.set()
        stopping.join(timeout=15)
        assert not stopping.is_alive()
        # the step finished and was recorded; the workflow stopped at its next step, then was released
        status = first.get_workflow_status(handle.workflow_id)
        assert status.status == "ENQUEUED" and [s.output for s in first.list_steps(handle.workflow_id)] == [
            "held"
        ]
    finally:
        _held_gate.set()
        first.shutdown()
    with Engine(database_url, executor_id="second") as second:
        assert second.retrieve_workflow(handle.workflow_id).get_result(timeout_seconds=30) == "held+held"
    assert _held_ledger == ["held", "held"]  # the first part once, the second once


def test_an_engine_serves_only_its_queues(database_url: str) -> None:
    client = Engine(database_url, executor_id="client-only", queues=[])
    client.launch()
    try:
        handle = plain.enqueue(record_order, "served")
        time.sleep(0.5)
        assert client.get_workflow_status(handle.workflow_id).status == "ENQUEUED"
        with Engine(database_url, executor_id="worker", queues=["plain"]):
            assert handle.get_result(timeout_seconds=10) == "served"
        assert client.get_workflow_status(handle.workflow_id).executor_id == "worker"
    finally:
        client.shutdown()
