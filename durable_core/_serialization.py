"""Checkpoint encoding: readable JSON by default, pickle only when the user opts in.

Decoding is guided by type hints (a step's return annotation, a workflow's parameter
annotations), never by class names read from the database. Exceptions are stored as their
type name, message, args and traceback text, and rebuilt as their original class only when
that class's module is already imported; durable_core's own exceptions also keep their
attributes (workflow id, step id, names), in any process.

Replay fidelity: the engine records with `dumps_checked(serializer, value, hint)`, which proves
that decoding by `hint` (what a replay does) gives back the live value, and otherwise raises
`SerializationError` on the first run. Plain JSON values take a fast path with no decode.
"""

from __future__ import annotations

import base64
import builtins
import collections
import dataclasses
import datetime
import decimal
import enum
import json
import math
import pickle
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

import pydantic_core
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.errors import PydanticUserError

from .errors import (
    DurableError,
    NondeterminismError,
    RecordedError,
    SerializationError,
    StepRetriesExceeded,
    WorkflowCancelled,
)

__all__ = [
    "JsonSerializer",
    "PickleSerializer",
    "Serializer",
    "decode_error",
    "dumps_checked",
    "encode_error",
    "reject_nul",
]


@runtime_checkable
class Serializer(Protocol):
    """How values are written to and read from checkpoints.

    `name` is stored beside every row so a row is always read with the format it was written in.
    A serializer may also offer ``dumps_checked(value, hint) -> str``: the engine then records
    with it, so that a value a replay would decode differently is refused on the first run
    (`JsonSerializer` does; without it, `dumps` is used as is).
    """

    name: str

    def dumps(self, value: Any) -> str:
        """Encode a value; raise `SerializationError` if it cannot be encoded."""
        ...

    def loads(self, data: str, hint: Any = Any) -> Any:
        """Decode a value; `hint` is the expected type (``Any`` when unknown)."""
        ...


_BYTES_CONFIG = ConfigDict(val_json_bytes="base64", ser_json_bytes="base64")
# ints beyond this go through the full check (json.loads refuses ints of more than 4300 digits)
_BIG_INT = 1 << 1024
# nesting the fast path walks; deeper plain values are verified by a real decode
_FAST_DEPTH = 64


class JsonSerializer:
    """Readable JSON: JSON natives, pydantic models, dataclasses, datetimes, UUIDs, enums, bytes (base64),
    tuples and sets. Decoding rebuilds typed values from the hint it is given.

    `dumps_checked(value, hint)` is what the engine records with: it also proves that decoding the
    text by `hint` (what a replay does) gives back `value`, and raises `SerializationError` on the
    first run when it would not (a dataclass without an annotation, a value that violates its
    annotation, ...). Plain JSON values (str, int, float, bool, None, lists, dicts with str keys)
    take a fast path that needs no decode.
    """

    name = "json"

    def __init__(self) -> None:
        self._decoders: dict[Any, Callable[[str], Any]] = {}

    def dumps(self, value: Any) -> str:
        try:
            return pydantic_core.to_json(value, bytes_mode="base64", inf_nan_mode="constants").decode()
        except (pydantic_core.PydanticSerializationError, TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(_encode_failure(value, exc)) from exc

    def dumps_checked(self, value: Any, hint: Any = Any) -> str:
        """Encode `value`, raising `SerializationError` unless `loads(text, hint)` gives back `value`."""
        data = self.dumps(value)
        if not _fast_faithful(value, hint):
            self.verify(value, hint, lambda: self.loads(data, hint))
        return data

    def verify(self, value: Any, hint: Any, decode: Callable[[], Any]) -> None:
        """Raise `SerializationError` unless `decode()` (a replay's decode) equals the live `value`."""
        try:
            replayed = decode()
        except Exception as exc:
            raise SerializationError(_decode_failure(value, hint, exc)) from exc
        where = _difference(value, replayed)
        if where is not None:
            raise SerializationError(_replay_difference(value, hint, where))

    def loads(self, data: str, hint: Any = Any) -> Any:
        if hint is Any or (hint is None and data == "null"):
            return json.loads(data)
        return self._decoder(hint)(data)

    def to_jsonable(self, value: Any) -> Any:
        """The JSON-native form of a value, as it would be stored."""
        return pydantic_core.to_jsonable_python(value, bytes_mode="base64", inf_nan_mode="constants")

    def from_jsonable(self, value: Any, hint: Any) -> Any:
        """Decode an already-parsed JSON value by a type hint."""
        if hint is Any:
            return value
        return self._decoder(hint)(json.dumps(value))

    def _decoder(self, hint: Any) -> Callable[[str], Any]:
        try:
            return self._decoders[hint]
        except KeyError:
            pass
        except TypeError:  # unhashable hint
            return _make_decoder(hint)
        decoder = _make_decoder(hint)
        self._decoders[hint] = decoder
        return decoder


def _make_decoder(hint: Any) -> Callable[[str], Any]:
    try:
        return TypeAdapter(hint, config=_BYTES_CONFIG).validate_json
    except PydanticUserError:
        # A dataclass, TypedDict or model refuses a config of its own: inside a list, ours still
        # reaches (stdlib) dataclasses and TypedDicts, so their bytes decode from base64 as they
        # were encoded. A pydantic model keeps its own config on both sides.
        validate = TypeAdapter(list[hint], config=_BYTES_CONFIG).validate_json

        def decode(data: str) -> Any:
            return validate("[" + data + "]")[0]

        return decode


def dumps_checked(serializer: Serializer, value: Any, hint: Any = Any) -> str:
    """Encode a value to record; with the JSON serializer, also prove a replay decodes it back equal.

    Serializers without a `dumps_checked` method (pickle, custom ones) just encode.
    """
    check = getattr(serializer, "dumps_checked", None)
    if check is None:
        return serializer.dumps(value)
    return check(value, hint)


# -- replay fidelity -------------------------------------------------------------------------


def _fast_faithful(value: Any, hint: Any) -> bool:
    """True when `value` certainly decodes back equal by `hint`, without decoding it."""
    kind = type(value)
    if hint is Any:
        return _plain(value, 0)
    if hint is kind:
        return kind is str or kind is float or kind is bool or (kind is int and -_BIG_INT < value < _BIG_INT)
    return value is None and (hint is None or hint is type(None))


_PLAIN_SCALARS = frozenset({str, float, bool, type(None)})


def _plain(value: Any, depth: int) -> bool:
    """JSON natives only (exact types, str dict keys): `json.loads(dumps(value)) == value` exactly."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return True
    if kind is int:
        return -_BIG_INT < value < _BIG_INT
    items: Iterable[Any]
    if kind is list:
        items = value
    elif kind is dict:
        for key in value:
            if type(key) is not str:
                return False
        items = value.values()
    else:
        return False
    for item in items:  # scalars inline: this loop is the hot path of every plain step result
        kind = type(item)
        if kind in _PLAIN_SCALARS:
            continue
        if kind is int:
            if -_BIG_INT < item < _BIG_INT:
                continue
            return False
        if depth >= _FAST_DEPTH or not _plain(item, depth + 1):
            return False
    return True


_MISSING: Any = object()


def _difference(live: Any, replayed: Any) -> str | None:
    """Where the replayed value differs from the live one (None: it is the same value).

    Stricter than `==`: types must match too (a StrEnum is not its str, a namedtuple not a tuple),
    except that an int under a float annotation replays as the equal float. NaN equals NaN;
    datetimes must agree on their UTC offset; dicts on their key order.
    """
    try:
        return _diff(live, replayed, "")
    except RecursionError:
        return "the value is nested too deeply to compare"


def _diff(a: Any, b: Any, path: str) -> str | None:
    kind = type(a)
    if kind is not type(b):
        if kind is int and type(b) is float and a == b:
            return None  # an int under a float annotation replays as the equal float
        return _differs(path, a, b)
    if kind is str or kind is int or kind is bool or a is None or kind is bytes:
        return None if a == b else _differs(path, a, b)
    if kind is float:
        return None if a == b or (math.isnan(a) and math.isnan(b)) else _differs(path, a, b)
    if isinstance(a, list | tuple | collections.deque):
        items_a: Any = a
        items_b: Any = b
        if len(items_a) != len(items_b):
            return _differs(path, a, b)
        for index, (x, y) in enumerate(zip(items_a, items_b, strict=True)):
            found = _diff(x, y, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if isinstance(a, dict):
        return _diff_mapping(a, b, path, attributes=False)  # pyright: ignore[reportUnknownArgumentType]
    if isinstance(a, set | frozenset):
        return _diff_set(a, b, path)  # pyright: ignore[reportUnknownArgumentType]
    if isinstance(a, enum.Enum):
        return None if a is b or a == b else _differs(path, a, b)
    if dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            found = _diff(
                getattr(a, field.name, _MISSING), getattr(b, field.name, _MISSING), f"{path}.{field.name}"
            )
            if found is not None:
                return found
        return None
    if isinstance(a, BaseModel):
        found = _diff_mapping(dict(a.__dict__), dict(b.__dict__), path, attributes=True)
        if found is None and (a.__pydantic_extra__ or b.__pydantic_extra__):
            found = _diff_mapping(
                a.__pydantic_extra__ or {}, b.__pydantic_extra__ or {}, path, attributes=True
            )
        return found
    if isinstance(a, datetime.datetime | datetime.time):
        same = a == b and a.utcoffset() == b.utcoffset()
        return None if same else _differs(path, a, b)
    if isinstance(a, decimal.Decimal):
        return None if a.as_tuple() == b.as_tuple() else _differs(path, a, b)
    try:
        same = bool(a == b)
    except Exception:
        same = False
    return None if same else _differs(path, a, b)


def _diff_mapping(a: dict[Any, Any], b: dict[Any, Any], path: str, *, attributes: bool) -> str | None:
    if len(a) != len(b) or (attributes and a.keys() != b.keys()):
        return _differs(path, a, b)
    for (key_a, value_a), (key_b, value_b) in zip(a.items(), b.items(), strict=True):
        where = f"{path}.{key_a}" if attributes else f"{path}[{key_a!r}]"
        found = _diff(key_a, key_b, f"{path} key {key_a!r}".lstrip()) or _diff(value_a, value_b, where)
        if found is not None:
            return found
    return None


def _diff_set(a: set[Any] | frozenset[Any], b: set[Any] | frozenset[Any], path: str) -> str | None:
    if len(a) != len(b):
        return _differs(path, a, b)
    index = {item: item for item in b}
    for item in a:
        match = index.get(item, _MISSING)
        if match is not _MISSING and _diff(item, match, "") is None:
            continue
        if any(_diff(item, other, "") is None for other in b):  # NaN, or an equal item of another type
            continue
        where = f"at {path}: " if path else ""
        return f"{where}the set item {_show(item)} would not replay as itself"
    return None


def _differs(path: str, live: Any, replayed: Any) -> str:
    where = f"at {path}: " if path else ""
    return f"{where}{_show(live)} would replay as {_show(replayed)}"


def _show(value: Any) -> str:
    if value is _MISSING:
        return "nothing (a missing attribute)"
    try:
        text = repr(value)
    except Exception:
        text = "..."
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__qualname__} {text}"


def _hint_name(hint: Any) -> str:
    if hint is Any:
        return "Any"
    if isinstance(hint, type) and not getattr(hint, "__args__", None):
        return hint.__qualname__
    return repr(hint).replace("typing.", "")


def _replay_difference(value: Any, hint: Any, where: str) -> str:
    if hint is Any:
        advice = (
            "there is no type annotation (or it is Any), so a replay would decode plain JSON; "
            f"annotate its exact type (a {type(value).__qualname__}, with its item types) so replays "
            "rebuild it"
        )
    else:
        advice = (
            f"the annotation {_hint_name(hint)} does not describe the value exactly; annotate its real type"
        )
    return (
        f"a {type(value).__qualname__} would replay differently from what the first run returned "
        f"({where}): {advice}, or convert the value to JSON-native types. Nothing was recorded."
    )


def _decode_failure(value: Any, hint: Any, exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        detail = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
    else:
        detail = f"{type(exc).__name__}: {exc}"
    if "recursion limit exceeded" in detail:
        detail = "it is nested more than 200 levels deep, deeper than pydantic decodes JSON by a type hint"
    return (
        f"a {type(value).__qualname__} recorded under the annotation {_hint_name(hint)} could not be "
        f"decoded by a replay ({detail}); return a value that matches the annotation, or fix the "
        "annotation. Nothing was recorded."
    )


def _encode_failure(value: Any, exc: BaseException) -> str:
    message = f"cannot encode a value of type {type(value).__qualname__}: {exc}"
    if isinstance(exc, RecursionError) or "Circular reference" in str(exc):
        depth = _nesting(value)
        if depth is None:
            message = f"cannot encode a value of type {type(value).__qualname__}: it contains itself (a reference cycle)"
        else:
            message = (
                f"cannot encode a value of type {type(value).__qualname__}: it is nested {depth} levels deep, "
                "deeper than the JSON serializer records (about 250 levels)"
            )
    return message


def _children(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        mapping: dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        return [*mapping.keys(), *mapping.values()]
    if isinstance(value, list | tuple | set | frozenset | collections.deque):
        return value  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, BaseModel):
        return [*value.__dict__.values(), *(value.__pydantic_extra__ or {}).values()]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [getattr(value, field.name, None) for field in dataclasses.fields(value)]
    return ()


def _nesting(value: Any) -> int | None:
    """How deep `value` nests (None when it contains itself), walked without recursion."""
    deepest = 0
    ancestors: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(value, 1, False)]
    while stack:
        item, depth, leaving = stack.pop()
        if leaving:
            ancestors.discard(id(item))
            continue
        children = list(_children(item))
        if not children:
            deepest = max(deepest, depth)
            continue
        if id(item) in ancestors:
            return None
        ancestors.add(id(item))
        stack.append((item, depth, True))
        stack.extend((child, depth + 1, False) for child in children)
    return deepest


def reject_nul(**values: str | Iterable[str] | None) -> None:
    """Raise `ValueError` naming the argument when an identifier (or one in a list) holds a NUL.

    PostgreSQL cannot store "\\x00" in text, so ids, topics and keys with one are refused before any
    SQL runs, the same way on every database.
    """
    for name, value in values.items():
        if value is None:
            continue
        for item in (value,) if isinstance(value, str) else value:
            if isinstance(item, str) and "\x00" in item:
                raise ValueError(
                    f"{name} must not contain a NUL character ('\\x00'); got {item!r}. "
                    "Identifiers are stored as text, which cannot hold NUL on PostgreSQL."
                )


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
    attrs = _own_error_attributes(error)
    if attrs is not None:
        record["attrs"] = attrs
    return json.dumps(record)


# durable_core's own exceptions: rebuilt with their class and attributes in any process
_OWN_ERRORS = (DurableError, WorkflowCancelled, NondeterminismError)


def _own_error_attributes(error: BaseException) -> dict[str, Any] | None:
    """The public attributes of one of durable_core's own exceptions, when all are plain JSON."""
    if not isinstance(error, _OWN_ERRORS) or isinstance(error, RecordedError):
        return None
    attrs = {
        name: value for name, value in vars(error).items() if not name.startswith("_") and name != "errors"
    }
    return attrs if _plain(attrs, 0) and all(_plain(arg, 0) for arg in error.args) else None


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
    if cls is not None and "attrs" in record and issubclass(cls, _OWN_ERRORS):
        try:
            error = _rebuild_own_error(cls, args, record)
        except Exception:
            error = None
    elif cls is not None:
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


def _rebuild_own_error(cls: type[BaseException], args: list[Any], record: dict[str, Any]) -> BaseException:
    """One of durable_core's exceptions, as recorded: its class, args and attributes, no __init__ call."""
    error = cls.__new__(cls)
    error.args = tuple(args)
    attrs: dict[str, Any] = record["attrs"]
    for name, value in attrs.items():
        setattr(error, name, value)
    if "errors" in record:
        error.errors = [decode_error(json.dumps(e)) for e in record["errors"]]  # type: ignore[attr-defined]
    elif isinstance(error, StepRetriesExceeded):
        error.errors = []
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
