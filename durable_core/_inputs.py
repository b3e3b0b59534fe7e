"""Encoding and decoding a workflow's inputs and outputs by its registered annotations.

The serializers (layer 0) know nothing of workflows; this module joins them to the registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ._registry import WorkflowDef, get_workflow
from ._serialization import JsonSerializer, Serializer, _fast_faithful
from .errors import SerializationError

__all__ = ["dumps_inputs", "input_hints", "workflow_return_hint"]


def workflow_return_hint(name: str) -> Any:
    """The return annotation a workflow's recorded output is decoded by (Any when unknown here)."""
    defn = get_workflow(name)
    return defn.return_hint if defn is not None else Any


def dumps_inputs(
    serializer: Serializer, defn: WorkflowDef | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """Encode a workflow's inputs; with the JSON serializer, prove each decodes back equal by its annotation."""
    try:
        data = serializer.dumps({"args": list(args), "kwargs": kwargs})
    except SerializationError:
        _name_unencodable_input(serializer, defn, args, kwargs)
        raise
    if not (args or kwargs) or defn is None or not isinstance(serializer, JsonSerializer):
        return data
    if get_workflow(defn.name) is None:  # enqueued by name from a client without the code: no hints here
        return data
    arg_hints, kwarg_hints = input_hints(defn, len(args), kwargs)
    checks: list[tuple[str, Any, Any, str, Any]] = [
        (label, value, hint, "args", index)
        for index, (value, (label, hint)) in enumerate(zip(args, arg_hints, strict=True))
    ]
    checks += [(key, value, kwarg_hints[key], "kwargs", key) for key, value in kwargs.items()]
    raw: dict[str, Any] = {}
    for label, value, hint, part, index in checks:
        if _fast_faithful(value, hint):
            continue
        raw = raw or json.loads(data)
        try:
            _verify_input(serializer, value, hint, raw[part][index])
        except SerializationError as exc:
            raise SerializationError(f"argument {label!r}: {exc.message}") from exc
    return data


def _name_unencodable_input(
    serializer: Serializer, defn: WorkflowDef | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Raise the encoding error of the first input that cannot be encoded, naming it."""
    if defn is not None:
        labels = [label for label, _ in input_hints(defn, len(args), ())[0]]
    else:
        labels = [f"#{index}" for index in range(len(args))]
    for label, value in [*zip(labels, args, strict=True), *kwargs.items()]:
        try:
            serializer.dumps(value)
        except SerializationError as exc:
            raise SerializationError(f"argument {label!r}: {exc.message}") from exc.__cause__


def _verify_input(serializer: JsonSerializer, value: Any, hint: Any, stored: Any) -> None:
    serializer.verify(value, hint, lambda: serializer.from_jsonable(stored, hint))


def input_hints(
    defn: WorkflowDef, count: int, names: Iterable[str]
) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """The (name, hint) each positional input decodes by, and the hint of each keyword input."""
    hints = defn.hints
    positional: list[str] = []
    keyword: set[str] = set()
    var_positional = var_keyword = None
    for param in defn.signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            var_positional = param.name
        elif param.kind is param.VAR_KEYWORD:
            var_keyword = param.name
        else:
            if param.kind is not param.KEYWORD_ONLY:
                positional.append(param.name)
            if param.kind is not param.POSITIONAL_ONLY:
                keyword.add(param.name)
    args: list[tuple[str, Any]] = []
    for index in range(count):
        if index < len(positional):
            args.append((positional[index], hints.get(positional[index], Any)))
        elif var_positional is not None:
            args.append((f"*{var_positional}[{index - len(positional)}]", hints.get(var_positional, Any)))
        else:
            args.append((f"#{index}", Any))
    kwargs = {
        name: hints.get(name, Any)
        if name in keyword
        else (hints.get(var_keyword, Any) if var_keyword is not None else Any)
        for name in names
    }
    return args, kwargs
