"""The core's step retry policy, callable by adapters that run step-like calls of their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from ._context import _current  # pyright: ignore[reportPrivateUsage]
from ._retry import RetryPolicy, attempt_async, attempt_sync

__all__ = ["RetryPolicy", "call_with_retries", "call_with_retries_async"]

T = TypeVar("T")


class _NoRetry(BaseException):
    """Carries an exception the caller never wants retried through the core's retry loop."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


def call_with_retries(
    name: str,
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    never_retry: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `fn` as `@step` retries its body: same backoff, same checks, same final error.

    Between attempts the running workflow is checked (a cancelled or timed-out workflow stops
    with `WorkflowCancelled`). After `policy.max_attempts` failures it raises
    `StepRetriesExceeded` naming `name`, with every attempt's exception in ``.errors`` (with one
    attempt, that attempt's exception itself). An exception of a type in `never_retry` (e.g. a
    framework's control-flow signal) is raised at once.
    """

    def attempt() -> T:
        try:
            return fn()
        except never_retry as error:
            raise _NoRetry(error) from None

    run = _current.get()
    attempts = policy.start(name, run.workflow_id if run is not None else None)
    try:
        value, error = attempt_sync(attempts, attempt, run.check_alive if run is not None else None)
    except _NoRetry as carried:
        value, error = None, carried.error
    if error is not None:
        raise error
    return cast(T, value)


async def call_with_retries_async(
    name: str,
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    never_retry: tuple[type[BaseException], ...] = (),
) -> T:
    """Async `call_with_retries`: `fn` returns an awaitable, the delays are `asyncio.sleep`."""

    async def attempt() -> T:
        try:
            return await fn()
        except never_retry as error:
            raise _NoRetry(error) from None

    run = _current.get()
    attempts = policy.start(name, run.workflow_id if run is not None else None)
    try:
        value, error = await attempt_async(attempts, attempt, run.check_alive if run is not None else None)
    except _NoRetry as carried:
        value, error = None, carried.error
    if error is not None:
        raise error
    return cast(T, value)
