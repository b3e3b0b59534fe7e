"""Interrupts as durable waits: where a resume goes, and how a run waits for it.

A segment that ends in an `interrupt()` (or a static breakpoint) publishes its outcome as the
workflow event ``langgraph.segment.<n>``; the run then waits durably on topic
``langgraph.resume`` (listed by ``engine.list_workflows(waiting=True)``). A resume is a message on
that topic, sent by ``invoke(Command(resume=...), config)`` or ``engine.send`` directly; the
segment events decide which run of a thread it goes to, so a run that has not entered its wait
yet (or awaits recovery after a crash) still gets it: messages are queued.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.types import Command

from durable_core import TERMINAL_STATES, Engine, recv, recv_async

from ._codec import decode_value, is_envelope

__all__ = [
    "PAUSED",
    "RESUME_TOPIC",
    "command_from",
    "resume_target",
    "segment_event",
    "until_waiting",
    "wait_for_resume",
    "wait_for_resume_async",
]

RESUME_TOPIC = "langgraph.resume"
PAUSED = ("interrupted", "paused")  # segment statuses after which a run waits for a resume
_WAITING_GRACE_SECONDS = 10.0


def segment_event(n: int) -> str:
    """The event key a run sets when its n-th segment (0-based) ends."""
    return f"langgraph.segment.{n}"


def resume_target(engine: Engine, runs: Iterable[str]) -> tuple[str, int] | None:
    """Of the unfinished `runs` of a thread, the one whose last segment paused, and the next
    segment's index (decided from the runs' durable segment events)."""
    for workflow_id in runs:
        last: Any = None
        for n in itertools.count():
            event = engine.get_event(workflow_id, segment_event(n), timeout_seconds=0)
            if event is None:
                if isinstance(last, dict) and last.get("status") in PAUSED:
                    return workflow_id, n
                break
            last = event
    return None


def wait_for_resume() -> Any:
    """In the run's body: wait durably for the resume message."""
    message = None
    while message is None:
        message = recv(RESUME_TOPIC, timeout_seconds=None)
    return message


async def wait_for_resume_async() -> Any:
    message = None
    while message is None:
        message = await recv_async(RESUME_TOPIC, timeout_seconds=None)
    return message


def command_from(serde: SerializerProtocol, message: Any, outcome: dict[str, Any]) -> Any:
    """What the next segment feeds the graph: a recorded `Command`, nothing, or the resume value."""
    if is_envelope(message):
        return decode_value(serde, message)
    if outcome["status"] == "paused":
        return None  # a static breakpoint resumes with no input
    return Command(resume=message)


def until_waiting(engine: Engine, workflow_id: str) -> None:
    """Return once a paused run is blocked in its durable wait (so `list_workflows(waiting=True)`
    shows it as soon as `invoke` returns), or has ended."""
    deadline = time.monotonic() + _WAITING_GRACE_SECONDS
    delay = 0.002
    while time.monotonic() < deadline:
        status = engine.get_workflow_status(workflow_id)
        if status.waiting is not None or status.status in TERMINAL_STATES:
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
