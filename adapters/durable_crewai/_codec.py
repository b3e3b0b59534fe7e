"""JSON forms of what the adapter records: LLM answers, tool results, task and crew outputs.

Steps return JSON-native values only, so a replay in a fresh process decodes them without
guessing classes; the adapter validates them back into CrewAI objects itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from crewai.crews.crew_output import CrewOutput
from crewai.tasks.task_output import TaskOutput
from pydantic import BaseModel

__all__ = [
    "decode_crew_output",
    "decode_llm_answer",
    "decode_task_output",
    "digest",
    "encode_crew_output",
    "encode_llm_answer",
    "encode_task_output",
    "llm_request_fingerprint",
    "to_jsonable",
]


def digest(value: Any) -> str:
    """A short, stable hash of a JSON-able value (key order and process independent)."""
    text = json.dumps(value, sort_keys=True, default=_stable_default, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stable_default(value: Any) -> Any:
    # Never fall back to repr(): it can embed memory addresses that differ between processes.
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, (set, frozenset)):
        return sorted(str(item) for item in value)
    return type(value).__qualname__


def to_jsonable(value: Any) -> Any:
    """The JSON form of a tool result; values JSON cannot hold fall back to their `str()`.

    The same form is handed to CrewAI on the live run and on replay, so the prompts built from
    it (and the fingerprints of later LLM calls) agree across a crash.
    """
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    return str(value)


def _tool_call_parts(call: Any) -> list[Any]:
    from crewai.utilities.agent_utils import extract_tool_call_info

    info = extract_tool_call_info(call)
    if info is None:
        return [type(call).__qualname__]
    call_id, name, arguments = info
    return [call_id, name, arguments if isinstance(arguments, str) else to_jsonable(arguments)]


def _message_form(message: Any) -> Any:
    if not isinstance(message, Mapping):
        return to_jsonable(message)
    form: dict[str, Any] = {}
    # Tool-call ids are left out: some providers' ids are made from id() and differ per process.
    for key in ("role", "content", "name"):
        if key in message:
            form[key] = to_jsonable(message[key])
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, Sequence) and not isinstance(tool_calls, str):
        form["tool_calls"] = [_tool_call_parts(call)[1:] for call in tool_calls]
    return form


def llm_request_fingerprint(messages: Any, tools: Any, response_model: type[BaseModel] | None) -> str:
    """What a replayed LLM answer must have been asked for: messages, tool names, output schema."""
    message_forms = [messages] if isinstance(messages, str) else [_message_form(m) for m in messages or []]
    tool_names = sorted(_tool_name(tool) for tool in tools or [])
    schema = f"{response_model.__module__}.{response_model.__qualname__}" if response_model else None
    return digest({"messages": message_forms, "tools": tool_names, "response_model": schema})


def _tool_name(tool: Any) -> str:
    if isinstance(tool, Mapping):
        function = tool.get("function")
        if isinstance(function, Mapping) and "name" in function:
            return str(function["name"])
        if "name" in tool:
            return str(tool["name"])
    return str(getattr(tool, "name", type(tool).__qualname__))


def encode_llm_answer(answer: Any) -> dict[str, Any]:
    """A recorded LLM answer: text, a structured-output model, or native tool calls (as dicts)."""
    if isinstance(answer, str):
        return {"kind": "text", "value": answer}
    if isinstance(answer, BaseModel):
        return {"kind": "model", "value": answer.model_dump(mode="json")}
    if isinstance(answer, list) and answer and not isinstance(answer[0], (str, int, float, bool)):
        return {"kind": "tool_calls", "value": [_tool_call_dict(call) for call in answer]}
    return {"kind": "json", "value": to_jsonable(answer)}


def _tool_call_dict(call: Any) -> Any:
    """An OpenAI-shaped dict, which CrewAI's tool-call parser accepts like any provider's object."""
    if isinstance(call, Mapping):
        return to_jsonable(call)
    call_id, name, arguments = _tool_call_parts(call)
    arguments_text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments_text}}


def decode_llm_answer(recorded: Mapping[str, Any], response_model: type[BaseModel] | None) -> Any:
    kind, value = recorded.get("kind"), recorded.get("value")
    if kind == "model" and response_model is not None:
        return response_model.model_validate(value)
    return value


def encode_task_output(output: TaskOutput) -> dict[str, Any]:
    return output.model_dump(mode="json", serialize_as_any=True)  # keep the output_pydantic fields


def decode_task_output(recorded: Mapping[str, Any], output_pydantic: type[BaseModel] | None) -> TaskOutput:
    data = dict(recorded)
    pydantic_value = data.pop("pydantic", None)
    output = TaskOutput.model_validate(data)
    if pydantic_value is not None and output_pydantic is not None:
        output.pydantic = output_pydantic.model_validate(pydantic_value)
    return output


def encode_crew_output(output: CrewOutput) -> dict[str, Any]:
    return output.model_dump(mode="json", serialize_as_any=True)  # keep the output_pydantic fields


def decode_crew_output(
    recorded: Mapping[str, Any], output_models: Sequence[type[BaseModel] | None]
) -> CrewOutput:
    """Rebuild a `CrewOutput`, restoring each task's `output_pydantic` model by the task's class."""
    data = dict(recorded)
    tasks = [
        decode_task_output(task, output_models[index] if index < len(output_models) else None)
        for index, task in enumerate(data.pop("tasks_output", None) or [])
    ]
    data.pop("pydantic", None)
    output = CrewOutput.model_validate({**data, "tasks_output": []})
    output.tasks_output = tasks
    final = next((task for task in reversed(tasks) if task.raw), None)
    if final is not None and final.pydantic is not None:
        output.pydantic = final.pydantic
    return output
