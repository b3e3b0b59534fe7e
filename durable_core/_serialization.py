"""Checkpoint encoding: readable JSON by default, pickle only when the user opts in.

Decoding is guided by type hints (a step's return annotation, a workflow's parameter
annotations), never by class names read from the database. Exceptions are stored as their
type name, message, args and traceback text, and rebuilt as their original class only when
that class's module is already imported.
"""

from __future__ import annotations

import base64
import builtins
import json
import pickle
import sys
import traceback
from typing import Any, Protocol, runtime_checkable

import pydantic_core
from pydantic import ConfigDict, TypeAdapter
from pydantic.errors import PydanticUserError

from .errors import RecordedError, SerializationError, StepRetriesExceeded

__all__ = [
    "JsonSerializer",
    "PickleSerializer",
    "Serializer",
    "decode_error",
    "encode_error",
]


@runtime_checkable
class Serializer(Protocol):
    """How values are written to and read from checkpoints.

    `name` is stored beside every row so a row is always read with the format it was written in.
    """

    name: str

    def dumps(self, value: Any) -> str:
        """Encode a value; raise `SerializationError` if it cannot be encoded."""
        ...

    def loads(self, data: str, hint: Any = Any) -> Any:
        """Decode a value; `hint` is the expected type (``Any`` when unknown)."""
        ...


_BYTES_CONFIG = ConfigDict(val_json_bytes="base64", ser_json_bytes="base64")


class JsonSerializer:
    """Readable JSON: JSON natives, pydantic models, dataclasses, datetimes, UUIDs, enums, bytes (base64),
    tuples and sets. Decoding rebuilds typed values from the hint it is given."""

    name = "json"

    def __init__(self) -> None:
        self._adapters: dict[Any, TypeAdapter[Any]] = {}

    def dumps(self, value: Any) -> str:
        try:
            return pydantic_core.to_json(value, bytes_mode="base64", inf_nan_mode="constants").decode()
        except (pydantic_core.PydanticSerializationError, TypeError, ValueError) as exc:
            raise SerializationError(
                f"cannot encode a value of type {type(value).__qualname__}: {exc}"
            ) from exc

    def loads(self, data: str, hint: Any = Any) -> Any:
        if hint is Any or (hint is None and data == "null"):
            return json.loads(data)
        return self.adapter(hint).validate_json(data)

    def to_jsonable(self, value: Any) -> Any:
        """The JSON-native form of a value, as it would be stored."""
        return pydantic_core.to_jsonable_python(value, bytes_mode="base64", inf_nan_mode="constants")

    def from_jsonable(self, value: Any, hint: Any) -> Any:
        """Decode an already-parsed JSON value by a type hint."""
        if hint is Any:
            return value
        return self.adapter(hint).validate_json(json.dumps(value))

    def adapter(self, hint: Any) -> TypeAdapter[Any]:
        try:
            return self._adapters[hint]
        except KeyError:
            pass
        except TypeError:  # unhashable hint
            return _make_adapter(hint)
        adapter = _make_adapter(hint)
        self._adapters[hint] = adapter
        return adapter


def _make_adapter(hint: Any) -> TypeAdapter[Any]:
    try:
        return TypeAdapter(hint, config=_BYTES_CONFIG)
    except PydanticUserError:  # the type carries its own config (a BaseModel, a TypedDict with config)
        return TypeAdapter(hint)


class PickleSerializer:
    """Opt-in pickle (base64 text). Unreadable by humans and unsafe with untrusted databases:
    use it only when your values cannot be JSON (``Engine(serializer=PickleSerializer())``)."""

    name = "pickle"

    def dumps(self, value: Any) -> str:
        try:
            return base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode()
        except Exception as exc:
            raise SerializationError(
                f"cannot pickle a value of type {type(value).__qualname__}: {exc}"
            ) from exc

    def loads(self, data: str, hint: Any = Any) -> Any:
        return pickle.loads(base64.b64decode(data))


def encode_error(error: BaseException) -> str:
    """Record an exception as JSON: type name, message, args and traceback text."""
    cls = type(error)
    module = cls.__module__
    type_name = cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
    if isinstance(error, RecordedError):
        type_name = error.type_name
    record: dict[str, Any] = {
        "type": type_name,
        "message": error.original_message if isinstance(error, RecordedError) else str(error),
        "args": [_jsonable_or_repr(arg) for arg in error.args],
        "traceback": error.traceback_text
        if isinstance(error, RecordedError)
        else "".join(traceback.format_exception(error)),
    }
    extra = getattr(error, "errors", None)  # StepRetriesExceeded keeps every attempt's error
    if isinstance(extra, list) and extra and all(isinstance(e, BaseException) for e in extra):
        record["errors"] = [json.loads(encode_error(e)) for e in extra]
    return json.dumps(record)


def _jsonable_or_repr(value: Any) -> Any:
    try:
        return pydantic_core.to_jsonable_python(value, bytes_mode="base64")
    except Exception:
        return repr(value)


def decode_error(data: str) -> BaseException:
    """Rebuild a recorded exception: its original class if already imported, else `RecordedError`."""
    record = json.loads(data)
    type_name: str = record.get("type", "Exception")
    message: str = record.get("message", "")
    args: list[Any] = record.get("args", [])
    tb: str = record.get("traceback", "")
    cls = _find_exception_class(type_name)
    error: BaseException | None = None
    if cls is not None:
        try:
            if "errors" in record and issubclass(cls, StepRetriesExceeded):
                errors = [decode_error(json.dumps(e)) for e in record["errors"]]
                error = cls(message, errors)
            else:
                error = cls(*args)
        except Exception:
            error = None
        if error is not None and str(error) != message and not args:
            error = None  # built without its arguments it would misstate what happened
    if error is None:
        error = RecordedError(type_name, message, tb)
    error.__notes__ = [f"Recorded traceback:\n{tb}"] if tb else []
    return error


def _find_exception_class(type_name: str) -> type[BaseException] | None:
    """Look the class up among modules already imported; never import anything."""
    if "." not in type_name:
        candidate = getattr(builtins, type_name, None)
        return candidate if isinstance(candidate, type) and issubclass(candidate, BaseException) else None
    parts = type_name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        obj: Any = module
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return obj
        return None
    return None
