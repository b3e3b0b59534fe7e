"""Recorded values for people: JSON-native forms, one-line previews, times and durations.

`WorkflowStatus` and `StepInfo` hold decoded values and rebuilt exceptions; these helpers turn
them into JSON-native values (complete, for ``--json`` and the dashboard) and into short
one-line previews (for tables).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pydantic_core

from .. import RecordedError

__all__ = [
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
    """'ValueError: message' ('' for None)."""
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
    """Epoch milliseconds as UTC ISO text (None for None)."""
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat(timespec="milliseconds")


def duration_text(started_at: int | None, completed_at: int | None) -> str:
    """'850 ms', '2.5 s', '3m07s', '1h02m' ('' when either end is unknown)."""
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
    """Indented JSON of any decoded value."""
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False)
