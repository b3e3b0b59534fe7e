"""LLM calls and tool calls as steps, each checked against its request on replay.

LLM calls: every reachable `BaseLLM`'s `call`/`acall` becomes a step. CrewAI's LLM hooks cannot
supply a response, so the adapter wraps the LLM object itself (an instance attribute, which
`BaseLLM.__setattr__` allows and `model_dump()` ignores). The wrapper sits outside CrewAI's
rate-limit retry, so one logical call is one step. Each LLM step is a model-call step
(`step(model_call=True)`): under a budget it is checked before the call is made, and it records
the usage CrewAI's provider responses reported (see `_usage`). A `BudgetExceeded` leaves the agent
loop as `BudgetStop` (a `BaseException`, so CrewAI's task retries cannot swallow it and call the
LLM again); the kickoff raises the `BudgetExceeded` itself.

Tool calls: every reachable tool's `_run` becomes a step, keyed by its arguments and its place in
the answer. Both of CrewAI's tool paths (ReAct text and native function calling) end in the tool
instance's `_run`, so wrapping it keeps CrewAI's events, usage counts, `result_as_answer`,
caching and output formatting intact. Delegation tools are left alone on purpose: the
coworker's own LLM and tool calls become steps, so a crash inside a delegated task replays
them instead of redoing the whole delegation.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from crewai.llms.base_llm import BaseLLM
from crewai.tools.agent_tools.base_agent_tools import BaseAgentTool
from crewai.tools.base_tool import BaseTool
from crewai.utilities.string_utils import sanitize_tool_name
from pydantic import BaseModel

from durable_core import current_workflow_id, in_workflow, step
from durable_core.errors import BudgetExceeded

from ._codec import decode_llm_answer, digest, encode_llm_answer, llm_request_fingerprint, to_jsonable
from ._errors import BudgetStop, CrewDivergenceError
from ._ownership import owns, set_owned
from ._state import ToolOrder, armed_context, current_scope, nested_scope, step_body
from ._usage import collect_usage, track_usage_of

__all__ = ["LLM_STEP", "TOOL_STEP_PREFIX", "expected_call", "wrap_llm", "wrap_tool"]

LLM_STEP = "crewai.llm"
TOOL_STEP_PREFIX = "crewai.tool."


# -- LLM calls -----------------------------------------------------------------------------------


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
            armed = armed_context(llm)  # a thread that lost the task's context (see durable_tool)
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
        self.scope.tool_order = ToolOrder([expected_call(call) for call in calls])


# -- tool calls ----------------------------------------------------------------------------------


def wrap_tool(tool: Any) -> None:
    """Make the tool's `run` and `_run` durable steps inside a durable kickoff (idempotent, copy-safe).

    Both are wrapped: the ReAct path reaches `_run` (through `CrewStructuredTool`), the native
    path calls `run`, which for `@tool` tools calls the function without passing through
    `_run`. Whichever is entered first is the step; the inner one runs plainly in its body.
    """
    if not isinstance(tool, BaseTool) or owns(tool, "_run"):
        return
    wrapper = _delegation if isinstance(tool, BaseAgentTool) else _durable
    for attribute in ("run", "_run"):
        set_owned(tool, attribute, wrapper(tool, getattr(type(tool), attribute).__get__(tool)))


def _delegation(tool: BaseTool, original: Callable[..., Any]) -> Callable[..., Any]:
    """A delegation is not a step itself: the coworker's own LLM and tool calls are.

    Parallel delegations from one manager answer still take their turn in the answer's order,
    each with a nested scope, so the coworkers' steps never interleave.
    """

    def delegate(*args: Any, **kwargs: Any) -> Any:
        scope = current_scope()
        if not in_workflow() or scope is None:
            return original(*args, **kwargs)
        order = scope.tool_order
        index = order.claim(sanitize_tool_name(tool.name), arguments_key(args, kwargs)) if order else None
        try:
            if order is not None and index is not None:
                order.wait_turn(index)
            with nested_scope(scope):
                return original(*args, **kwargs)
        finally:
            if order is not None and index is not None:
                order.finish(index)

    return delegate


def _durable(tool: BaseTool, original: Callable[..., Any]) -> Callable[..., Any]:
    step_name = TOOL_STEP_PREFIX + tool.name

    def durable_tool(*args: Any, **kwargs: Any) -> Any:
        if not in_workflow():
            armed = armed_context(tool)
            if armed is None:
                return original(*args, **kwargs)
            # CrewAI's async ReAct path runs sync tools through run_in_executor, which drops
            # the context; the task armed its tools with a snapshot of it.
            return armed.run(durable_tool, *args, **kwargs)
        scope = current_scope()
        if scope is None:
            return original(*args, **kwargs)
        args_key = arguments_key(args, kwargs)
        order = scope.tool_order
        index = order.claim(sanitize_tool_name(tool.name), args_key) if order is not None else None
        try:
            if order is not None and index is not None:
                order.wait_turn(index)

            def crewai_tool(arguments: str) -> dict[str, Any]:
                with step_body():
                    return {"args": arguments, "value": to_jsonable(_resolve(original(*args, **kwargs)))}

            recorded = step(name=step_name)(crewai_tool)(args_key)
        finally:
            if order is not None and index is not None:
                order.finish(index)
        if recorded.get("args") != args_key:
            raise CrewDivergenceError(
                current_workflow_id(),
                0,
                f"{step_name} with arguments {recorded.get('args')}",
                f"{step_name} with arguments {args_key}",
                task=scope.label,
                call=f"tool {tool.name!r}",
            )
        return recorded.get("value")

    return durable_tool


def arguments_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return digest({"args": to_jsonable(list(args)), "kwargs": to_jsonable(kwargs)})


def expected_call(call: Any) -> tuple[str, str]:
    """(tool name, arguments key) of a recorded native tool call, to order parallel calls."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        return ("", "")
    arguments: Any = function.get("arguments") or {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            arguments = {}
    return (sanitize_tool_name(str(function.get("name", ""))), arguments_key((), dict(arguments)))


def _resolve(result: Any) -> Any:
    """Await a coroutine returned by an async `@tool` before its result is recorded."""
    if not inspect.isawaitable(result):
        return result
    awaitable: Any = result
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(awaitable)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(contextvars.copy_context().run, asyncio.run, awaitable).result()
