"""Durable waits: sleep, send/recv, events, streams, waiting introspection, cancel and timeouts."""

from __future__ import annotations

import time
from typing import Any

import pytest

from durable_core import (
    AwaitedWorkflowCancelled,
    Engine,
    SerializationError,
    StepOutsideWorkflow,
    WorkflowNotFoundError,
    close_stream,
    get_event,
    recv,
    recv_async,
    send,
    set_event,
    sleep,
    step,
    workflow,
    workflow_options,
    write_stream,
)

ran: list[str] = []


@workflow()
def inbox(n: int, topic: str | None, timeout: float) -> list[Any]:
    return [recv(topic, timeout_seconds=timeout) for _ in range(n)]


def _wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def test_recv_is_fifo_per_topic_and_none_at_timeout(engine: Engine) -> None:
    with workflow_options(workflow_id="box"):
        handle = engine.start_workflow(inbox, 3, "t", 1.0)
    engine.send("box", {"n": 1}, topic="t")
    engine.send("box", "other topic", topic="u")
    engine.send("box", [2], topic="t")
    assert handle.get_result(timeout_seconds=10) == [{"n": 1}, [2], None]
    names = [s.name for s in engine.list_steps("box")]
    assert names == ["durable.recv"] * 3


def test_waiting_workflow_is_listed_with_topic_and_deadline(engine: Engine) -> None:
    with workflow_options(workflow_id="waiter"):
        handle = engine.start_workflow(inbox, 1, "approval", 30.0)
    _wait_until(lambda: [w.workflow_id for w in engine.list_workflows(waiting=True)] == ["waiter"])
    status = engine.get_workflow_status("waiter")
    assert status.waiting is not None and (status.waiting.kind, status.waiting.topic) == ("recv", "approval")
    assert status.waiting.deadline is not None and status.waiting.deadline > time.time() * 1000 + 20_000
    engine.send("waiter", "yes", topic="approval")
    assert handle.get_result(timeout_seconds=10) == ["yes"]
    assert engine.list_workflows(waiting=True) == []
    assert engine.get_workflow_status("waiter").waiting is None


def test_send_is_idempotent_with_key_and_checks_destination(engine: Engine) -> None:
    with workflow_options(workflow_id="dedup"):
        handle = engine.start_workflow(inbox, 2, None, 0.5)
    engine.send("dedup", "once", idempotency_key="k1")
    engine.send("dedup", "once", idempotency_key="k1")
    assert handle.get_result(timeout_seconds=10) == ["once", None]
    with pytest.raises(WorkflowNotFoundError):
        engine.send("missing-workflow", "hello")


def test_unserializable_message_is_refused(engine: Engine) -> None:
    with workflow_options(workflow_id="ser"):
        handle = engine.start_workflow(inbox, 1, None, 0.3)
    with pytest.raises(SerializationError, match="nothing was sent"):
        engine.send("ser", object())
    assert handle.get_result(timeout_seconds=10) == [None]


def test_recv_outside_workflow_and_bad_timeouts() -> None:
    with pytest.raises(StepOutsideWorkflow, match="inside a durable workflow"):
        recv()
    with pytest.raises(ValueError, match="timeout_seconds"):
        recv(timeout_seconds=-1)
    with pytest.raises(ValueError, match="ten years"):
        sleep(10**12)


@workflow()
def sleeper(seconds: float) -> float:
    start = time.monotonic()
    sleep(seconds)
    return time.monotonic() - start


def test_sleep_waits_and_replay_returns_at_once(engine: Engine) -> None:
    with workflow_options(workflow_id="nap"):
        assert sleeper(0.3) >= 0.28
    steps = engine.list_steps("nap")
    assert [s.name for s in steps] == ["durable.sleep"]
    forked = engine.fork_workflow("nap", 2)  # step 1 copied: the sleep is over
    assert forked.get_result(timeout_seconds=10) < 0.1


@workflow()
def publisher(values: list[int]) -> None:
    set_event("progress", 0)
    for v in values:
        write_stream("out", v)
    set_event("progress", len(values))
    close_stream("out")


@workflow()
def subscriber(target: str) -> Any:
    return get_event(target, "progress", timeout_seconds=10)


def test_events_and_streams(engine: Engine) -> None:
    with workflow_options(workflow_id="pub"):
        engine.start_workflow(publisher, [1, 2, 3]).get_result(timeout_seconds=10)
    assert list(engine.read_stream("pub", "out")) == [1, 2, 3]
    assert engine.get_event("pub", "progress", timeout_seconds=1) == 3
    assert engine.get_event("pub", "missing", timeout_seconds=0.1) is None
    assert subscriber("pub") == 3
    # a fork from step 2 sees the events as of step 2 (progress == 0). Forked for another app
    # version, it is queued for an executor of that version and does not run here.
    engine.fork_workflow("pub", 2, new_workflow_id="pub-fork", app_version="v-next")
    assert engine.get_event("pub-fork", "progress", timeout_seconds=0) == 0
    assert engine.get_workflow_status("pub-fork").status == "ENQUEUED"
    assert [s.name for s in engine.list_steps("pub-fork")] == ["durable.set_event"]


@workflow()
def event_then_wait() -> Any:
    set_event("ready", True)
    return recv(timeout_seconds=30)


def test_get_event_wakes_promptly(engine: Engine) -> None:
    handle = engine.start_workflow(event_then_wait)
    started = time.monotonic()
    assert engine.get_event(handle.workflow_id, "ready", timeout_seconds=10) is True
    assert time.monotonic() - started < 5
    engine.send(handle.workflow_id, "go")
    assert handle.get_result(timeout_seconds=10) == "go"


@step()
def side_effect(tag: str) -> str:
    ran.append(tag)
    return tag


@workflow()
def child_waits() -> Any:
    return recv(timeout_seconds=60)


@workflow()
def cancellable() -> tuple[Any, str]:  # a tuple replays as a tuple only when annotated
    side_effect("before")
    handle = Engine.current().start_workflow(child_waits)
    message = recv(timeout_seconds=60)
    side_effect("after")
    return message, handle.workflow_id


def test_cancel_stops_waiting_workflow_and_children(engine: Engine) -> None:
    ran.clear()
    with workflow_options(workflow_id="c1"):
        handle = engine.start_workflow(cancellable)
    _wait_until(lambda: len(engine.list_workflows(waiting=True)) == 2)
    engine.cancel_workflow("c1")
    with pytest.raises(AwaitedWorkflowCancelled):
        handle.get_result(timeout_seconds=10)
    assert engine.get_workflow_status("c1").status == "CANCELLED"
    assert engine.get_workflow_status("c1-2").status == "CANCELLED"
    assert ran == ["before"]
    # resume from the last completed step: "before" is not re-run
    engine.send("c1", "resumed")
    resumed = engine.resume_workflow("c1")
    message, child_id = resumed.get_result(timeout_seconds=10)
    assert (message, child_id) == ("resumed", "c1-2")
    assert engine.get_workflow_status("c1").status == "SUCCESS"
    assert ran == ["before", "after"]


def test_workflow_timeout_cancels_it_and_children_inherit_deadline(engine: Engine) -> None:
    with workflow_options(workflow_id="slow", timeout_seconds=0.5):
        handle = engine.start_workflow(cancellable)
    started = time.monotonic()
    with pytest.raises(AwaitedWorkflowCancelled):
        handle.get_result(timeout_seconds=10)
    assert time.monotonic() - started < 5
    child = engine.get_workflow_status("slow-2")
    parent = engine.get_workflow_status("slow")
    assert child.deadline_at == parent.deadline_at
    _wait_until(lambda: engine.get_workflow_status("slow-2").status == "CANCELLED")


async def test_async_recv(engine: Engine) -> None:
    @workflow(name="async_inbox")
    async def async_inbox() -> Any:
        return await recv_async("x", timeout_seconds=10)

    handle = await engine.start_workflow_async(async_inbox)
    await engine.send_async(handle.workflow_id, 42, topic="x")
    assert await handle.get_result_async(timeout_seconds=10) == 42


@workflow()
def sender(target: str) -> None:
    send(target, "from a workflow")


def test_send_from_workflow_is_a_step(engine: Engine) -> None:
    with workflow_options(workflow_id="rcv"):
        receiver = engine.start_workflow(inbox, 1, None, 10.0)
    with workflow_options(workflow_id="snd"):
        sender("rcv")
    assert receiver.get_result(timeout_seconds=10) == ["from a workflow"]
    assert [s.name for s in engine.list_steps("snd")] == ["durable.send"]


@workflow(name="awaiting_parent")
def awaiting_parent() -> list[Any]:
    child = Engine.current().start_workflow(inbox, 1, "approval", 30.0)
    return child.get_result()


@workflow(name="awaiting_parent_async")
async def awaiting_parent_async() -> list[Any]:
    child = await Engine.current().start_workflow_async(inbox, 1, "approval", 30.0)
    return await child.get_result_async()


@pytest.mark.parametrize("parent", [awaiting_parent, awaiting_parent_async], ids=["sync", "async"])
def test_a_workflow_waiting_for_another_is_listed_with_kind_workflow(engine: Engine, parent: Any) -> None:
    with workflow_options(workflow_id="awaiting"):
        handle = engine.start_workflow(parent)
    _wait_until(lambda: len(engine.list_workflows(waiting=True)) == 2)
    waits = {s.workflow_id: s.waiting for s in engine.list_workflows(waiting=True)}
    assert waits["awaiting"] is not None and waits["awaiting"].kind == "workflow"
    assert waits["awaiting"].topic is None and waits["awaiting"].detail == "awaiting-1"
    assert waits["awaiting-1"] is not None and waits["awaiting-1"].kind == "recv"
    engine.send("awaiting-1", "yes", topic="approval")
    assert handle.get_result(timeout_seconds=30) == ["yes"]
    assert engine.list_workflows(waiting=True) == []
    # a result that is already there is no wait: nothing is marked
    with workflow_options(workflow_id="awaiting"):
        assert engine.start_workflow(parent).get_result(timeout_seconds=30) == ["yes"]
