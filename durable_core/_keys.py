"""Wake-up and notify keys, built in one place.

A key names what a waiter waits for; the same string is used for in-process wake-ups
(`Waiters.notify`) and for Postgres NOTIFY payloads, so both sides must build it the same way.
"""

from __future__ import annotations

__all__ = [
    "budget_key",
    "done_key",
    "event_key",
    "message_key",
    "queue_key",
    "stream_key",
    "wake_key",
    "workflow_key",
]

QUEUE_PREFIX = "queue:"


def done_key(workflow_id: str) -> str:
    """The workflow finished (or was cancelled or parked): its result waiters re-read it."""
    return f"done:{workflow_id}"


def wake_key(workflow_id: str) -> str:
    """Wake the workflow's own wait (recv, sleep, ...) so it re-checks whether it still runs."""
    return f"wake:{workflow_id}"


def message_key(workflow_id: str, topic: str) -> str:
    """A message arrived for `workflow_id` on `topic` (the stored topic name)."""
    return f"msg:{workflow_id}:{topic}"


def event_key(workflow_id: str, key: str) -> str:
    return f"event:{workflow_id}:{key}"


def stream_key(workflow_id: str, key: str) -> str:
    return f"stream:{workflow_id}:{key}"


def budget_key(budget_owner: str) -> str:
    """The budget of `budget_owner`'s tree was raised: paused model calls re-check it."""
    return f"budget:{budget_owner}"


def queue_key(queue_name: str) -> str:
    return f"{QUEUE_PREFIX}{queue_name}"


def workflow_key(kind: str, workflow_id: str) -> str:
    """`kind:workflow_id` for a per-workflow kind (``"done"``, ``"budget"``, ...)."""
    return f"{kind}:{workflow_id}"
