"""The core's step retry policy, callable by adapters that run step-like calls of their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ._context import _current  # pyright: ignore[reportPrivateUsage]
from ._registry import StepDef
from ._runtime import Outcome, _attempts_async, _attempts_sync  # pyright: ignore[reportPrivateUsage]

__all__ = ["RetryPolicy", "call_with_retries", "call_with_retries_async"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """`@step`'s retry settings: attempts, first delay, backoff factor, exception types retried."""

    max_attempts: int = 1
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @classmethod
    def of_step(cls, defn: StepDef) -> RetryPolicy:
        """The retry settings of a `@step` (as an interceptor receives it)."""
        return cls(
            max_attempts=defn.max_attempts,
            interval_seconds=defn.interval_seconds,
            backoff_rate=defn.backoff_rate,
            retry_on=tuple(defn.retry_on),
        )


class _NoRetry(BaseException):
    """Carries an exception the caller never wants retried through the core's retry loop."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


class _Outside:
    """Stands in for a workflow context when the call runs outside any workflow."""

    workflow_id: str | None = None

    def check_alive(self) -> None:
        return None


def _definition(name: str, fn: Callable[[], Any], policy: RetryPolicy, is_async: bool) -> StepDef:
    return StepDef(
        name=name,
        fn=fn,
        is_async=is_async,
        max_attempts=policy.max_attempts,
        interval_seconds=policy.interval_seconds,
        backoff_rate=policy.backoff_rate,
        retry_on=policy.retry_on,
    )


def _context() -> Any:
    ctx = _current.get()
    return ctx if ctx is not None else _Outside()


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

    try:
        outcome = _attempts_sync(_definition(name, attempt, policy, False), _context(), (), {})
    except _NoRetry as carried:
        outcome = Outcome(error=carried.error)
    if outcome.error is not None:
        raise outcome.error
    return cast(T, outcome.value)


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

    try:
        outcome = await _attempts_async(_definition(name, attempt, policy, True), _context(), (), {})
    except _NoRetry as carried:
        outcome = Outcome(error=carried.error)
    if outcome.error is not None:
        raise outcome.error
    return cast(T, outcome.value)
