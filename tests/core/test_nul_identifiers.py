"""A NUL character ("\\x00") in an identifier (workflow id, topic, event or stream key, queue name,
deduplication id, idempotency key) is refused with a `ValueError` naming the argument before
any SQL runs, the same on SQLite and PostgreSQL (which cannot store NUL in text and used to
answer with a raw driver error that printed the SQL).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from durable_core import (
    Engine,
    Queue,
    close_stream,
    get_event,
    recv,
    send,
    set_event,
    step,
    workflow,
    workflow_options,
    write_stream,
)

NUL = "a\x00b"


@workflow()
def plain(x: int) -> int:
    return x


@step()
def noop() -> None:
    return None


def _existing(engine: Engine) -> str:
    workflow_id = f"nul-{uuid.uuid4().hex[:8]}"
    with workflow_options(workflow_id=workflow_id):
        plain(1)
    return workflow_id


def _start_with_id() -> None:
    with workflow_options(workflow_id=NUL):
        plain(1)


def _enqueue_with_dedup() -> None:
    queue = Queue("nul-queue")
    with workflow_options(deduplication_id=NUL):
        queue.enqueue(plain, 1)


CLIENT_CALLS: list[tuple[str, str, Callable[[Engine, str], Any]]] = [
    ("start", "workflow_id", lambda e, w: _start_with_id()),
    ("dedup", "deduplication_id", lambda e, w: _enqueue_with_dedup()),
    ("send-destination", "destination_id", lambda e, w: e.send(NUL, "hi")),
    ("send-topic", "topic", lambda e, w: e.send(w, "hi", topic=NUL)),
    ("send-idempotency", "idempotency_key", lambda e, w: e.send(w, "hi", idempotency_key=NUL)),
    ("send-async", "topic", lambda e, w: asyncio.run(e.send_async(w, "hi", topic=NUL))),
    ("get_event-id", "workflow_id", lambda e, w: e.get_event(NUL, "k", timeout_seconds=0.1)),
    ("get_event-key", "key", lambda e, w: e.get_event(w, NUL, timeout_seconds=0.1)),
    ("get_event-async", "key", lambda e, w: asyncio.run(e.get_event_async(w, NUL, timeout_seconds=0.1))),
    ("read_stream-id", "workflow_id", lambda e, w: list(e.read_stream(NUL, "k"))),
    ("read_stream-key", "key", lambda e, w: list(e.read_stream(w, NUL))),
    ("retrieve", "workflow_id", lambda e, w: e.retrieve_workflow(NUL)),
    ("status", "workflow_id", lambda e, w: e.get_workflow_status(NUL)),
    ("list_steps", "workflow_id", lambda e, w: e.list_steps(NUL)),
    ("cancel", "workflow_id", lambda e, w: e.cancel_workflow(NUL)),
    ("resume", "workflow_id", lambda e, w: e.resume_workflow(NUL)),
    ("fork", "workflow_id", lambda e, w: e.fork_workflow(NUL, 1)),
    ("fork-new-id", "new_workflow_id", lambda e, w: e.fork_workflow(w, 1, new_workflow_id=NUL)),
    ("list-ids", "workflow_ids", lambda e, w: e.list_workflows(workflow_ids=["ok", NUL])),
    ("list-name", "name", lambda e, w: e.list_workflows(name=NUL)),
    ("list-queue", "queue_name", lambda e, w: e.list_workflows(queue_name=NUL)),
    ("queue", "queue_name", lambda e, w: Queue(NUL)),
    ("enqueue-by-name", "queue_name", lambda e, w: e.enqueue(NUL, "plain", 1)),
    ("outside-get_event", "key", lambda e, w: get_event(w, NUL, timeout_seconds=0.1)),
    ("outside-send", "destination_id", lambda e, w: send(NUL, "hi")),
]


@pytest.mark.parametrize(("case", "argument", "call"), CLIENT_CALLS, ids=[c[0] for c in CLIENT_CALLS])
def test_client_calls_refuse_nul_with_a_value_error(
    engine: Engine, case: str, argument: str, call: Callable[[Engine, str], Any]
) -> None:
    workflow_id = _existing(engine)
    with pytest.raises(ValueError, match=rf"^{argument} must not contain a NUL character") as info:
        call(engine, workflow_id)
    assert "SELECT" not in str(info.value) and "INSERT" not in str(info.value)
    assert engine.list_workflows(workflow_ids=[workflow_id])[0].status == "SUCCESS"


@workflow()
def nul_inside(which: str, target: str) -> str:
    noop()
    operations: dict[str, Callable[[], Any]] = {
        "recv": lambda: recv(NUL, timeout_seconds=0.1),
        "send": lambda: send(target, "hi", topic=NUL),
        "set_event": lambda: set_event(NUL, 1),
        "get_event": lambda: get_event(target, NUL, timeout_seconds=0.1),
        "write_stream": lambda: write_stream(NUL, 1),
        "close_stream": lambda: close_stream(NUL),
    }
    try:
        operations[which]()
    except ValueError as exc:
        return str(exc)
    return "accepted"


@pytest.mark.parametrize(
    ("which", "argument"),
    [
        ("recv", "topic"),
        ("send", "topic"),
        ("set_event", "key"),
        ("get_event", "key"),
        ("write_stream", "key"),
        ("close_stream", "key"),
    ],
)
def test_workflow_operations_refuse_nul_before_recording_anything(
    engine: Engine, which: str, argument: str
) -> None:
    target = _existing(engine)
    workflow_id = f"inside-{which}-{uuid.uuid4().hex[:6]}"
    with workflow_options(workflow_id=workflow_id):
        message = nul_inside(which, target)
    assert message.startswith(f"{argument} must not contain a NUL character"), message
    assert [s.name for s in engine.list_steps(workflow_id)] == ["noop"]  # the refused call took no step
