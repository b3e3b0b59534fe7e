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

from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from ._memo import StepPolicy, active_scope

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
) -> Any:
    """Memoize a function called inside graph nodes, per node task (sync or async).

    ```python
    @durable_langgraph.step(name="search")
    def search(query: str) -> list[str]: ...
    ```
    The result is stored with the graph's serializer, so LangChain messages and pydantic
    models come back as themselves.
    """
    policy = StepPolicy(max_attempts, interval_seconds, backoff_rate, retry_on)

    def decorate(func: F) -> F:
        step_name = name or func.__qualname__
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                scope = active_scope()
                if scope is None:
                    return await func(*args, **kwargs)
                return await scope.acall(step_name, lambda: func(*args, **kwargs), policy)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scope = active_scope()
            if scope is None:
                return func(*args, **kwargs)
            return scope.call(step_name, lambda: func(*args, **kwargs), policy)

        return cast(F, wrapper)

    if fn is not None:
        return decorate(fn)
    return decorate


def durable_runnable(runnable: Runnable[Any, Any], *, name: str | None = None) -> Runnable[Any, Any]:
    """Wrap a chat model (after `bind_tools`) or a tool so each `invoke`/`ainvoke` is a memoized step.

    ```python
    model = durable_runnable(chat_model.bind_tools(tools), name="model")
    def agent(state): return {"messages": [model.invoke(state["messages"])]}
    ```
    """
    step_name = name or f"langgraph.{runnable.get_name()}"

    def call(value: Any, config: RunnableConfig) -> Any:
        scope = active_scope()
        if scope is None:
            return runnable.invoke(value, config)
        return scope.call(step_name, lambda: runnable.invoke(value, config))

    async def acall(value: Any, config: RunnableConfig) -> Any:
        scope = active_scope()
        if scope is None:
            return await runnable.ainvoke(value, config)
        return await scope.acall(step_name, lambda: runnable.ainvoke(value, config))

    return RunnableLambda(call, afunc=acall, name=step_name)
