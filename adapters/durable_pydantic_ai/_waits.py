"""Human-in-the-loop as durable waits on the workflow's message inbox.

Both forms wait with `durable_core.recv` on the default topic, so one call answers either:

```python
engine.send(workflow_id, results_json)   # results_json: the JSON form of DeferredToolResults
```

`recv` records the message it returns as a step, so an answer received before a crash is
replayed after it, and a wait pending at a crash is still pending (with its deadline) after a
restart. A cancelled waiting run stops at the wait and never runs the tool it waited on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pydantic import JsonValue, TypeAdapter, ValidationError
from pydantic_ai.durable_exec import ExternalEventError, ExternalEventWaiter
from pydantic_ai.exceptions import UserError
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults

from durable_core import step

from ._core_compat import current_workflow_id, recv_async, set_event_async

__all__ = [
    "DEFERRED_TOOL_REQUESTS_EVENT",
    "FOREVER_SECONDS",
    "StepEventWaiter",
    "decode_deferred_tool_results",
    "wait_for_deferred_tool_results",
]

DEFERRED_TOOL_REQUESTS_EVENT = "deferred_tool_requests"
"""Event key under which a waiting run publishes its pending `DeferredToolRequests` (as JSON)."""

FOREVER_SECONDS = 10 * 365 * 24 * 3600.0
"""The deadline used for a wait without a timeout."""

_REQUESTS = TypeAdapter(DeferredToolRequests)
_RESULTS = TypeAdapter(DeferredToolResults)


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
    requests: DeferredToolRequests, *, timeout_seconds: float
) -> DeferredToolResults | None:
    """Publish pending deferred tool calls and wait durably for their results.

    Returns `None` when nothing arrived before the deadline.
    """
    await set_event_async(DEFERRED_TOOL_REQUESTS_EVENT, _REQUESTS.dump_python(requests, mode="json"))
    payload = await recv_async(timeout_seconds=timeout_seconds)
    if payload is None:
        return None
    return decode_deferred_tool_results(payload, workflow_id=current_workflow_id())


class StepEventWaiter(ExternalEventWaiter):
    """`ExternalEventWaiter` for `wait_for_external_event` (and so `RequestInput`) inside a workflow.

    The resume token is `"{workflow_id}:{name}:{n}"`, `n` counting this run's waits, so a replay
    hands out the same token. `ask` runs once, as a step; if it answered, that answer is the
    payload. Otherwise the run waits with `recv` until `engine.send(workflow_id, payload)`.
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

        async def ask_once():
            return await ask(token)

        answer = await step(name=f"{self._agent_name}.wait.{name}.ask")(ask_once)()
        if answer is not None:
            return answer
        seconds = FOREVER_SECONDS if timeout is None else timeout.total_seconds()
        payload = await recv_async(timeout_seconds=seconds)
        if payload is None:
            raise ExternalEventError(
                f"No answer to wait {name!r} (token {token!r}) arrived within {timeout}."
            )
        return payload
