"""Each pydantic-ai durable operation (model request, tool call, ...) as one `durable_core` step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypedDict

from pydantic_ai.durable_exec import (
    CallableOperationBackend,
    DurableOperationId,
    RoleBasedOperationConfig,
    record_durable_unit,
)
from pydantic_ai.messages import ModelResponse

from durable_core import record_usage, step
from durable_core.extend import in_step_body, workflow_steps_here

from ._codec import LiveValue, live_values
from ._names import StepNamer
from ._usage import usage_of

__all__ = ["StepBackend", "StepConfig", "in_step"]

_IN_STEP: ContextVar[bool] = ContextVar("durable_pydantic_ai_in_step", default=False)


def in_step() -> bool:
    """Whether the current task is running the body of one of this backend's steps."""
    return _IN_STEP.get()


class StepConfig(TypedDict, total=False):
    """Retry settings for the steps of one role (model requests, tools, ...).

    The keys are those of `durable_core.step`. A tool can carry its own in its metadata,
    `metadata={'durable': {'max_attempts': 3}}`, or run inline, unrecorded, with
    `metadata={'durable': False}`.
    """

    max_attempts: int
    interval_seconds: float
    backoff_rate: float


class StepBackend(CallableOperationBackend[Mapping[str, Any]]):
    """A `CallableOperationBackend` whose durable unit is a `durable_core` step.

    The body hands back the operation's JSON payload (pydantic-ai encodes it with the capability's
    codec inside the unit), which is what the step records, so it needs no return annotation. A
    step that ran here hands pydantic-ai the operation's own result (`LiveValue`); a replayed one
    its recorded payload, which the codec reads back exactly (see `_codec`).
    """

    def __init__(
        self,
        *,
        agent_name: str,
        model: StepConfig | None = None,
        tool: StepConfig | None = None,
        event: StepConfig | None = None,
    ) -> None:
        super().__init__(
            namer=StepNamer(agent_name),
            config=RoleBasedOperationConfig[Mapping[str, Any]](
                # model requests are model-call steps: budget-checked first, usage recorded with them
                model={**dict(model or {}), "model_call": True},
                event=dict(event or {}),
                capability=dict(tool or {}),
                tool=dict(tool or {}),
            ),
        )

    async def execute(
        self,
        *,
        operation_id: DurableOperationId,
        name: str,
        body: Callable[[], Awaitable[object]],
        cache_key: tuple[object, ...],
        config: Mapping[str, Any],
    ) -> object:
        run = _step_runner(name, tuple(sorted((config or {}).items())))
        executed: list[bool] = []
        produced: list[tuple[Any, Any]] = []
        token = live_values().set(produced)
        try:
            if in_step_body():
                # The run began in workflow code, but a step of the user's drives this operation
                # from its body (an `event_stream_handler` that is a `@step`): it stays a step of
                # the workflow (see `Durability.in_durable_context`).
                with workflow_steps_here():
                    payload = await run(body, executed)
            else:
                payload = await run(body, executed)
        finally:
            live_values().reset(token)
        # Keeps the spans of replayed steps out of traces (pydantic-ai's `replay_scope`).
        record_durable_unit(executed=bool(executed))
        if executed:
            # The operation ran here: hand back the object it produced, not its JSON read back.
            for recorded, value in produced:
                if recorded is payload:
                    return LiveValue(value)
        return payload


async def _run_operation(body: Callable[[], Awaitable[object]], executed: list[bool]) -> Any:
    """The body of every operation step: runs pydantic-ai's operation, marking that it ran live.

    Annotated `Any`: what it returns is the operation's JSON payload (plain JSON, already checked
    by the codec), which the engine then records, and replays, without decoding it by a type.
    """
    executed.append(True)
    token = _IN_STEP.set(True)
    try:
        payload = await body()
    finally:
        _IN_STEP.reset(token)
    produced = live_values().get()
    for _recorded, value in produced or ():
        if isinstance(value, ModelResponse):  # a model request: what it consumed goes with its record
            record_usage(usage_of(value))
    return payload


_MAX_STEP_RUNNERS = 4096


def _step_runner(
    name: str, config: tuple[tuple[str, Any], ...]
) -> Callable[[Callable[[], Awaitable[object]], list[bool]], Awaitable[Any]]:
    """One `durable_core` step per (name, settings), built once: steps run on every model
    request and tool call, so they are not re-decorated per call."""
    key = (name, config)
    runner = _step_runners.get(key)
    if runner is None:
        if len(_step_runners) >= _MAX_STEP_RUNNERS:
            _step_runners.clear()
        runner = step(name=name, **dict(config))(_run_operation)
        _step_runners[key] = runner
    return runner


_step_runners: dict[
    tuple[str, tuple[tuple[str, Any], ...]],
    Callable[[Callable[[], Awaitable[object]], list[bool]], Awaitable[Any]],
] = {}
