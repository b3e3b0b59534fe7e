"""Runs each pydantic-ai durable operation as one `durable_core` step."""

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

from durable_core import step

from ._names import StepNamer

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

    The body hands back the operation's JSON payload (pydantic-ai encodes it with `JSON_CODEC`
    inside the unit), so a live call and a replayed one return the same shape and the step
    needs no return annotation.
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
                model=dict(model or {}),
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
        executed = False

        async def unit():
            nonlocal executed
            executed = True
            token = _IN_STEP.set(True)
            try:
                return await body()
            finally:
                _IN_STEP.reset(token)

        payload = await step(name=name, **dict(config or {}))(unit)()
        # Keeps the spans of replayed steps out of traces (pydantic-ai's `replay_scope`).
        record_durable_unit(executed=executed)
        return payload
