"""The step retry policy: one implementation, driven by a sync or an async loop.

`Attempts` is the state machine (count, collected errors, next delay, the final error); the
drivers `attempt_sync` / `attempt_async` only differ in how they call and how they wait. `@step`
runs its body through them, and so do adapters' step-like calls (`durable_core.extend`), so every
retried call ends the same way: the error itself after one allowed attempt, else
`StepRetriesExceeded` with every error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import StepRetriesExceeded

__all__ = ["Attempts", "RetryPolicy", "attempt_async", "attempt_sync"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often a failing call is tried: `max_attempts` tries, waiting `interval_seconds` before the
    second and `backoff_rate` times longer before each next one, for exceptions in `retry_on`."""

    max_attempts: int = 1
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.interval_seconds < 0 or self.backoff_rate <= 0:
            raise ValueError("interval_seconds must be >= 0 and backoff_rate > 0")

    @classmethod
    def of_step(cls, defn: Any) -> RetryPolicy:
        """The retry settings of a `@step` definition (as an interceptor receives it)."""
        return cls(
            max_attempts=defn.max_attempts,
            interval_seconds=defn.interval_seconds,
            backoff_rate=defn.backoff_rate,
            retry_on=tuple(defn.retry_on),
        )

    def start(self, name: str, workflow_id: str | None = None) -> Attempts:
        return Attempts(self, name, workflow_id)


class Attempts:
    """The attempts of one call under a policy. After a failure, `failed(exc)` says how long to wait
    before the next attempt, or None to stop; then `error` is what the call ends with."""

    __slots__ = ("_delay", "_errors", "_last", "attempt", "name", "policy", "workflow_id")

    def __init__(self, policy: RetryPolicy, name: str, workflow_id: str | None) -> None:
        self.policy = policy
        self.name = name
        self.workflow_id = workflow_id
        self.attempt = 1
        self._delay = policy.interval_seconds
        self._errors: list[BaseException] = []
        self._last: BaseException | None = None

    def failed(self, exc: BaseException) -> float | None:
        self._last = exc
        if not isinstance(exc, self.policy.retry_on):
            return None
        self._errors.append(exc)
        if self.attempt >= self.policy.max_attempts:
            return None
        delay = self._delay
        self._delay *= self.policy.backoff_rate
        self.attempt += 1
        return delay

    @property
    def error(self) -> BaseException:
        """The error the call ends with (after `failed` returned None)."""
        last = self._last
        assert last is not None
        if not isinstance(last, self.policy.retry_on) or self.policy.max_attempts == 1:
            return last
        errors = self._errors
        where = f" of workflow {self.workflow_id!r}" if self.workflow_id is not None else ""
        return StepRetriesExceeded(
            f"Step {self.name!r}{where} failed {len(errors)} times; last error: "
            f"{type(errors[-1]).__name__}: {errors[-1]}",
            errors,
            workflow_id=self.workflow_id,
        )


def attempt_sync(
    attempts: Attempts, fn: Callable[[], T], before_retry: Callable[[], None] | None = None
) -> tuple[T | None, BaseException | None]:
    """Call `fn` until it returns or the policy gives up: (value, None) or (None, error)."""
    while True:
        try:
            return fn(), None
        except Exception as exc:
            delay = attempts.failed(exc)
            if delay is None:
                return None, attempts.error
            if before_retry is not None:
                before_retry()
            time.sleep(delay)


async def attempt_async(
    attempts: Attempts, fn: Callable[[], Awaitable[T]], before_retry: Callable[[], None] | None = None
) -> tuple[T | None, BaseException | None]:
    while True:
        try:
            return await fn(), None
        except Exception as exc:
            delay = attempts.failed(exc)
            if delay is None:
                return None, attempts.error
            if before_retry is not None:
                before_retry()
            await asyncio.sleep(delay)
