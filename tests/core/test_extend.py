"""durable_core.extend: the hooks adapters build on, each shown on a real engine."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import durable_core._budget
from durable_core import (
    Budget,
    Engine,
    StepRetriesExceeded,
    Usage,
    WorkflowCancelled,
    current_workflow_id,
    record_usage,
    step,
    workflow,
    workflow_options,
)
from durable_core.extend import (
    LiveHandoff,
    RetryPolicy,
    call_with_retries,
    call_with_retries_async,
    collect_usage,
    intercept_steps,
    leave_to_caller,
    pending_workflow_id,
    running_workflow,
    steps_inline,
    workflow_id_scope,
)

pytestmark = pytest.mark.backends("sqlite")

FAST = RetryPolicy(max_attempts=3, interval_seconds=0.001, backoff_rate=1.0)


class Flaky(Exception):
    pass


class Signal(Exception):
    """A framework's control-flow exception: never retried."""


def failing(log: list[int], error: Exception) -> Any:
    def call() -> Any:
        log.append(1)
        raise error

    return call


def test_call_with_retries_raises_step_retries_exceeded_with_every_error() -> None:
    log: list[int] = []
    with pytest.raises(StepRetriesExceeded) as raised:
        call_with_retries("search", failing(log, Flaky("down")), FAST)
    assert len(log) == 3
    assert [type(e) for e in raised.value.errors] == [Flaky, Flaky, Flaky]
    assert "'search'" in str(raised.value)


def test_call_with_retries_one_attempt_raises_the_error_itself_and_never_retries_signals() -> None:
    log: list[int] = []
    with pytest.raises(Flaky):
        call_with_retries("once", failing(log, Flaky("down")), RetryPolicy())
    with pytest.raises(Signal):
        call_with_retries("signal", failing(log, Signal()), FAST, never_retry=(Signal,))
    assert len(log) == 2
    attempts = iter([Flaky("a"), None])

    def second_time_lucky() -> str:
        error = next(attempts)
        if error is not None:
            raise error
        return "ok"

    assert call_with_retries("lucky", second_time_lucky, FAST) == "ok"


def test_call_with_retries_async() -> None:
    log: list[int] = []

    async def call() -> None:
        log.append(1)
        raise Flaky("down")

    async def signal() -> None:
        raise Signal()

    with pytest.raises(StepRetriesExceeded) as raised:
        asyncio.run(call_with_retries_async("search", call, FAST))
    assert len(log) == 3 and len(raised.value.errors) == 3
    with pytest.raises(Signal):
        asyncio.run(call_with_retries_async("signal", signal, FAST, never_retry=(Signal,)))


def test_live_handoff_in_context_is_claimed_once() -> None:
    handoff: LiveHandoff[str] = LiveHandoff("test")
    assert handoff.claim() is None
    with handoff.offer("crew"):
        assert handoff.claim() == "crew"
        assert handoff.claim() is None  # a workflow the body starts sees nothing
    handoff.offer_at("token", "config")
    assert handoff.claim_at("token") == "config"
    assert handoff.claim_at("token") is None
    handoff.offer_at("gone", "x")
    handoff.withdraw("gone")
    assert handoff.claim_at("gone") is None


handoff: LiveHandoff[list[str]] = LiveHandoff("test_caller_owned")
bodies: list[str] = []


@workflow(name="extend.caller_owned", auto_recover=False)
def caller_owned(x: int) -> int:
    live = handoff.claim()
    if live is None:
        bodies.append("left")
        leave_to_caller("only its caller can run it")
    live.append("ran")
    return x * 2


def test_leave_to_caller_keeps_the_run_pending_until_its_caller_calls_again(engine: Engine) -> None:
    bodies.clear()
    with workflow_options(workflow_id="owned-1"):
        engine.start_workflow(caller_owned, 21)
    deadline = time.monotonic() + 10
    while not bodies and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert bodies == ["left"]
    assert engine.get_workflow_status("owned-1").status == "PENDING"
    live: list[str] = []
    with handoff.offer(live), workflow_options(workflow_id="owned-1"):
        assert caller_owned(21) == 42
    assert live == ["ran"]
    assert engine.get_workflow_status("owned-1").status == "SUCCESS"


@step()
def recorded_step(x: int) -> int:
    return x + 1


@workflow(name="extend.inline")
def inline_steps() -> int:
    with steps_inline():
        a = recorded_step(1)
    return a + recorded_step(2)


def test_steps_inline_runs_steps_unrecorded(engine: Engine) -> None:
    with workflow_options(workflow_id="inline-1"):
        assert inline_steps() == 5
    assert [s.name for s in engine.list_steps("inline-1")] == [recorded_step.__qualname__]


@workflow(name="extend.intercepted")
def intercepted() -> list[Any]:
    seen: list[Any] = []

    def interceptor(defn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        seen.append([defn.name, RetryPolicy.of_step(defn).max_attempts])
        return defn.fn(*args, **kwargs) * 10

    with intercept_steps(interceptor):
        value = recorded_step(1)
    return [value, seen]


def test_intercept_steps_routes_step_calls(engine: Engine) -> None:
    assert intercepted() == [20, [[recorded_step.__qualname__, 1]]]


@workflow(name="extend.named")
def named() -> str:
    return current_workflow_id()


def test_workflow_id_scope_names_the_workflow_unless_the_caller_did(engine: Engine) -> None:
    with workflow_id_scope("adapter-id") as chosen:
        assert chosen == "adapter-id" and pending_workflow_id() == "adapter-id"
        assert named() == "adapter-id"
    with workflow_options(workflow_id="user-id", priority=3), workflow_id_scope("adapter-id") as chosen:
        assert chosen == "user-id"
        assert named() == "user-id"
    with workflow_options(timeout_seconds=60), workflow_id_scope("timed"):
        assert named() == "timed"
    assert engine.get_workflow_status("timed").deadline_at is not None  # the enclosing timeout applies
    assert engine.get_workflow_status("adapter-id").deadline_at is None


def test_workflow_id_scope_budget_precedence(engine: Engine) -> None:
    adapter_budget = Budget(max_model_calls=5)
    with workflow_id_scope("budget-own", budget=adapter_budget):
        named()
    with (
        workflow_options(budget=Budget(max_model_calls=9)),
        workflow_id_scope("budget-user", budget=adapter_budget),
    ):
        named()
    assert engine.raise_budget("budget-own", max_cost_usd=1.0).max_model_calls == 5
    assert engine.raise_budget("budget-user", max_cost_usd=1.0).max_model_calls == 9


@workflow(name="extend.unsequenced")
def unsequenced() -> list[Any]:
    run = running_workflow()
    assert run is not None and run.workflow_id == current_workflow_id() and not run.has_budget
    call = run.begin_model_call(RuntimeError)
    collected: list[Usage] = []
    with collect_usage(collected):
        record_usage(Usage(model="m", input_tokens=3, output_tokens=4))
    call.record("adapter.model", value={"node": "n"}, usages=collected)
    call.record("adapter.model", value={"node": "again"}, usages=collected)  # recorded once
    return [recorded_step(1)]


def test_unsequenced_model_calls_are_recorded_outside_the_step_sequence(engine: Engine) -> None:
    assert running_workflow() is None
    with workflow_options(workflow_id="unseq-1"):
        assert unsequenced() == [2]
    steps = {s.step_id: s.name for s in engine.list_steps("unseq-1")}
    assert steps == {-1: "adapter.model", 1: recorded_step.__qualname__}
    usage = engine.get_workflow_status("unseq-1").usage
    assert usage is not None and usage.model_calls == 1 and usage.tokens == 7


@workflow(name="extend.refused")
def refused() -> str:
    run = running_workflow()
    assert run is not None and run.has_budget
    run.begin_model_call(RuntimeError).record("adapter.model", usages=[Usage(model="m")])
    try:
        run.begin_model_call(lambda reason: WorkflowCancelled(current_workflow_id(), reason))
    except WorkflowCancelled as error:
        return error.reason
    return "allowed"


def test_a_budget_refuses_an_unsequenced_model_call(engine: Engine) -> None:
    with workflow_options(budget=Budget(max_model_calls=1, on_exceeded="fail")):
        reason = refused()
    assert "model call" in reason


@workflow(name="extend.race")
def racing_calls() -> str:
    """Three parallel calls under max_model_calls=2, made deterministic: the second records and
    leaves the in-flight count while the third's budget check runs, right after it read the
    recorded calls (the window a parallel node's call hit under load)."""
    run = running_workflow()
    assert run is not None
    run.begin_model_call(RuntimeError).record("adapter.model", usages=[Usage(model="m")])
    second = run.begin_model_call(RuntimeError)
    original = durable_core._budget.tree_totals  # pyright: ignore[reportPrivateUsage]

    def totals_then_second_finishes(engine: Any, root: str) -> Any:
        totals = original(engine, root)
        second.record("adapter.model", usages=[Usage(model="m")])
        return totals

    durable_core._budget.tree_totals = totals_then_second_finishes  # pyright: ignore[reportPrivateUsage]
    try:
        run.begin_model_call(lambda reason: WorkflowCancelled(current_workflow_id(), reason))
    except WorkflowCancelled as error:
        return error.reason
    finally:
        durable_core._budget.tree_totals = original  # pyright: ignore[reportPrivateUsage]
    return "allowed"


def test_a_call_finishing_during_a_budget_check_is_still_counted(engine: Engine) -> None:
    with workflow_options(workflow_id="race-1", budget=Budget(max_model_calls=2, on_exceeded="fail")):
        reason = racing_calls()
    assert reason == "2 of max_model_calls=2 model calls"
    usage = engine.get_workflow_status("race-1").usage
    assert usage is not None and usage.model_calls == 2


def test_one_step_name_serves_several_functions_as_adapters_use_it() -> None:
    """Adapters decorate a step per call, and name a sync and an async function alike."""

    def sync_body() -> int:
        return 1

    async def async_body() -> int:
        return 2

    assert step(name="extend.shared")(sync_body)() == 1
    assert asyncio.run(step(name="extend.shared")(async_body)()) == 2
