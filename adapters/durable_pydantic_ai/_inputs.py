"""What a durable agent run records as its workflow input and output, as readable JSON.

Inputs are encoded with pydantic-ai's own types (`ModelMessagesTypeAdapter`, `UsageLimits`,
`DeferredToolResults`, ...) and deps with the agent's `deps_type`, so a recovering process
rebuilds them without reading class names from the database. Arguments that cannot be JSON
(callables, toolsets, capabilities, an `output_type`) are *live-only*: the starting process
uses them, and a process that recovers the run without them says so clearly.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union, cast

from pydantic import TypeAdapter, ValidationError
from pydantic_ai.agent import AgentRetries
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelMessagesTypeAdapter, UserContent
from pydantic_ai.models import Model
from pydantic_ai.output import NativeOutput, PromptedOutput, TextOutput, ToolOutput
from pydantic_ai.run import AgentRunResult
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import DeferredToolResults
from pydantic_ai.usage import RunUsage, UsageLimits
from pydantic_core import PydanticSerializationError, to_jsonable_python

from ._codec import FIDELITY, apply_fixes, find_fixes

__all__ = ["LIVE_ONLY", "RunRequest", "decode_result", "encode_result", "output_data_type"]

_PROMPT: TypeAdapter[str | Sequence[UserContent] | None] = TypeAdapter(str | Sequence[UserContent] | None)
_RESULTS: TypeAdapter[DeferredToolResults | None] = TypeAdapter(DeferredToolResults | None)
_LIMITS: TypeAdapter[UsageLimits | None] = TypeAdapter(UsageLimits | None)
_USAGE: TypeAdapter[RunUsage | None] = TypeAdapter(RunUsage | None)
_RETRIES: TypeAdapter[int | AgentRetries | None] = TypeAdapter(int | AgentRetries | None)
_ANY_RESULT: TypeAdapter[AgentRunResult[Any]] = TypeAdapter(AgentRunResult[Any])
_RESULT_ADAPTERS: dict[object, TypeAdapter[AgentRunResult[Any]]] = {}

LIVE_ONLY = ("output_type", "conversation", "toolsets", "capabilities", "workspace", "spec")
"""Run arguments that cannot be recorded; a run started with them recovers only in its own process."""


@dataclass
class RunRequest:
    """The run arguments of one durable run: `kwargs` for the live call, `record` for the database."""

    kwargs: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict[str, Any])


def _is_json_instructions(value: object) -> bool:
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, Sequence) and all(isinstance(v, str) for v in cast(Sequence[object], value))


def encode_request(
    kwargs: dict[str, Any],
    *,
    deps_type: type,
    model_key: Callable[[Model], str | None],
) -> dict[str, Any]:
    """Encode the recordable run arguments; raise a `UserError` that says what to change otherwise."""
    record: dict[str, Any] = {}
    record["user_prompt"] = _PROMPT.dump_python(kwargs.get("user_prompt"), mode="json")
    history = kwargs.get("message_history")
    record["message_history"] = None
    if history is not None:
        messages = list(history)
        record["message_history"] = ModelMessagesTypeAdapter.dump_python(messages, mode="json")
        try:
            fixes = find_fixes(messages, ModelMessagesTypeAdapter.validate_python(record["message_history"]))
        except TypeError as error:
            raise UserError(
                f"`message_history` of a durable run cannot be recorded exactly: {error}"
            ) from error
        if fixes:
            record["message_history_fidelity"] = fixes
    record["deferred_tool_results"] = _dump(
        _RESULTS, kwargs.get("deferred_tool_results"), "deferred_tool_results"
    )
    for key in ("conversation_id", "run_id", "timeout", "infer_name"):
        record[key] = kwargs.get(key)
    model = kwargs.get("model")
    if isinstance(model, Model):
        record["model"] = model_key(model)
    else:
        record["model"] = model
    instructions = kwargs.get("instructions")
    if isinstance(instructions, Sequence) and not isinstance(instructions, str):
        record["instructions"] = list(cast(Sequence[object], instructions))
        if not _is_json_instructions(instructions):
            record["instructions"] = None
    elif _is_json_instructions(instructions):
        record["instructions"] = instructions
    else:
        record["instructions"] = None
    settings = kwargs.get("model_settings")
    record["model_settings"] = None if callable(settings) else _dump_jsonable(settings, "model_settings")
    record["usage_limits"] = _dump(_LIMITS, kwargs.get("usage_limits"), "usage_limits")
    record["usage"] = _dump(_USAGE, kwargs.get("usage"), "usage")
    record["retries"] = _dump(_RETRIES, kwargs.get("retries"), "retries")
    metadata = kwargs.get("metadata")
    record["metadata"] = None if callable(metadata) else _dump_jsonable(metadata, "metadata")
    record["deps"] = encode_deps(kwargs.get("deps"), deps_type)
    live = [key for key in LIVE_ONLY if kwargs.get(key) is not None]
    if callable(instructions) or not _is_json_instructions(instructions):
        live.append("instructions")
    if callable(settings):
        live.append("model_settings")
    if callable(metadata):
        live.append("metadata")
    record["live_only"] = live
    return record


def _dump(adapter: TypeAdapter[Any], value: object, what: str) -> Any:
    try:
        return adapter.dump_python(value, mode="json")
    except (PydanticSerializationError, TypeError, ValueError) as error:
        raise UserError(
            f"`{what}` of a durable run must be JSON-serializable to be recorded: {error}"
        ) from error


def _dump_jsonable(value: object, what: str) -> Any:
    try:
        return to_jsonable_python(value)
    except (PydanticSerializationError, TypeError, ValueError) as error:
        raise UserError(
            f"`{what}` of a durable run must be JSON-serializable to be recorded: {error}"
        ) from error


def encode_deps(deps: object, deps_type: type) -> Any:
    """Record `deps` through the agent's `deps_type`, which is also how recovery rebuilds them."""
    if deps is None:
        return None
    if deps_type in (object, type(None)):
        # No declared `deps_type`: only JSON-native deps (dicts, lists, strings, numbers) come back
        # as they went in, so anything else needs a type to be rebuilt with.
        if _is_json_native(deps):
            return deps
        raise UserError(
            f"This durable run got deps of type {type(deps).__name__} but the agent declares no `deps_type`. "
            "Deps are recorded and rebuilt after a crash through `Agent(deps_type=...)`: declare it "
            "(a pydantic model, dataclass or TypedDict of JSON-friendly fields), or use the "
            "`Durability()` capability inside your own `@workflow` that builds its deps from its inputs."
        )
    try:
        return TypeAdapter(deps_type).dump_python(deps, mode="json")
    except Exception as error:  # pydantic raises several types here (schema, serialization, type)
        raise UserError(
            f"The deps of this durable run ({type(deps).__name__}) cannot be recorded as JSON through the "
            f"agent's `deps_type` ({getattr(deps_type, '__name__', deps_type)!r}): {error}. Deps are a "
            "workflow input, rebuilt after a crash. Make them serializable (JSON-friendly fields; keep "
            "clients and connections out, and build them from config inside tools), or use the "
            "`Durability()` capability inside your own `@workflow` that builds its deps from its inputs."
        ) from error


def _is_json_native(value: object) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_is_json_native(v) for v in cast(Sequence[object], value))
    if isinstance(value, dict):
        items = cast(dict[object, object], value).items()
        return all(isinstance(k, str) and _is_json_native(v) for k, v in items)
    return False


def decode_request(record: Mapping[str, Any], *, deps_type: type) -> dict[str, Any]:
    """Rebuild run arguments from a recorded input, in a process that did not start the run."""
    live = list(record.get("live_only") or [])
    if live:
        raise UserError(
            f"This durable run was started with {', '.join(f'`{k}`' for k in live)}, which cannot be "
            "recorded, so it can only resume in the process that started it. Configure these on the "
            "agent instead of per run, or use the `Durability()` capability inside your own `@workflow`."
        )
    history = record.get("message_history")
    kwargs: dict[str, Any] = {
        "user_prompt": _PROMPT.validate_python(record.get("user_prompt")),
        "message_history": None
        if history is None
        else apply_fixes(
            ModelMessagesTypeAdapter.validate_python(history), record.get("message_history_fidelity") or ()
        ),
        "deferred_tool_results": _RESULTS.validate_python(record.get("deferred_tool_results")),
        "model": record.get("model"),
        "instructions": record.get("instructions"),
        "model_settings": cast("ModelSettings | None", record.get("model_settings")),
        "usage_limits": _LIMITS.validate_python(record.get("usage_limits")),
        "usage": _USAGE.validate_python(record.get("usage")),
        "retries": _RETRIES.validate_python(record.get("retries")),
        "metadata": record.get("metadata"),
    }
    for key in ("conversation_id", "run_id", "timeout"):
        kwargs[key] = record.get(key)
    deps = record.get("deps")
    if deps is not None and deps_type in (object, type(None)):
        kwargs["deps"] = deps
    elif deps is not None:
        try:
            kwargs["deps"] = TypeAdapter(deps_type).validate_python(deps)
        except ValidationError as error:
            raise UserError(
                f"Recorded deps no longer validate as the agent's `deps_type`: {error}"
            ) from error
    return kwargs


def output_data_type(spec: object) -> object:
    """The Python type of a run's output for an output spec, to validate a recorded output with.

    Falls back to `Any` (plain JSON) for specs whose type cannot be derived.
    """
    if spec is None:
        return Any
    if isinstance(spec, ToolOutput):
        return output_data_type(cast(ToolOutput[Any], spec).output)
    if isinstance(spec, (NativeOutput, PromptedOutput)):
        return output_data_type(cast(NativeOutput[Any], spec).outputs)
    if isinstance(spec, TextOutput):
        return output_data_type(cast(TextOutput[Any], spec).output_function)
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        members = tuple(output_data_type(item) for item in cast(Sequence[object], spec))
        if not members:
            return Any
        return members[0] if len(members) == 1 else Union[members]  # noqa: UP007
    if isinstance(spec, (type, types.UnionType)) or typing.get_origin(spec) is not None:
        return spec
    if callable(spec):
        try:
            return typing.get_type_hints(spec).get("return", Any)
        except Exception:
            return Any
    return Any


def _result_adapter(output_type: object) -> TypeAdapter[AgentRunResult[Any]]:
    adapter = _RESULT_ADAPTERS.get(output_type)
    if adapter is None:
        try:
            adapter = TypeAdapter(AgentRunResult[output_type])  # type: ignore[valid-type]
        except Exception:
            adapter = _ANY_RESULT
        _RESULT_ADAPTERS[output_type] = adapter
    return adapter


def _result_parts(result: AgentRunResult[Any]) -> dict[str, Any]:
    """What a re-run of a finished id hands back: the output and the messages."""
    return {"output": result.output, "messages": result.all_messages()}


def encode_result(result: AgentRunResult[Any], output_type: object = Any) -> dict[str, Any]:
    """The workflow output: pydantic-ai's public serialized shape of `AgentRunResult`.

    Values its JSON does not give back exactly (a `datetime` in `provider_details`, a tool's
    pydantic-model return value) are recorded beside it, under `"$fidelity"` (see `_codec`).
    """
    try:
        data = _ANY_RESULT.dump_python(result, mode="json")
        fixes = find_fixes(
            _result_parts(result), _result_parts(_result_adapter(output_type).validate_python(data))
        )
    except (PydanticSerializationError, TypeError, ValueError) as error:
        raise UserError(f"The output of this durable run cannot be recorded as JSON: {error}") from error
    if fixes:
        data[FIDELITY] = fixes
    return data


def decode_result(data: Mapping[str, Any], output_type: object) -> AgentRunResult[Any]:
    """Rebuild the typed `AgentRunResult` a finished run recorded, exactly as the live run returned it."""
    record = dict(data)
    fixes = record.pop(FIDELITY, None)
    result = _result_adapter(output_type).validate_python(record)
    if fixes:
        parts = apply_fixes(_result_parts(result), fixes)
        if parts["output"] is not result.output:
            object.__setattr__(result, "output", parts["output"])
    return result
