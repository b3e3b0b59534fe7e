"""JSON envelopes for values that cross the engine (workflow inputs, resume messages, events).

Graph inputs and `Command`s are arbitrary Python objects (LangChain messages, pydantic models),
so they travel as the graph serializer's typed bytes in base64; the engine only stores JSON.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

__all__ = [
    "ENVELOPE",
    "decode_value",
    "display_value",
    "encode_value",
    "is_envelope",
    "json_safe",
    "jsonable_items",
]

ENVELOPE = "__durable_langgraph__"


def encode_value(serde: SerializerProtocol, value: Any) -> dict[str, Any]:
    type_, data = serde.dumps_typed(value)
    return {ENVELOPE: 1, "type": type_, "data": base64.b64encode(data).decode("ascii")}


def is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and ENVELOPE in value and "type" in value and "data" in value


def decode_value(serde: SerializerProtocol, envelope: dict[str, Any]) -> Any:
    return serde.loads_typed((str(envelope["type"]), base64.b64decode(envelope["data"])))


def display_value(envelope: dict[str, Any]) -> Any:
    """The value inside an envelope, for `durable workflows show` and the dashboard.

    Those tools find this hook by the envelope's tag (``__durable_langgraph__`` ->
    ``durable_langgraph.display_value``). They have no graph, so this decodes with LangGraph's
    default serializer (the `DurableCheckpointer` default); a custom serde's bytes raise here and
    the tools show the envelope as stored.
    """
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return decode_value(JsonPlusSerializer(), envelope)


def json_safe(value: Any) -> Any:
    """`value` if it is JSON-serializable, else its repr (for human-readable events)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def jsonable_items(mapping: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON-serializable items of a mapping (callbacks and other live objects are dropped)."""
    kept: dict[str, Any] = {}
    for key, value in (mapping or {}).items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return kept
