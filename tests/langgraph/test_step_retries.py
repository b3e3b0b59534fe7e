"""Memoized steps in nodes retry as `durable_core.step` does: same backoff, `StepRetriesExceeded`."""

from __future__ import annotations

from typing import Any

import pytest
from durable_langgraph import DurableCheckpointer, DurableGraph, step
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from lg_support import FRESH, ChainState, cfg

import durable_core
from durable_core import Engine, StepRetriesExceeded


def _one_node(node: Any, saver: DurableCheckpointer, name: str) -> DurableGraph:
    builder: StateGraph[Any] = StateGraph(ChainState)
    builder.add_node("work", node)
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    return DurableGraph(builder.compile(checkpointer=saver), name=name)


def test_a_step_that_keeps_failing_raises_step_retries_exceeded(
    engine: Engine, saver: DurableCheckpointer
) -> None:
    calls: list[str] = []

    @step(name="flaky", max_attempts=3, interval_seconds=0.001, retry_on=(ConnectionError,))
    def flaky() -> str:
        calls.append("flaky")
        raise ConnectionError(f"down {len(calls)}")

    def work(state: ChainState) -> dict[str, Any]:
        return {"items": [flaky()]}

    durable = _one_node(work, saver, "retries")
    with pytest.raises(StepRetriesExceeded) as raised:
        durable.invoke(FRESH, cfg("r1"))
    assert calls == ["flaky"] * 3
    assert [str(e) for e in raised.value.errors] == ["down 1", "down 2", "down 3"]
    assert "'flaky'" in str(raised.value)


def test_a_core_step_in_a_node_retries_then_its_result_is_memoized(
    engine: Engine, saver: DurableCheckpointer
) -> None:
    calls: list[str] = []

    @durable_core.step(name="lookup", max_attempts=2, interval_seconds=0.001)
    def lookup() -> str:
        calls.append("lookup")
        if len(calls) == 1:
            raise TimeoutError("slow")
        return "found"

    def work(state: ChainState) -> dict[str, Any]:
        found = lookup()
        return {"items": [found, str(interrupt(found))]}

    durable = _one_node(work, saver, "retried-memo")
    assert durable.invoke(FRESH, cfg("r2"))["__interrupt__"][0].value == "found"
    assert durable.invoke(Command(resume="ok"), cfg("r2"))["items"] == ["found", "ok"]
    assert calls == ["lookup", "lookup"]  # retried once, then replayed from its memo on resume


def test_one_attempt_raises_the_error_itself_and_an_interrupt_is_never_retried(
    engine: Engine, saver: DurableCheckpointer
) -> None:
    calls: list[str] = []

    @step(name="ask", max_attempts=3, interval_seconds=0.001)
    def ask() -> str:
        calls.append("ask")
        return str(interrupt("approve?"))

    @step(name="once")
    def once() -> str:
        raise ValueError("no retry")

    def work(state: ChainState) -> dict[str, Any]:
        answer = ask()
        if answer == "fail":
            once()
        return {"items": [answer]}

    durable = _one_node(work, saver, "interrupts")
    assert durable.invoke(FRESH, cfg("r3"))["__interrupt__"][0].value == "approve?"
    assert calls == ["ask"]  # the interrupt ended the node: no second attempt
    with pytest.raises(ValueError, match="no retry"):
        durable.invoke(Command(resume="fail"), cfg("r3"))


async def test_async_steps_raise_step_retries_exceeded(engine: Engine, saver: DurableCheckpointer) -> None:
    calls: list[str] = []

    @durable_core.step(name="afetch", max_attempts=2, interval_seconds=0.001)
    async def afetch() -> str:
        calls.append("afetch")
        raise ConnectionError("down")

    async def work(state: ChainState) -> dict[str, Any]:
        return {"items": [await afetch()]}

    durable = _one_node(work, saver, "aretries")
    with pytest.raises(StepRetriesExceeded) as raised:
        await durable.ainvoke(FRESH, cfg("r4"))
    assert calls == ["afetch", "afetch"] and len(raised.value.errors) == 2
