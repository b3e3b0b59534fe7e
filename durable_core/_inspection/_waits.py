"""Waiting workflows (the inbox): what each waits for, and the command that answers it."""

from __future__ import annotations

import shlex

from .. import Engine, WaitInfo, WorkflowStatus

__all__ = ["answer_command", "describe_wait", "in_inbox", "reply_topic", "waiting_workflows"]


def describe_wait(wait: WaitInfo | None) -> str:
    """What a waiting workflow is blocked on, in words."""
    if wait is None:
        return ""
    if wait.kind == "recv":
        return "a message (default topic)" if wait.topic is None else f"a message on topic {wait.topic!r}"
    if wait.kind == "sleep":
        return "a timer (sleep)"
    if wait.kind == "event" and wait.detail is not None:
        source, _, key = wait.detail.rpartition(":")
        return f"event {key!r} of workflow {source!r}"
    if wait.kind == "workflow" and wait.detail is not None:
        return f"the result of workflow {wait.detail!r}"
    if wait.kind == "budget":
        reached = f" (reached {wait.detail})" if wait.detail else ""
        return f"a budget raise{reached}"
    return wait.kind if wait.detail is None else f"{wait.kind} ({wait.detail})"


def reply_topic(wait: WaitInfo | None) -> tuple[bool, str | None]:
    """Whether a message answers this wait, and the topic to send it on (None: default topic)."""
    if wait is None or not wait.answerable:
        return False, None
    return True, wait.topic


def answer_command(
    workflow_id: str, wait: WaitInfo | None, message: str = "<json>", database_option: str = ""
) -> str | None:
    """A complete, copy-pastable `durable send` command that answers this wait (None: no message
    answers it), with `database_option` (see `database_option()`) appended."""
    answerable, topic = reply_topic(wait)
    if not answerable:
        return None
    command = f"durable send {shlex.quote(workflow_id)} {shlex.quote(message)}"
    return (command if topic is None else f"{command} --topic {shlex.quote(topic)}") + database_option


def in_inbox(status: WorkflowStatus) -> bool:
    """A wait a person ends: a message (recv) or a budget raise."""
    wait = status.waiting
    return wait is not None and (wait.answerable or wait.kind == "budget")


def waiting_workflows(
    engine: Engine, *, limit: int | None = None, everything: bool = False
) -> list[WorkflowStatus]:
    """The workflows waiting now, oldest first: those a person ends (`in_inbox`), or with
    `everything` timers and other waits too. `limit` bounds the rows read (None: all)."""
    rows = engine.list_workflows(status="PENDING", waiting=True, limit=limit)
    return rows if everything else [row for row in rows if in_inbox(row)]
