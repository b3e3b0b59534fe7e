"""Every reachable `BaseLLM`'s `call`/`acall` becomes a step, checked against its request on replay.

CrewAI's LLM hooks cannot supply a response, so the adapter wraps the LLM object itself (an
instance attribute, which `BaseLLM.__setattr__` allows and `model_dump()` ignores). The wrapper
sits outside CrewAI's rate-limit retry, so one logical call is one step.

Each LLM step is a model-call step (`step(model_call=True)`): under a budget it is checked
before the call is made, and it records the usage CrewAI's provider responses reported (see
`_usage`). A `BudgetExceeded` leaves the agent loop as `BudgetStop` (a `BaseException`, so
CrewAI's task retries cannot swallow it and call the LLM again); the kickoff raises the
`BudgetExceeded` itself.
"""

from __future__ import annotations

from typing import Any

from crewai.llms.base_llm import BaseLLM
from pydantic import BaseModel

from durable_core import current_workflow_id, in_workflow, step
from durable_core.errors import BudgetExceeded

from ._codec import decode_llm_answer, encode_llm_answer, llm_request_fingerprint
from ._errors import BudgetStop, CrewDivergenceError
from ._ownership import owns, set_owned
from ._state import ToolOrder, armed_context, current_scope, step_body
from ._usage import collect_usage, track_usage_of

__all__ = ["LLM_STEP", "wrap_llm"]

LLM_STEP = "crewai.llm"


def wrap_llm(llm: Any) -> None:
    """Make `llm.call` / `llm.acall` durable steps when running inside a durable kickoff.

    Idempotent. A copy made by `Crew.copy()` carries the original's wrapper in its `__dict__`;
    ownership is checked by identity, so the copy gets its own wrapper.
    """
    if not isinstance(llm, BaseLLM) or owns(llm, "call"):
        return
    track_usage_of(type(llm))
    sync_call = type(llm).call.__get__(llm)
    async_call = type(llm).acall.__get__(llm)

    def call(messages: Any, *args: Any, **kwargs: Any) -> Any:
        if not in_workflow():
            armed = armed_context(llm)  # a thread that lost the task's context (see _tools)
            if armed is not None:
                return armed.run(call, messages, *args, **kwargs)
        if not in_workflow() or current_scope() is None:
            return sync_call(messages, *args, **kwargs)
        request = _Request(llm, messages, args, kwargs)

        def crewai_llm(fingerprint: str) -> dict[str, Any]:
            with step_body(), collect_usage(lambda: [llm]):
                answer = sync_call(messages, *args, **kwargs)
            request.live = answer
            return {"request": fingerprint, **encode_llm_answer(answer)}

        try:
            recorded = step(name=LLM_STEP, model_call=True)(crewai_llm)(request.fingerprint)
        except BudgetExceeded as error:
            raise BudgetStop(error) from None
        return request.finish(recorded)

    async def acall(messages: Any, *args: Any, **kwargs: Any) -> Any:
        if not in_workflow() or current_scope() is None:
            return await async_call(messages, *args, **kwargs)
        request = _Request(llm, messages, args, kwargs)

        async def crewai_llm(fingerprint: str) -> dict[str, Any]:
            with step_body(), collect_usage(lambda: [llm]):
                answer = await async_call(messages, *args, **kwargs)
            request.live = answer
            return {"request": fingerprint, **encode_llm_answer(answer)}

        try:
            recorded = await step(name=LLM_STEP, model_call=True)(crewai_llm)(request.fingerprint)
        except BudgetExceeded as error:
            raise BudgetStop(error) from None
        return request.finish(recorded)

    set_owned(llm, "call", call)
    set_owned(llm, "acall", acall)


_MISSING: Any = object()


class _Request:
    """One LLM call: its fingerprint before the step, the check and decoding after it."""

    def __init__(self, llm: BaseLLM, messages: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        names = ("tools", "callbacks", "available_functions", "from_task", "from_agent", "response_model")
        bound = dict(zip(names, args, strict=False)) | kwargs
        self.response_model: type[BaseModel] | None = bound.get("response_model")
        self.fingerprint = llm_request_fingerprint(messages, bound.get("tools"), self.response_model)
        self.live: Any = _MISSING
        scope = current_scope()
        assert scope is not None
        scope.llm_calls += 1
        self.scope = scope
        self.number = scope.llm_calls

    def finish(self, recorded: dict[str, Any]) -> Any:
        if recorded.get("request") != self.fingerprint:
            raise CrewDivergenceError(
                current_workflow_id(),
                0,
                f"{LLM_STEP} for request {recorded.get('request')}",
                f"{LLM_STEP} for request {self.fingerprint}",
                task=self.scope.label,
                call=f"LLM call {self.number}",
            )
        answer = self.live if self.live is not _MISSING else decode_llm_answer(recorded, self.response_model)
        self._expect_tool_calls(recorded)
        return answer

    def _expect_tool_calls(self, recorded: dict[str, Any]) -> None:
        calls = recorded.get("value") if recorded.get("kind") == "tool_calls" else None
        if not isinstance(calls, list) or len(calls) < 2:
            self.scope.tool_order = None
            return
        from ._tools import expected_call

        self.scope.tool_order = ToolOrder([expected_call(call) for call in calls])
