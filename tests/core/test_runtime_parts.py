"""Unit tests of the runtime's small parts: statuses, the retry policy, the registry of active runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from durable_core import StepRetriesExceeded
from durable_core._retry import RetryPolicy, attempt_async, attempt_sync
from durable_core._run import ActiveRuns, WorkflowRun
from durable_core._status import ACTIVE_STATES, TERMINAL_STATES, WorkflowState
from durable_core._waits import Waiters


def test_states_are_the_stored_strings() -> None:
    assert [state.value for state in WorkflowState] == [
        "PENDING",
        "ENQUEUED",
        "SUCCESS",
        "ERROR",
        "CANCELLED",
        "RETRIES_EXCEEDED",
    ]
    assert WorkflowState.SUCCESS == "SUCCESS"
    assert "ERROR" in TERMINAL_STATES
    assert set(WorkflowState) == TERMINAL_STATES | ACTIVE_STATES
    assert not TERMINAL_STATES & ACTIVE_STATES


class _Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("durable_core._retry.time.sleep", slept.append)
    return slept


def test_retry_waits_with_backoff_then_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    slept = _no_sleep(monkeypatch)
    checks: list[int] = []
    fn = _Flaky([ValueError("a"), ValueError("b")])
    attempts = RetryPolicy(max_attempts=3, interval_seconds=0.5, backoff_rate=3.0).start("s", "wf")
    assert attempt_sync(attempts, fn, lambda: checks.append(1)) == ("ok", None)
    assert (fn.calls, attempts.attempt, slept, len(checks)) == (3, 3, [0.5, 1.5], 2)


def test_retry_gives_up_with_every_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_sleep(monkeypatch)
    errors = [ValueError("a"), ValueError("b")]
    attempts = RetryPolicy(max_attempts=2, interval_seconds=0).start("fetch", "wf-1")
    value, error = attempt_sync(attempts, _Flaky(list(errors)))
    assert value is None and isinstance(error, StepRetriesExceeded)
    assert error.errors == errors and attempts.attempt == 2
    assert "Step 'fetch' of workflow 'wf-1' failed 2 times" in str(error)


def test_one_attempt_raises_the_error_itself_and_others_are_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept = _no_sleep(monkeypatch)
    boom = ValueError("boom")
    assert attempt_sync(RetryPolicy().start("s"), _Flaky([boom])) == (None, boom)
    key_error = KeyError("k")
    fn = _Flaky([ValueError("retried"), key_error])
    attempts = RetryPolicy(max_attempts=5, interval_seconds=0, retry_on=(ValueError,)).start("s")
    assert attempt_sync(attempts, fn) == (None, key_error)
    assert (fn.calls, attempts.attempt, slept) == (2, 2, [0])


def test_async_driver_runs_the_same_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr("durable_core._retry.asyncio.sleep", fake_sleep)
    flaky = _Flaky([ValueError("a"), ValueError("b"), ValueError("c")])

    async def call() -> str:
        return flaky()

    attempts = RetryPolicy(max_attempts=3, interval_seconds=1.0).start("s", "wf")
    value, error = asyncio.run(attempt_async(attempts, call))
    assert value is None and isinstance(error, StepRetriesExceeded)
    assert (flaky.calls, slept) == (3, [1.0, 2.0])


def test_retry_policy_checks_its_settings() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(backoff_rate=0)


class _Host:
    executor_id = "exec-1"


def _run(workflow_id: str, epoch: int) -> WorkflowRun:
    host: Any = _Host()
    return WorkflowRun(host, workflow_id, "wf", {}, None, owner_epoch=epoch)


def test_active_runs_newer_epoch_supersedes_and_release_keeps_the_newer() -> None:
    waiters = Waiters()
    active = ActiveRuns(waiters)
    old, new = _run("w", 1), _run("w", 2)
    with waiters.register("wake:w") as woken:
        assert active.register(old) is not None
        assert active.register(_run("w", 1)) is None  # same epoch: already runs here
        assert active.register(new) is not None
        assert woken.wait(0)  # the superseded body is woken to stop
    assert old.taken_over and old.cancel_reason is not None
    active.release(old)  # the stale run ending does not drop the newer one
    entry = active.get("w")
    assert entry is not None and entry[0] is new and "w" in active and active.ids() == ["w"]
    with waiters.register("done:w") as done:
        active.release(new)
        assert done.wait(0)
    assert "w" not in active and len(active) == 0


def test_active_runs_mark_cancelled() -> None:
    active = ActiveRuns(Waiters())
    run = _run("c", 0)
    active.register(run)
    active.mark_cancelled("c")
    active.mark_cancelled("absent")
    assert run.cancel_reason == "cancelled"
