"""Plain JSON views of workflow records, shared by the CLI and the dashboard.

`WorkflowStatus` and `StepInfo` hold decoded values and rebuilt exceptions; these helpers turn
them into JSON-native dicts (complete, for ``--json`` and the dashboard) and into short
one-line previews (for tables).
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pydantic_core

from .._records import StepInfo, WaitInfo, WorkflowStatus
from ..errors import RecordedError

__all__ = [
    "answer_command",
    "describe_wait",
    "duration_text",
    "error_dict",
    "error_line",
    "format_ms",
    "iso_ms",
    "jsonable",
    "plain_field",
    "plain_time",
    "pretty_json",
    "preview",
    "readable",
    "reply_topic",
    "step_dict",
    "workflow_dict",
]

_NOTE_PREFIX = "Recorded traceback:\n"


_TAG = re.compile(r"^__durable_([a-z][a-z0-9_]*)__$")
_HOOKS: dict[str, Callable[[dict[str, Any]], Any] | None] = {}


def _display_hook(package: str) -> Callable[[dict[str, Any]], Any] | None:
    """``durable_<package>.display_value``, when that adapter is installed (cached)."""
    if package not in _HOOKS:
        try:
            module = importlib.import_module(f"durable_{package}")
        except ImportError:
            module = None
        _HOOKS[package] = getattr(module, "display_value", None)
    return _HOOKS[package]


def readable(value: Any) -> Any:
    """`value` with adapters' tagged envelopes decoded for people.

    An adapter that stores opaque bytes (LangGraph's serializer output, say) tags them
    ``{"__durable_<adapter>__": ..., ...}``; the tools show what ``durable_<adapter>.display_value``
    makes of it, and the envelope as stored when the adapter is absent or cannot decode it.
    """
    if isinstance(value, list):
        return [readable(item) for item in cast(list[Any], value)]
    if not isinstance(value, dict):
        return value
    mapping = cast(dict[Any, Any], value)
    for key in mapping:
        match = _TAG.match(key) if isinstance(key, str) else None
        hook = _display_hook(match.group(1)) if match else None
        if hook is not None:
            try:
                return hook(mapping)
            except Exception:
                return mapping
    return {key: readable(item) for key, item in mapping.items()}


def jsonable(value: Any) -> Any:
    """A JSON-native form of any decoded value (pydantic models, dataclasses, datetimes, bytes...)."""
    try:
        return pydantic_core.to_jsonable_python(readable(value), bytes_mode="base64", fallback=repr)
    except Exception:  # pragma: no cover - fallback=repr handles nearly everything
        return repr(value)


def error_dict(error: BaseException | None) -> dict[str, Any] | None:
    """Type, message and recorded traceback of a recorded exception."""
    if error is None:
        return None
    if isinstance(error, RecordedError):
        return {"type": error.type_name, "message": error.original_message, "traceback": error.traceback_text}
    cls = type(error)
    type_name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    traceback_text = ""
    for note in getattr(error, "__notes__", None) or []:
        if isinstance(note, str) and note.startswith(_NOTE_PREFIX):
            traceback_text = note[len(_NOTE_PREFIX) :]
    return {"type": type_name, "message": str(error), "traceback": traceback_text}


def error_line(error: BaseException | None) -> str:
    info = error_dict(error)
    if info is None:
        return ""
    short_type = str(info["type"]).rsplit(".", 1)[-1]
    return f"{short_type}: {info['message']}" if info["message"] else short_type


def format_ms(value: int | None) -> str:
    """Epoch milliseconds as a local ISO time to the second ('' for None)."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def plain_time(value: int | None) -> str:
    """Epoch milliseconds as a local ISO time without spaces ('' for None), for plain output."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1000, tz=UTC).astimezone().strftime("%Y-%m-%dT%H:%M:%S")


def plain_field(value: Any) -> str:
    """One field of a tab-separated line: never cut; tabs and line breaks become spaces."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def iso_ms(value: int | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat(timespec="milliseconds")


def duration_text(started_at: int | None, completed_at: int | None) -> str:
    if started_at is None or completed_at is None:
        return ""
    ms = max(0, completed_at - started_at)
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def preview(value: Any, width: int = 60) -> str:
    """One line of compact JSON, cut at `width` characters with the size of the rest."""
    text = value if isinstance(value, str) else json.dumps(jsonable(value), ensure_ascii=False)
    text = " ".join(text.split())
    if len(text) <= width + 12:  # cutting a few characters saves nothing
        return text
    rest = len(text) - width
    return f"{text[:width]}… (+{rest} chars)"


def pretty_json(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False)


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
    return wait.kind if wait.detail is None else f"{wait.kind} ({wait.detail})"


def reply_topic(wait: WaitInfo | None) -> tuple[bool, str | None]:
    """Whether a message answers this wait, and the topic to send it on (None: default topic)."""
    if wait is None or not wait.answerable:
        return False, None
    return True, wait.topic


def answer_command(workflow_id: str, wait: WaitInfo | None, message: str = "<json>") -> str | None:
    """A complete `durable send` command that answers this wait ('' message placeholder quoted)."""
    answerable, topic = reply_topic(wait)
    if not answerable:
        return None
    command = f"durable send {shlex.quote(workflow_id)} {shlex.quote(message)}"
    return command if topic is None else f"{command} --topic {shlex.quote(topic)}"


def workflow_dict(status: WorkflowStatus) -> dict[str, Any]:
    """Every field of a workflow record, JSON-native; times as epoch ms plus ISO text."""
    waiting = None
    if status.waiting is not None:
        waiting = {
            "kind": status.waiting.kind,
            "topic": status.waiting.topic,
            "detail": status.waiting.detail,
            "deadline": status.waiting.deadline,
            "deadline_iso": iso_ms(status.waiting.deadline),
            "description": describe_wait(status.waiting),
            "answer_with": answer_command(status.workflow_id, status.waiting),
        }
    return {
        "workflow_id": status.workflow_id,
        "name": status.name,
        "status": status.status,
        "inputs": jsonable(status.inputs),
        "output": jsonable(status.output),
        "error": error_dict(status.error),
        "created_at": status.created_at,
        "created_at_iso": iso_ms(status.created_at),
        "updated_at": status.updated_at,
        "updated_at_iso": iso_ms(status.updated_at),
        "started_at": status.started_at,
        "queue_name": status.queue_name,
        "executor_id": status.executor_id,
        "app_version": status.app_version,
        "recovery_attempts": status.recovery_attempts,
        "parent_workflow_id": status.parent_workflow_id,
        "forked_from": status.forked_from,
        "stranded": status.stranded,
        "waiting": waiting,
        "priority": status.priority,
        "deadline_at": status.deadline_at,
        "deduplication_id": status.deduplication_id,
    }


def step_dict(step: StepInfo) -> dict[str, Any]:
    return {
        "step_id": step.step_id,
        "name": step.name,
        "status": "ERROR" if step.error is not None else "OK",
        "output": jsonable(step.output),
        "error": error_dict(step.error),
        "child_workflow_id": step.child_workflow_id,
        "started_at": step.started_at,
        "completed_at": step.completed_at,
        "duration_ms": None
        if step.started_at is None or step.completed_at is None
        else step.completed_at - step.started_at,
    }
