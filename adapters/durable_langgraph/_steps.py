"""Step helpers for code inside graph nodes: a decorator and a wrapper for LangChain runnables.

Inside a `DurableGraph` run each call is recorded per node task (see `_memo`), so a node
re-executed after a crash or an `interrupt()` resume gets the recorded result instead of
calling the model or tool again. Elsewhere they are plain calls. `durable_core.step`
functions called inside nodes behave the same when the core provides its step interceptor hook.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from durable_core.extend import RetryPolicy

from ._memo import active_scope

__all__ = ["durable_runnable", "step"]

F = TypeVar("F", bound=Callable[..., Any])


@overload
def step(fn: F, /) -> F: ...
@overload
def step(
    *,
    name: str | None = None,
    max_attempts: int = 1,
    interval_seconds: float = 1.0,
    backoff_rate: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    model_call: bool = False,
) -> Callable[[F], F]: ...
def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    max_attempts: int = 1,
    interval_seconds: float = 1.0,
    backoff_rate: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    model_call: bool = False,
) -> Any:
    """Memoize a function called inside graph nodes, per node task (sync or async).

    ```python
    @durable_langgraph.step(name="search")
    def search(query: str) -> list[str]: ...

    @durable_langgraph.step(name="plan", model_call=True)
    def plan(messages: list[AnyMessage]) -> AIMessage:
        return chat_model.invoke(messages)
    ```
    The result is stored with the graph's serializer, so LangChain messages and pydantic
    models come back as themselves.

    Retries are `durable_core.step`'s: ``max_attempts`` tries, waiting ``interval_seconds``
    and then ``backoff_rate`` times longer before each next one, for exceptions in
    ``retry_on``; after the last failure it raises `StepRetriesExceeded` (each attempt's error in
    ``.errors``), with one attempt the error itself. An `interrupt()` is never retried, and a
    cancelled run stops between attempts.

    ``model_call=True``: the call is a model call of the run. Under the run's budget it is
    checked before it runs live, and it records the usage of the chat-model calls its body
    makes (their `AIMessage.usage_metadata`), else of the `AIMessage`(s) it returns, else what
    it reports with `durable_core.record_usage`, as one model call. A replayed call counts
    nothing again.
    """
    policy = RetryPolicy(
        max_attempts=max_attempts,
        interval_seconds=interval_seconds,
        backoff_rate=backoff_rate,
        retry_on=tuple(retry_on),
    )

    def decorate(func: F) -> F:
        step_name = name or func.__qualname__
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                scope = active_scope()
                if scope is None:
                    return await func(*args, **kwargs)
                return await scope.acall(
                    step_name, lambda: func(*args, **kwargs), policy, model_call=model_call
                )

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scope = active_scope()
            if scope is None:
                return func(*args, **kwargs)
            return scope.call(step_name, lambda: func(*args, **kwargs), policy, model_call=model_call)

        return cast(F, wrapper)

    if fn is not None:
        return decorate(fn)
    return decorate


def durable_runnable(
    runnable: Runnable[Any, Any], *, name: str | None = None, model_call: bool | None = None
) -> Runnable[Any, Any]:
    """Wrap a chat model (after `bind_tools`) or a tool so each `invoke`/`ainvoke` is a memoized step.

    ```python
    model = durable_runnable(chat_model.bind_tools(tools), name="model")
    def agent(state): return {"messages": [model.invoke(state["messages"])]}
    ```
    ``model_call`` (default: whether `runnable` is a chat model or a binding of one) makes each
    call a model call of the run: budget-checked before it runs live, recording the
    `usage_metadata` of the `AIMessage` it returns (see `step`).
    """
    step_name = name or f"langgraph.{runnable.get_name()}"
    is_model = _is_chat_model(runnable) if model_call is None else model_call

    def call(value: Any, config: RunnableConfig) -> Any:
        scope = active_scope()
        if scope is None:
            return runnable.invoke(value, config)
        return scope.call(step_name, lambda: runnable.invoke(value, config), model_call=is_model)

    async def acall(value: Any, config: RunnableConfig) -> Any:
        scope = active_scope()
        if scope is None:
            return await runnable.ainvoke(value, config)
        return await scope.acall(step_name, lambda: runnable.ainvoke(value, config), model_call=is_model)

    return RunnableLambda(call, afunc=acall, name=step_name)


def _is_chat_model(runnable: Any) -> bool:
    """A chat model, or a chat model behind `bind_tools` / `bind` / `with_config` / `with_retry`."""
    seen = 0
    while runnable is not None and seen < 8:
        if isinstance(runnable, BaseChatModel):
            return True
        runnable = getattr(runnable, "bound", None)
        seen += 1
    return False
