"""Plain JSON views of workflow records, shared by the CLI and the dashboard.

`WorkflowStatus` and `StepInfo` hold decoded values and rebuilt exceptions; these helpers turn
them into JSON-native dicts (complete, for ``--json`` and the dashboard) and into short
one-line previews (for tables).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import shlex
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import pydantic_core

from .._records import StepInfo, WaitInfo, WorkflowStatus
from .._usage import Budget, ModelUsage, UsageTotals
from ..errors import RecordedError

__all__ = [
    "answer_command",
    "budget_limit",
    "budget_text",
    "cost_text",
    "count_text",
    "describe_wait",
    "duration_text",
    "error_dict",
    "error_line",
    "format_ms",
    "iso_ms",
    "jsonable",
    "number_text",
    "plain_field",
    "plain_time",
    "pretty_json",
    "preview",
    "raise_command",
    "raise_outcome",
    "readable",
    "reply_topic",
    "spent_text",
    "step_dict",
    "tokens_text",
    "total_usage",
    "usage_dict",
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
    if wait.kind == "budget":
        reached = f" (reached {wait.detail})" if wait.detail else ""
        return f"a budget raise{reached}"
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


# -- usage and budgets ---------------------------------------------------------------------
#
# "-": nothing recorded (no model call); "unknown": model calls whose framework reported no
# tokens (or no cost); "N+unknown": N reported, some calls not. Never a 0 for what nobody reported.

_BUDGET_FLAGS = {
    "max_cost_usd": ("--cost", "<usd>"),
    "max_tokens": ("--tokens", "<tokens>"),
    "max_model_calls": ("--calls", "<calls>"),
}
_LIMIT = re.compile(r"\b(max_cost_usd|max_tokens|max_model_calls)=")


def _recorded(usage: ModelUsage | None) -> bool:
    return usage is not None and usage.model_calls > 0


def number_text(value: float) -> str:
    """A cost in USD without a currency sign: up to 6 decimals, trailing zeros dropped."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def count_text(value: int, usage: ModelUsage) -> str:
    """A token count of model calls: 'unknown' when none reported it, 'N+unknown' when some did not."""
    if usage.unknown_tokens and not value:
        return "unknown"
    return f"{value}+unknown" if usage.unknown_tokens else str(value)


def tokens_text(usage: ModelUsage | None) -> str:
    """Input + output tokens as reported: '-' (no model call), 'unknown', 'N' or 'N+unknown'."""
    if usage is None or not _recorded(usage):
        return "-"
    return count_text(usage.tokens, usage)


def cost_text(usage: ModelUsage | None, *, sign: str = "") -> str:
    """The cost in USD: '-' (no model call), 'unknown' (not priced), '0.0123', or '0.0123+unknown'."""
    if usage is None or not _recorded(usage):
        return "-"
    if usage.unpriced and not usage.cost_usd:
        return "unknown"
    text = sign + number_text(usage.cost_usd)
    return f"{text}+unknown" if usage.unpriced else text


def spent_text(usage: ModelUsage | None) -> str:
    """'3 model calls, 450 tokens, $0.03' ('nothing recorded' without a model call)."""
    if usage is None or not _recorded(usage):
        return "no model call recorded"
    calls = f"{usage.model_calls} model call{'s' if usage.model_calls != 1 else ''}"
    cost = cost_text(usage, sign="$")
    return f"{calls}, {tokens_text(usage)} tokens, " + ("cost unknown" if cost == "unknown" else cost)


def _usage_fields(usage: ModelUsage) -> dict[str, Any]:
    # None where nothing was reported at all; the counts of what was, with unknown_tokens and
    # unpriced saying how many model calls are missing from them
    unknown_tokens = bool(usage.unknown_tokens) and not usage.tokens
    unpriced = bool(usage.unpriced) and not usage.cost_usd

    def reported(value: int) -> int | None:
        return None if unknown_tokens and not value else value

    return {
        "model_calls": usage.model_calls,
        "requests": usage.requests or None,
        "input_tokens": reported(usage.input_tokens),
        "output_tokens": reported(usage.output_tokens),
        "cache_read_tokens": reported(usage.cache_read_tokens),
        "cache_write_tokens": reported(usage.cache_write_tokens),
        "tokens": None if unknown_tokens else usage.tokens,  # input + output; None: none reported
        "cost_usd": None if unpriced else round(usage.cost_usd, 9),  # None: nothing priced
        "unknown_tokens": usage.unknown_tokens,  # model calls that reported no tokens
        "unpriced": usage.unpriced,  # model calls without a cost
        "complete": not usage.unknown_tokens and not usage.unpriced,
    }


def usage_dict(usage: ModelUsage | None) -> dict[str, Any] | None:
    """A usage total as JSON (None when no model call was recorded: nothing to report)."""
    if usage is None or not _recorded(usage):
        return None
    record = _usage_fields(usage)
    if isinstance(usage, UsageTotals):
        record["by_model"] = {model: _usage_fields(m) for model, m in usage.by_model.items()}
    return record


def total_usage(totals: Iterable[ModelUsage]) -> ModelUsage:
    """The sum of usage totals that count disjoint model calls (groups by workflow, name or day)."""
    items = list(totals)
    names = [f.name for f in dataclasses.fields(ModelUsage)]
    return ModelUsage(**{name: sum(getattr(t, name) for t in items) for name in names})


def budget_limit(wait: WaitInfo | None) -> str | None:
    """The Budget field a budget wait reached (``max_cost_usd``, ...), from the wait's detail."""
    if wait is None or wait.kind != "budget" or not wait.detail:
        return None
    match = _LIMIT.search(wait.detail)
    return match.group(1) if match else None


def raise_command(workflow_id: str, wait: WaitInfo | None) -> str | None:
    """For a budget wait: the `durable budget raise` command that lifts the limit it reached
    (the new limit goes in place of ``<usd>``, ``<tokens>`` or ``<calls>``)."""
    if wait is None or wait.kind != "budget":
        return None
    flag, placeholder = _BUDGET_FLAGS.get(budget_limit(wait) or "max_cost_usd", _BUDGET_FLAGS["max_cost_usd"])
    return f"durable budget raise {shlex.quote(workflow_id)} {flag} {shlex.quote(placeholder)}"


def budget_text(budget: Budget) -> str:
    """'max_cost_usd=5, max_model_calls=10' (the limits set)."""
    limits = (
        ("max_cost_usd", None if budget.max_cost_usd is None else number_text(budget.max_cost_usd)),
        ("max_tokens", budget.max_tokens),
        ("max_model_calls", budget.max_model_calls),
    )
    return ", ".join(f"{name}={value}" for name, value in limits if value is not None) or "no limit"


def raise_outcome(budget: Budget, status: WorkflowStatus) -> tuple[str, bool]:
    """What raising to `budget` means for the run `status` (read after the raise): (text, still reached).

    Its own tree is part of the budget's tree, so when its usage reaches a new limit, the budget's does.
    """
    still = budget.exceeded(status.usage) if status.usage is not None else None
    if still is not None:
        return f"still reached: {still}; it makes no further model call until a higher limit", True
    if status.waiting is None or status.waiting.kind != "budget":
        return "", False
    if status.stranded:
        return (
            f"it is paused by its budget and continues once an executor runs it again: {status.stranded}",
            False,
        )
    if status.parent_workflow_id is not None:  # the budget may be an ancestor's, over its whole tree
        return (
            "it was paused by its budget: it continues where it stopped once that budget's whole tree is "
            "under the new limits",
            False,
        )
    return "it was paused by its budget: it continues now, where it stopped", False


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
        if status.waiting.kind == "budget":  # not answered by a message: its budget is raised
            waiting["budget_limit"] = budget_limit(status.waiting)
            waiting["raise_with"] = raise_command(status.workflow_id, status.waiting)
    usage = usage_dict(status.usage)
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
        # the workflow's and its descendants' model calls (None: no model call recorded)
        "tokens": None if usage is None else usage["tokens"],
        "cost_usd": None if usage is None else usage["cost_usd"],
        "usage": usage,
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
