"""Public records: `WorkflowStatus` and `StepInfo`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._usage import UsageTotals

__all__ = ["WAIT_KINDS", "StepInfo", "WaitInfo", "WorkflowStatus", "parse_wait", "wait_label"]


WAIT_KINDS = ("recv", "sleep", "event", "workflow", "budget")
"""The core's wait kinds; an adapter may record another kind (any name without a colon)."""


@dataclass(frozen=True, kw_only=True)
class WaitInfo:
    """What a waiting workflow is blocked on.

    Attributes:
        kind: ``"recv"`` (a message), ``"sleep"`` (a timer), ``"event"`` (another workflow's
            event), ``"workflow"`` (another workflow's result), ``"budget"``, or a kind an
            adapter adds.
        topic: for a ``"recv"`` wait, exactly the topic to pass to ``engine.send`` (None: the
            default topic, i.e. ``engine.send(workflow_id, message)``); None for every other kind.
        deadline: when the wait ends by itself, in epoch milliseconds (None: no deadline).
        detail: what a non-recv wait is on, for display: ``"<workflow_id>:<key>"`` for an event,
            the awaited workflow's id for ``"workflow"`` (None when there is nothing to add).

    Answering every message wait is one loop::

        for status in engine.list_workflows(waiting=True):
            if status.waiting.kind == "recv":
                engine.send(status.workflow_id, answer, topic=status.waiting.topic)
    """

    kind: str
    topic: str | None
    deadline: int | None
    detail: str | None = None

    @property
    def answerable(self) -> bool:
        """True when a message (``engine.send(..., topic=self.topic)``) ends this wait."""
        return self.kind == "recv"


def wait_label(kind: str, topic: str | None = None) -> str:
    """The stored form of a wait (the workflow row's ``wait_topic``): ``kind`` or ``kind:topic``.

    `topic` is the recv topic (None: the default topic) or, for other kinds, the detail.
    """
    if not kind or ":" in kind:
        raise ValueError(f"a wait kind is a non-empty name without ':', got {kind!r}")
    return kind if topic is None else f"{kind}:{topic}"


def parse_wait(label: str, deadline: int | None) -> WaitInfo:
    """The `WaitInfo` of a stored wait label (the inverse of `wait_label`)."""
    kind, sep, rest = label.partition(":")
    value = rest if sep else None
    if kind == "recv":
        return WaitInfo(kind=kind, topic=value, deadline=deadline)
    return WaitInfo(kind=kind, topic=None, deadline=deadline, detail=value)


@dataclass(frozen=True, kw_only=True)
class WorkflowStatus:
    """One workflow as recorded. Timestamps are epoch milliseconds.

    `inputs` is ``{"args": [...], "kwargs": {...}}``; `output` and `inputs` are decoded by the
    workflow's annotations when its code is registered in this process, else plain JSON.
    """

    workflow_id: str
    name: str
    status: str
    inputs: Any
    output: Any
    error: BaseException | None
    created_at: int
    updated_at: int
    queue_name: str | None
    executor_id: str | None
    app_version: str
    recovery_attempts: int
    parent_workflow_id: str | None
    forked_from: str | None
    waiting: WaitInfo | None
    priority: int = 0
    deadline_at: int | None = None
    started_at: int | None = None
    deduplication_id: str | None = None
    stranded: str | None = None
    """Why no live executor will run this PENDING or ENQUEUED workflow (its function is not
    registered in any live executor of its app version, none runs that version, ...); None when
    one runs it or will. Read from the executors' heartbeats, so any process (the CLI too) sees the
    same. A stranded workflow resumes once an executor with its code is launched."""
    usage: UsageTotals | None = None
    """What the model calls of this workflow and its descendants consumed (from recorded steps)."""


@dataclass(frozen=True, kw_only=True)
class StepInfo:
    """One recorded step. `output` is decoded JSON (or the pickled value); `error` the rebuilt exception."""

    step_id: int
    name: str
    output: Any
    error: BaseException | None
    child_workflow_id: str | None
    started_at: int | None
    completed_at: int | None
