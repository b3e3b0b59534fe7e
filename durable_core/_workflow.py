"""The `@workflow` and `@step` decorators.

Decorated functions keep their signature and their sync/async nature (also for
`inspect.iscoroutinefunction`, which frameworks use to decide whether to await a tool).
Async wrappers take their step id synchronously at call time, so
`asyncio.gather(a(), b())` numbers `a` before `b`.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast, overload

from ._registry import STEP_WORKFLOW_PREFIX, StepDef, WorkflowDef, register_step, register_workflow
from ._runtime import run_step_sync, start_step_async
from ._starting import call_async, call_sync

__all__ = ["step", "workflow"]

P = ParamSpec("P")
R = TypeVar("R")


class _AsyncCallable:
    """An async-looking callable whose call runs synchronous bookkeeping, then returns a coroutine."""

    def __init__(
        self, fn: Callable[..., Any], call: Callable[[tuple[Any, ...], dict[str, Any]], Any]
    ) -> None:
        functools.update_wrapper(self, fn)
        self.__code__ = fn.__code__
        self.__defaults__ = fn.__defaults__
        self.__kwdefaults__ = fn.__kwdefaults__
        self._call = call
        mark = getattr(inspect, "markcoroutinefunction", None)
        if mark is not None:
            mark(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(args, kwargs)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return self if instance is None else types.MethodType(self, instance)

    def __repr__(self) -> str:
        return f"<durable {getattr(self, '__qualname__', '?')}>"


def _check_function(fn: Any, decorator: str) -> None:
    if not callable(fn) or not hasattr(fn, "__code__"):
        raise TypeError(f"@{decorator} applies to functions, got {fn!r}")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"@{decorator} cannot decorate a generator function {fn.__qualname__!r}")


@overload
def workflow(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def workflow(
    *, name: str | None = None, max_recovery_attempts: int | None = 50, auto_recover: bool = True
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def workflow(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    max_recovery_attempts: int | None = 50,
    auto_recover: bool = True,
) -> Any:
    """Make a function a durable workflow.

    Example:
        ```python
        @workflow()
        def research(topic: str) -> Report:
            notes = search(topic)        # a @step: recorded, never re-run after a crash
            return summarize(notes)      # another @step
        ```

    Calling it runs it durably on the launched engine (its id from `workflow_options`, else new).
    After a crash, the engine re-runs it from the top with its recorded inputs; completed steps
    return their recorded outcomes.

    Args:
        name: the registry name, default `fn.__qualname__`; must be unique in the process.
        max_recovery_attempts: recoveries allowed before the workflow is parked as RETRIES_EXCEEDED
            (None: unlimited).
        auto_recover: False leaves an interrupted run PENDING for its caller to resume by calling the
            workflow again with the same id (for bodies that need live objects only the caller has,
            such as a CrewAI crew).
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        _check_function(func, "workflow")
        is_async = inspect.iscoroutinefunction(func)
        defn = WorkflowDef(
            name=name or func.__qualname__,
            fn=func,
            is_async=is_async,
            max_recovery_attempts=max_recovery_attempts,
            auto_recover=auto_recover,
        )
        register_workflow(defn)
        wrapper: Any
        if is_async:
            wrapper = _AsyncCallable(func, lambda args, kwargs: call_async(defn, args, kwargs))
        else:

            def call(*args: Any, **kwargs: Any) -> Any:
                return call_sync(defn, args, kwargs)

            wrapper = functools.wraps(func)(call)
        wrapper.__durable_workflow__ = defn
        return cast(Callable[P, R], wrapper)

    return decorate(fn) if fn is not None else decorate


@overload
def step(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def step(
    *,
    name: str | None = None,
    max_attempts: int = 1,
    interval_seconds: float = 1.0,
    backoff_rate: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    model_call: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    max_attempts: int = 1,
    interval_seconds: float = 1.0,
    backoff_rate: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    model_call: bool = False,
) -> Any:
    """Make a function a step: inside a workflow its outcome is recorded and replayed, never re-run.

    Example:
        ```python
        @step(max_attempts=3, retry_on=(httpx.TransportError,))
        async def fetch(url: str) -> str: ...
        ```

    Outside a workflow a step is a plain call. Outputs are decoded on replay by the return annotation.

    Args:
        max_attempts: tries before giving up; the last failure raises `StepRetriesExceeded` (with
            `.errors`) when more than one attempt was allowed, else the exception itself.
        interval_seconds, backoff_rate: the wait before the second attempt, and its growth factor.
        retry_on: exception types worth retrying; any other exception is raised after one attempt.
        model_call: the step is a model request: a workflow's budget is checked before it runs, and
            the usage its body reports with `record_usage` is recorded with its outcome.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if interval_seconds < 0 or backoff_rate <= 0:
        raise ValueError("interval_seconds must be >= 0 and backoff_rate > 0")
    retry_types = tuple(retry_on)

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        _check_function(func, "step")
        is_async = inspect.iscoroutinefunction(func)
        defn = StepDef(
            name=name or func.__qualname__,
            fn=func,
            is_async=is_async,
            max_attempts=max_attempts,
            interval_seconds=interval_seconds,
            backoff_rate=backoff_rate,
            retry_on=retry_types,
            model_call=model_call,
            make_workflow=_one_step_workflow,
        )
        wrapper: Any
        if is_async:
            wrapper = _AsyncCallable(func, lambda args, kwargs: start_step_async(defn, args, kwargs))
        else:

            def call(*args: Any, **kwargs: Any) -> Any:
                return run_step_sync(defn, args, kwargs)

            wrapper = functools.wraps(func)(call)
        wrapper.__durable_step__ = defn
        register_step(defn)
        return cast(Callable[P, R], wrapper)

    return decorate(fn) if fn is not None else decorate


def _one_step_workflow(step_def: StepDef) -> WorkflowDef:
    """The one-step workflow that runs a step on its own (for `queue.enqueue(step_fn, ...)`)."""
    runner: Callable[..., Any]
    if step_def.is_async:

        async def run_async(*args: Any, **kwargs: Any) -> Any:
            return await start_step_async(step_def, args, kwargs)

        runner = run_async
    else:

        def run_sync(*args: Any, **kwargs: Any) -> Any:
            return run_step_sync(step_def, args, kwargs)

        runner = run_sync
    runner.__annotations__ = dict(getattr(step_def.fn, "__annotations__", {}))
    runner.__durable_step_def__ = step_def  # type: ignore[attr-defined]
    runner.__wrapped__ = step_def.fn  # type: ignore[attr-defined]  # signature and hints of the step
    return WorkflowDef(
        name=f"{STEP_WORKFLOW_PREFIX}{step_def.name}",
        fn=runner,
        is_async=step_def.is_async,
        max_recovery_attempts=50,
    )
