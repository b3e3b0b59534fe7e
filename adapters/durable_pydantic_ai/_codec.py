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
import sys
import uuid
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any, cast

from pydantic import BaseModel, TypeAdapter
from pydantic_ai.durable_exec import JSON_CODEC, DurabilityCodec

from ._logging import logger

__all__ = ["FAITHFUL_JSON_CODEC", "FidelityError", "LiveValue", "apply_fixes", "find_fixes", "live_values"]

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
