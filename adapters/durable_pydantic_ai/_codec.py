"""Values handed back to pydantic-ai are the objects a plain run produces, live and replayed.

pydantic-ai's JSON form of a model response or a tool result is typed by its schema, except where
the schema says `Any`: a `provider_details` value, a tool's return value (`ToolReturnPart.content`).
There JSON keeps only the JSON shape, so a `datetime` would come back as a string and a pydantic
model as a dict. So:

- A step that ran in this process hands pydantic-ai the very object the operation produced; the
  JSON it records is never read back on that run.
- Recording checks that the JSON reads back equal to the live value. Where it does not, the exact
  values are recorded beside it (`"$fidelity"`: path and tagged value) and put back on replay:
  datetimes, dates, times, timedeltas, UUIDs, decimals, bytes, tuples, sets, and pydantic models,
  dataclasses and enums, rebuilt as their class when its module is already imported by the process
  replaying (the way recorded exceptions are rebuilt), never importing anything.
- A value that cannot be recorded faithfully (an arbitrary object) fails the step on its first
  run, not after a crash.

Values are compared with `==` first: a value equal to its JSON reading (an `IntEnum` or `StrEnum`
member and its value, `0` and `0.0`) is not recorded apart.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import math
import operator
import sys
import types
import typing
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, cast

from pydantic import BaseModel, TypeAdapter
from pydantic_ai.durable_exec import JSON_CODEC, DurabilityCodec
from pydantic_ai.messages import (
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.usage import RequestUsage

from ._logging import logger

__all__ = [
    "FAITHFUL_JSON_CODEC",
    "FidelityError",
    "LiveValue",
    "apply_fixes",
    "find_fixes",
    "is_plain_json",
    "live_values",
    "plain_messages",
]

PAYLOAD = "$payload"
FIDELITY = "$fidelity"

_NATIVE = (str, int, float, bool, type(None))
_NUMBERS = (int, float)


class FidelityError(TypeError):
    """A value in an untyped position that neither JSON nor a tag can record faithfully."""


@dataclasses.dataclass(frozen=True)
class LiveValue:
    """The live result of an operation that ran in this process: handed back instead of its JSON."""

    value: Any


_live_values: ContextVar[list[tuple[Any, Any]] | None] = ContextVar(
    "durable_pydantic_ai_live_values", default=None
)


def live_values() -> ContextVar[list[tuple[Any, Any]] | None]:
    """Where `FAITHFUL_JSON_CODEC.dump` leaves `(payload, live value)` for the step running it."""
    return _live_values


# --- finding what JSON loses -----------------------------------------------------------------------


def find_fixes(live: Any, loaded: Any) -> list[list[Any]]:
    """`[path, tagged value]` for each place where `loaded` (the JSON read back) differs from `live`.

    Raises:
        FidelityError: a differing value has no faithful tagged form.
    """
    try:
        if live == loaded:  # the usual case, decided without walking the values in Python
            return []
    except Exception:
        pass
    fixes: list[list[Any]] = []
    _walk(live, loaded, [], fixes)
    return fixes


def _walk(live: Any, loaded: Any, path: list[Any], fixes: list[list[Any]]) -> None:
    if live is loaded:
        return
    kind = type(live)
    if kind is not type(loaded):
        if kind in _NUMBERS and type(loaded) in _NUMBERS and live == loaded:
            return  # 0 for a field declared float (pydantic-ai's own defaults): equal, not worth a record
        fixes.append([list(path), _tag(live, path)])
        return
    if isinstance(live, BaseModel):
        for name in type(live).model_fields:
            _walk(getattr(live, name), getattr(loaded, name), [*path, name], fixes)
        return
    if dataclasses.is_dataclass(live) and not isinstance(live, type):
        for field in dataclasses.fields(live):
            _walk(getattr(live, field.name), getattr(loaded, field.name), [*path, field.name], fixes)
        return
    if isinstance(live, dict):
        live_dict, loaded_dict = cast(dict[Any, Any], live), cast(dict[Any, Any], loaded)
        if live_dict.keys() != loaded_dict.keys() or not all(isinstance(k, str) for k in live_dict):
            fixes.append([list(path), _tag(live, path)])
            return
        for key, value in live_dict.items():
            _walk(value, loaded_dict[key], [*path, key], fixes)
        return
    if isinstance(live, list):
        live_list, loaded_list = cast(list[Any], live), cast(list[Any], loaded)
        if len(live_list) != len(loaded_list):
            fixes.append([list(path), _tag(live, path)])
            return
        for index, value in enumerate(live_list):
            _walk(value, loaded_list[index], [*path, index], fixes)
        return
    try:
        same = bool(live == loaded)
    except Exception:
        same = False
    if not same:
        fixes.append([list(path), _tag(live, path)])


def _class_path(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _tag(value: Any, path: Sequence[Any]) -> Any:
    """A JSON form of `value` that `_untag` turns back into an equal value (checked here)."""
    tagged = _tag_value(value, path)
    try:
        same = _untag(tagged) == value
    except Exception:
        same = False
    if not same:
        raise FidelityError(
            f"the value at {_show_path(path)} ({type(value).__name__}) would not be replayed equal to the live "
            "value from its JSON form"
        )
    return tagged


def _tag_value(value: Any, path: Sequence[Any]) -> Any:
    kind = type(value)
    if kind in _NATIVE:
        return value
    if kind is list:
        return {"$t": "list", "v": [_tag_value(item, path) for item in cast(list[Any], value)]}
    if kind is tuple:
        return {"$t": "tuple", "v": [_tag_value(item, path) for item in cast(tuple[Any, ...], value)]}
    if kind in (set, frozenset):
        return {"$t": kind.__name__, "v": [_tag_value(item, path) for item in cast(set[Any], value)]}
    if kind is dict:
        items = cast(dict[Any, Any], value).items()
        return {"$t": "dict", "v": [[_tag_value(k, path), _tag_value(v, path)] for k, v in items]}
    if kind is datetime.datetime:
        return {"$t": "datetime", "v": cast(datetime.datetime, value).isoformat()}
    if kind is datetime.date:
        return {"$t": "date", "v": cast(datetime.date, value).isoformat()}
    if kind is datetime.time:
        return {"$t": "time", "v": cast(datetime.time, value).isoformat()}
    if kind is datetime.timedelta:
        delta = cast(datetime.timedelta, value)
        return {"$t": "timedelta", "v": [delta.days, delta.seconds, delta.microseconds]}
    if kind is uuid.UUID:
        return {"$t": "uuid", "v": str(value)}
    if kind is decimal.Decimal:
        return {"$t": "decimal", "v": str(value)}
    if kind is bytes:
        return {"$t": "bytes", "v": base64.b64encode(cast(bytes, value)).decode()}
    if isinstance(value, enum.Enum):
        return {"$t": "enum", "c": _class_path(kind), "v": _tag_value(value.value, path)}
    if isinstance(value, BaseModel):
        return {"$t": "model", "c": _class_path(kind), "v": value.model_dump(mode="json")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "$t": "dataclass",
            "c": _class_path(kind),
            "v": TypeAdapter(kind).dump_python(value, mode="json"),
        }
    raise FidelityError(f"the value at {_show_path(path)} is a {kind.__qualname__}, which has no JSON form")


def _show_path(path: Sequence[Any]) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path) or "the top level"


# --- proving there is nothing to find, cheaply -----------------------------------------------------
#
# `find_fixes` needs the JSON read back: validating a whole run result costs more than dumping it.
# `plain_messages` decides without it, conservatively: it says True only for messages built of the
# pydantic-ai classes listed below (exact types, with exactly the fields listed), whose typed fields
# hold exact values of their declared type and whose untyped (`Any`) fields hold plain JSON. Any
# other value, class or field, or a pydantic-ai release that changes a listed class, makes it say
# False, and the caller takes the full round trip. tests/pydantic_ai/conftest.py checks, in every
# adapter test, that the full round trip finds nothing wherever this says True.


def is_plain_json(value: Any, *, files: bool = True) -> bool:
    """Whether `value` is JSON-native all through (exact str, int, finite float, bool, None, list, dict).

    `files=False` also rejects any dict with a `"kind"` key: in a tool's return value such a dict
    can be read back as one of pydantic-ai's file items (`BinaryContent`, `ImageUrl`, ...).
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(is_plain_json(item, files=files) for item in cast(list[Any], value))
    if kind is dict:
        mapping = cast(dict[Any, Any], value)
        if not files and "kind" in mapping:
            return False
        return all(type(k) is str and is_plain_json(v, files=files) for k, v in mapping.items())
    return False


_Check = Callable[[Any], bool]


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_str_or_none(value: Any) -> bool:
    return value is None or type(value) is str


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


def _is_datetime(value: Any) -> bool:
    return type(value) is datetime.datetime


def _is_datetime_or_none(value: Any) -> bool:
    return value is None or type(value) is datetime.datetime


def _is_none(value: Any) -> bool:
    return value is None


def _is_plain_dict_or_none(value: Any) -> bool:
    return value is None or (type(value) is dict and is_plain_json(value))


def _is_tool_args(value: Any) -> bool:
    return value is None or type(value) is str or (type(value) is dict and is_plain_json(value))


def _is_tool_content(value: Any) -> bool:
    return is_plain_json(value, files=False)


def _is_int_dict(value: Any) -> bool:
    if type(value) is not dict:
        return False
    return all(type(k) is str and type(v) is int for k, v in cast(dict[Any, Any], value).items())


_LITERAL = "literal"
"""A `Literal[...]` (or optional one) field: checked against the values its annotation allows."""

_REQUEST_PARTS: dict[type[Any], dict[str, _Check | str]] = {
    SystemPromptPart: {
        "content": _is_str,
        "timestamp": _is_datetime,
        "dynamic_ref": _is_str_or_none,
        "context_id": _is_str_or_none,
        "scope": _LITERAL,
        "metadata": _is_plain_dict_or_none,
        "part_kind": _LITERAL,
    },
    UserPromptPart: {"content": _is_str, "timestamp": _is_datetime, "part_kind": _LITERAL},
    ToolReturnPart: {
        "tool_name": _is_str,
        "content": _is_tool_content,
        "tool_call_id": _is_str,
        "tool_kind": _is_str_or_none,
        "metadata": is_plain_json,
        "timestamp": _is_datetime,
        "outcome": _LITERAL,
        "retry": _is_none,
        "part_kind": _LITERAL,
    },
}
_RESPONSE_PARTS: dict[type[Any], dict[str, _Check | str]] = {
    TextPart: {
        "content": _is_str,
        "id": _is_str_or_none,
        "provider_name": _is_str_or_none,
        "provider_details": _is_plain_dict_or_none,
        "citations": _is_none,
        "part_kind": _LITERAL,
    },
    ThinkingPart: {
        "content": _is_str,
        "id": _is_str_or_none,
        "signature": _is_str_or_none,
        "provider_name": _is_str_or_none,
        "provider_details": _is_plain_dict_or_none,
        "part_kind": _LITERAL,
    },
    ToolCallPart: {
        "tool_name": _is_str,
        "args": _is_tool_args,
        "tool_call_id": _is_str,
        "tool_kind": _is_str_or_none,
        "id": _is_str_or_none,
        "provider_name": _is_str_or_none,
        "provider_details": _is_plain_dict_or_none,
        "part_kind": _LITERAL,
    },
}
_USAGE: dict[type[Any], dict[str, _Check | str]] = {
    RequestUsage: {
        "input_tokens": _is_int,
        "cache_write_tokens": _is_int,
        "cache_write_1h_tokens": _is_int,
        "cache_read_tokens": _is_int,
        "output_tokens": _is_int,
        "unmeasured_requests": _is_int,
        "output_reasoning_tokens": _is_int,
        "input_audio_tokens": _is_int,
        "cache_audio_read_tokens": _is_int,
        "output_audio_tokens": _is_int,
        "audio_seconds": _is_number,
        "details": _is_int_dict,
        "cost": _is_none,
    }
}


def _literal_values(cls: type[Any], name: str) -> frozenset[str | None]:
    allowed: set[str | None] = set()
    pending: list[Any] = [typing.get_type_hints(cls)[name]]
    while pending:
        annotation = pending.pop()
        origin = typing.get_origin(annotation)
        if annotation is type(None):
            allowed.add(None)
        elif origin is typing.Literal and all(type(arg) is str for arg in typing.get_args(annotation)):
            allowed.update(typing.get_args(annotation))
        elif origin is typing.Union or origin is types.UnionType:
            pending.extend(typing.get_args(annotation))
        else:
            raise TypeError(f"{cls.__qualname__}.{name} is not a Literal of strings")
    return frozenset(allowed)


_EXACT_TYPES: dict[_Check, frozenset[type[Any]]] = {
    _is_str: frozenset({str}),
    _is_str_or_none: frozenset({str, type(None)}),
    _is_int: frozenset({int}),
    _is_datetime: frozenset({datetime.datetime}),
    _is_datetime_or_none: frozenset({datetime.datetime, type(None)}),
    _is_none: frozenset({type(None)}),
}
"""Checks that are a field's exact type alone: done several fields at a time, in C (`_Shape`)."""


def _getter(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    # `attrgetter` of one name returns the value, not a 1-tuple: ask for it twice.
    return operator.attrgetter(*names) if len(names) > 1 else operator.attrgetter(names[0], names[0])


class _Shape:
    """The checks of one class's fields, grouped so that most run without a Python call per field."""

    __slots__ = ("literal_values", "literals", "others", "typed")

    def __init__(self, cls: type[Any], fields: dict[str, _Check | str]) -> None:
        by_types: dict[frozenset[type[Any]], list[str]] = {}
        literal_names: list[str] = []
        others: list[tuple[str, _Check]] = []
        for name, check in fields.items():
            if check == _LITERAL:
                literal_names.append(name)
                by_types.setdefault(frozenset({str, type(None)}), []).append(name)
            elif check in _EXACT_TYPES:
                by_types.setdefault(_EXACT_TYPES[cast(_Check, check)], []).append(name)
            else:
                others.append((name, cast(_Check, check)))
        self.typed = tuple((_getter(names), allowed) for allowed, names in by_types.items())
        self.literals = _getter(literal_names) if literal_names else None
        values = [_literal_values(cls, name) for name in literal_names]
        self.literal_values = tuple(values * 2 if len(values) == 1 else values)
        self.others = tuple(others)

    def matches(self, value: Any) -> bool:
        for get, allowed in self.typed:
            if not allowed.issuperset(map(type, get(value))):
                return False
        if self.literals is not None and not all(
            map(operator.contains, self.literal_values, self.literals(value))
        ):
            return False
        return all(check(getattr(value, name)) for name, check in self.others)


def _compile(tables: dict[type[Any], dict[str, _Check | str]]) -> dict[type[Any], _Shape]:
    """The listed classes whose fields are still exactly the listed ones, with their checks."""
    compiled: dict[type[Any], _Shape] = {}
    for cls, fields in tables.items():
        try:
            if {field.name for field in dataclasses.fields(cls)} != fields.keys():
                continue
            compiled[cls] = _Shape(cls, fields)
        except Exception:  # an annotation this module does not understand: that class takes the full path
            continue
    return compiled


def _are_parts(parts: Any, classes: dict[type[Any], _Shape]) -> bool:
    if type(parts) is not list:
        return False
    for part in cast(list[Any], parts):
        shape = classes.get(type(part))
        if shape is None or not shape.matches(part):
            return False
    return True


def _is_usage(value: Any) -> bool:
    shape = _USAGE_CHECKS.get(type(value))
    if shape is None or not shape.matches(value):
        return False
    # Usage objects carry extra attributes in their `__dict__`, compared and serialized: none allowed.
    return vars(value).keys() <= _USAGE_FIELDS


def _are_request_parts(value: Any) -> bool:
    return _are_parts(value, _REQUEST_PART_CHECKS)


def _are_response_parts(value: Any) -> bool:
    return _are_parts(value, _RESPONSE_PART_CHECKS)


_MESSAGES: dict[type[Any], dict[str, _Check | str]] = {
    ModelRequest: {
        "parts": _are_request_parts,
        "timestamp": _is_datetime_or_none,
        "instructions": _is_str_or_none,
        "kind": _LITERAL,
        "run_id": _is_str_or_none,
        "conversation_id": _is_str_or_none,
        "metadata": _is_plain_dict_or_none,
        "state": _LITERAL,
    },
    ModelResponse: {
        "parts": _are_response_parts,
        "usage": _is_usage,
        "model_name": _is_str_or_none,
        "model_id": _is_str_or_none,
        "timestamp": _is_datetime,
        "kind": _LITERAL,
        "provider_name": _is_str_or_none,
        "provider_url": _is_str_or_none,
        "canonical_system": _is_str_or_none,
        "provider_details": _is_plain_dict_or_none,
        "provider_response_id": _is_str_or_none,
        "finish_reason": _LITERAL,
        "run_id": _is_str_or_none,
        "conversation_id": _is_str_or_none,
        "metadata": _is_plain_dict_or_none,
        "workspace_ref": _is_none,
        "history_digest": _is_str_or_none,
        "failed_attempts": _is_none,
        "state": _LITERAL,
    },
}

_REQUEST_PART_CHECKS = _compile(_REQUEST_PARTS)
_RESPONSE_PART_CHECKS = _compile(_RESPONSE_PARTS)
_USAGE_CHECKS = _compile(_USAGE)
_USAGE_FIELDS = frozenset(field.name for field in dataclasses.fields(RequestUsage))
_MESSAGE_CHECKS = _compile(_MESSAGES)


def plain_messages(messages: Any) -> bool:
    """True only if JSON is known to give `messages` back equal, so `find_fixes` would find nothing.

    False means "not known": the caller does the full round trip.
    """
    if type(messages) is not list:
        return False
    for message in cast(list[Any], messages):
        shape = _MESSAGE_CHECKS.get(type(message))
        if shape is None or not shape.matches(message):
            return False
    return True


# --- putting it back -------------------------------------------------------------------------------


class _Unresolved(Exception):
    pass


def _resolve_class(path: str) -> type[Any]:
    module_name, _, qualname = path.partition(":")
    target: Any = sys.modules.get(module_name)
    if target is None:
        raise _Unresolved(f"module {module_name!r} is not imported")
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise _Unresolved(f"{path} not found")
    if not isinstance(target, type):
        raise _Unresolved(f"{path} is not a class")
    return cast(type[Any], target)


def _untag(tagged: Any) -> Any:
    if not isinstance(tagged, dict):
        return tagged
    node = cast(dict[str, Any], tagged)
    tag, raw = node["$t"], node["v"]
    if tag == "list":
        return [_untag(item) for item in raw]
    if tag == "tuple":
        return tuple(_untag(item) for item in raw)
    if tag == "set":
        return {_untag(item) for item in raw}
    if tag == "frozenset":
        return frozenset(_untag(item) for item in raw)
    if tag == "dict":
        return {_untag(k): _untag(v) for k, v in raw}
    if tag == "datetime":
        return datetime.datetime.fromisoformat(raw)
    if tag == "date":
        return datetime.date.fromisoformat(raw)
    if tag == "time":
        return datetime.time.fromisoformat(raw)
    if tag == "timedelta":
        return datetime.timedelta(days=raw[0], seconds=raw[1], microseconds=raw[2])
    if tag == "uuid":
        return uuid.UUID(raw)
    if tag == "decimal":
        return decimal.Decimal(raw)
    if tag == "bytes":
        return base64.b64decode(raw)
    cls = _resolve_class(node["c"])
    if tag == "enum" and issubclass(cls, enum.Enum):
        return cls(_untag(raw))
    if tag == "model" and issubclass(cls, BaseModel):
        return cls.model_validate(raw)
    if tag == "dataclass" and dataclasses.is_dataclass(cls):
        return TypeAdapter(cls).validate_python(raw)
    raise _Unresolved(f"{node['c']} is not a {tag}")


def apply_fixes(root: Any, fixes: Sequence[Sequence[Any]]) -> Any:
    """Put the recorded exact values back into `root` (the JSON read back); returns the new root."""
    for path, tagged in fixes:
        try:
            value = _untag(tagged)
        except _Unresolved as error:
            logger.warning(
                "A recorded value at %s is replayed as its JSON form: %s (import its module before the "
                "run is recovered to get the object back).",
                _show_path(path),
                error,
            )
            continue
        if not path:
            root = value
            continue
        parent = root
        for step in path[:-1]:
            parent = _child(parent, step)
        last = path[-1]
        if isinstance(parent, dict | list):
            cast(Any, parent)[last] = value
        else:
            object.__setattr__(parent, last, value)
    return root


def _child(parent: Any, step: Any) -> Any:
    if isinstance(parent, dict | list):
        return cast(Any, parent)[step]
    return getattr(parent, step)


# --- the codec -------------------------------------------------------------------------------------


class _FaithfulJsonCodec(DurabilityCodec):
    """`JSON_CODEC` plus what JSON loses (see the module docstring); live values pass through."""

    def dump(self, tp: Any, value: Any) -> Any:
        payload = JSON_CODEC.dump(tp, value)
        fixes = find_fixes(value, JSON_CODEC.load(tp, payload))
        record: Any = {PAYLOAD: payload, FIDELITY: fixes} if fixes else payload
        holder = _live_values.get()
        if holder is not None:
            holder.append((record, value))
        return record

    def load(self, tp: Any, payload: Any) -> Any:
        if isinstance(payload, LiveValue):
            return payload.value
        if _is_wrapped(payload):
            wrapped = cast(dict[str, Any], payload)
            return apply_fixes(JSON_CODEC.load(tp, wrapped[PAYLOAD]), wrapped[FIDELITY])
        return JSON_CODEC.load(tp, payload)


def _is_wrapped(payload: Any) -> bool:
    return isinstance(payload, dict) and len(cast(dict[str, Any], payload)) == 2 and FIDELITY in payload


FAITHFUL_JSON_CODEC: DurabilityCodec = _FaithfulJsonCodec()
"""The codec of `Durability`: JSON, exact on replay, and the live object on the live run."""
