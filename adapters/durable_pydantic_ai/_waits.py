"""Human-in-the-loop as pydantic-ai defines it, made durable.

- An agent whose output type includes `DeferredToolRequests` ends a run that defers tool calls
  with them as its output, like a plain agent; the caller continues with
  `run(message_history=..., deferred_tool_results=...)`, another durable run.
- An agent that asks to wait inside the run waits durably: `RequestInput` (or any
  `wait_for_external_event`), a capability's `handle_deferred_tool_calls` that waits, or an output
  type without `DeferredToolRequests` (the run then waits for the results itself, where a plain
  agent would raise). Each is a `durable_core.recv` on the run's default topic: the wait shows in
  `WorkflowStatus.waiting`, and the answer is the JSON form of `DeferredToolResults`::

      status = engine.retrieve_workflow(run_id).get_status()
      engine.send(run_id, results_json, topic=status.waiting.topic)   # None: the default topic

`recv` records the message it returns as a step, so an answer received before a crash is replayed
after it, and a wait pending at a crash is still pending (with its deadline) after a restart. A
cancelled waiting run stops at the wait and never runs the tool it waited on.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Awaitable, Callable, Generator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, cast

from pydantic import JsonValue, TypeAdapter, ValidationError
from pydantic_ai.durable_exec import ExternalEventError, ExternalEventWaiter
from pydantic_ai.exceptions import ToolFailed, UserError
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolDenied

from durable_core import current_workflow_id, recv_async, set_event_async, step

__all__ = [
    "DEFERRED_TOOL_REQUESTS_EVENT",
    "FOREVER_SECONDS",
    "StepEventWaiter",
    "allows_deferred_output",
    "decode_deferred_tool_results",
    "deferred_output_scope",
    "run_allows_deferred_output",
    "wait_for_deferred_tool_results",
]

DEFERRED_TOOL_REQUESTS_EVENT = "deferred_tool_requests"
"""Event key under which a waiting run publishes its pending `DeferredToolRequests` (as JSON)."""

FOREVER_SECONDS = 10 * 365 * 24 * 3600.0
"""The deadline used for a wait without a timeout."""

_REQUESTS = TypeAdapter(DeferredToolRequests)
_RESULTS = TypeAdapter(DeferredToolResults)


def allows_deferred_output(output_spec: object) -> bool:
    """Whether a run with this output spec ends with `DeferredToolRequests` when tools are deferred."""
    from ._inputs import output_data_type

    def members(tp: object) -> tuple[object, ...]:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            return members(typing.get_args(tp)[0])
        if origin is typing.Union or origin is types.UnionType:
            return tuple(member for arg in typing.get_args(tp) for member in members(arg))
        return (tp,)

    return DeferredToolRequests in members(output_data_type(output_spec))


_deferred_output: ContextVar[bool | None] = ContextVar("durable_pydantic_ai_deferred_output", default=None)


@contextmanager
def deferred_output_scope(allowed: bool) -> Generator[None]:
    """Tell the durability capability whether this run's output type includes `DeferredToolRequests`."""
    token = _deferred_output.set(allowed)
    try:
        yield
    finally:
        _deferred_output.reset(token)


def run_allows_deferred_output(agent_output_spec: object) -> bool:
    """For the run being executed: set by `DurableAgent`, else from the agent's own output type."""
    allowed = _deferred_output.get()
    return allows_deferred_output(agent_output_spec) if allowed is None else allowed


def decode_deferred_tool_results(payload: Any, *, workflow_id: str) -> DeferredToolResults:
    """Validate an answer sent to a waiting run, explaining the expected JSON on failure."""
    if isinstance(payload, DeferredToolResults):
        return payload
    try:
        return _RESULTS.validate_python(payload)
    except ValidationError as error:
        raise UserError(
            f"Workflow {workflow_id!r} was waiting for the JSON form of `DeferredToolResults`, e.g. "
            '`{"approvals": {"<tool_call_id>": true}, "calls": {"<tool_call_id>": "result"}}` '
            f'(build it with `TypeAdapter(DeferredToolResults).dump_python(results, mode="json")`), '
            f"and received something else: {error}"
        ) from error


async def wait_for_deferred_tool_results(
    requests: DeferredToolRequests, *, timeout_seconds: float | None
) -> DeferredToolResults:
    """Publish pending deferred tool calls and wait durably for their results.

    The requests are published as the workflow event `DEFERRED_TOOL_REQUESTS_EVENT`; the answer is
    received on the run's default topic. When nothing arrives in time, approvals are denied and
    external calls fail, with a message to the model, as `RequestInput` does.
    """
    await set_event_async(DEFERRED_TOOL_REQUESTS_EVENT, _REQUESTS.dump_python(requests, mode="json"))
    seconds = FOREVER_SECONDS if timeout_seconds is None else timeout_seconds
    payload = await recv_async(timeout_seconds=seconds)
    if payload is None:
        message = f"No decision on this tool call arrived within {timedelta(seconds=seconds)}."
        return requests.build_results(
            approvals={call.tool_call_id: ToolDenied(message) for call in requests.approvals},
            calls={call.tool_call_id: ToolFailed(message) for call in requests.calls},
        )
    decision = decode_deferred_tool_results(payload, workflow_id=current_workflow_id())
    try:
        return requests.build_results(
            approvals=decision.approvals,
            calls=decision.calls,
            metadata=decision.metadata,
            answered_by=decision.answered_by,
        )
    except ValueError as error:
        raise UserError(
            f"The decision sent for the pending deferred tool calls is not valid: {error}"
        ) from error


class StepEventWaiter(ExternalEventWaiter):
    """`ExternalEventWaiter` for `wait_for_external_event` (and so `RequestInput`) inside a workflow.

    The resume token is `"{workflow_id}:{name}:{n}"`, `n` counting this run's waits, so a replay
    hands out the same token. `ask` runs once, as a step; if it answered, that answer is the
    payload. Otherwise the run waits with `recv` on its default topic until
    `engine.send(workflow_id, payload)`.
    """

    def __init__(self, agent_name: str) -> None:
        self._agent_name = agent_name
        self._waits = 0

    async def wait(
        self,
        name: str,
        *,
        ask: Callable[[str], Awaitable[JsonValue]],
        timeout: timedelta | None,
    ) -> JsonValue:
        self._waits += 1
        token = f"{current_workflow_id()}:{name}:{self._waits}"

        async def ask_once() -> Any:
            return await ask(token)

        answer = await step(name=f"{self._agent_name}.wait.{name}.ask")(ask_once)()
        if answer is not None:
            return cast(JsonValue, answer)
        seconds = FOREVER_SECONDS if timeout is None else timeout.total_seconds()
        payload = await recv_async(timeout_seconds=seconds)
        if payload is None:
            raise ExternalEventError(
                f"No answer to wait {name!r} (token {token!r}) arrived within {timeout}."
            )
        return cast(JsonValue, payload)
