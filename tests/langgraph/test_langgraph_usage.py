"""Usage of model calls inside graph nodes and budgets on DurableGraph runs (both databases).

Scripted chat models report usage the way LangChain's provider integrations do (an `AIMessage`
with ``usage_metadata`` and ``response_metadata``); nothing reaches a model provider.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import operator
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
from durable_langgraph import DurableCheckpointer, DurableGraph, durable_runnable, step
from genai_prices import Usage as PricedUsage
from genai_prices import calc_price
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, StateGraph
from lg_support import MODEL_CALLS, ScriptedChatModel, cfg
from typing_extensions import TypedDict

import durable_core
from durable_core import Budget, BudgetExceeded, Engine, Usage, record_usage, workflow, workflow_options
from durable_core.testing import run_script, wait_until_waiting


class ItemsState(TypedDict):
    items: Annotated[list[str], operator.add]


EMPTY: ItemsState = {"items": []}
PLAN_PRICE = float(
    calc_price(
        PricedUsage(input_tokens=1000, output_tokens=200), "gpt-4o-mini", provider_id="openai"
    ).total_price
)


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    MODEL_CALLS.clear()


def _runs(engine: Engine, durable: DurableGraph) -> list[Any]:
    return engine.list_workflows(name=[durable.workflow_name, durable.workflow_name + ":async"])


def _only_run(engine: Engine, durable: DurableGraph) -> Any:
    [run] = _runs(engine, durable)
    return run


# -- usage -------------------------------------------------------------------------------------


def usage_graph(saver: DurableCheckpointer, *, asynchronous: bool) -> DurableGraph:
    """Five nodes, one model call each, reported five ways:

    ask      a chat model called directly in the node (seen by the run's callback handler)
    plan     a `durable_runnable` chat model (a memoized model-call step), priced gpt-4o-mini
    tally    a `durable_core.step(model_call=True)` that reports with `record_usage`
    quiet    a scripted chat model that reports no usage: model known, tokens unknown
    handmade a `durable_langgraph.step(model_call=True)` returning an AIMessage it built itself
    """
    plain = ScriptedChatModel()
    priced = ScriptedChatModel(
        model_name="gpt-4o-mini", provider="openai", input_tokens=1000, output_tokens=200, cache_read=0
    )
    planner = durable_runnable(priced, name="plan")
    quiet = ScriptedChatModel(model_name="silent-chat", silent=True)

    @durable_core.step(name="tally_model", model_call=True)
    def tally(prompt: str) -> str:
        MODEL_CALLS.append(prompt)
        record_usage(
            Usage(model="fake-1", provider="scripted", input_tokens=7, output_tokens=3, cost_usd=0.5)
        )
        return f"tallied {prompt}"

    @step(name="handmade", model_call=True)
    def handmade(prompt: str) -> AIMessage:
        MODEL_CALLS.append(prompt)
        return AIMessage(
            content=f"made {prompt}",
            usage_metadata={"input_tokens": 4, "output_tokens": 1, "total_tokens": 5},
            response_metadata={"model_name": "hand-1"},
        )

    @durable_core.step(name="atally_model", model_call=True)
    async def atally(prompt: str) -> str:
        MODEL_CALLS.append(prompt)
        record_usage(
            Usage(model="fake-1", provider="scripted", input_tokens=7, output_tokens=3, cost_usd=0.5)
        )
        return f"tallied {prompt}"

    @step(name="ahandmade", model_call=True)
    async def ahandmade(prompt: str) -> AIMessage:
        MODEL_CALLS.append(prompt)
        return AIMessage(
            content=f"made {prompt}",
            usage_metadata={"input_tokens": 4, "output_tokens": 1, "total_tokens": 5},
            response_metadata={"model_name": "hand-1"},
        )

    builder: StateGraph[Any] = StateGraph(ItemsState)
    if asynchronous:

        async def ask_a(state: ItemsState) -> dict[str, Any]:
            return {"items": [str((await plain.ainvoke("ask")).content)]}

        async def plan_a(state: ItemsState) -> dict[str, Any]:
            return {"items": [str((await planner.ainvoke("plan")).content)]}

        async def tally_a(state: ItemsState) -> dict[str, Any]:
            return {"items": [await atally("tally")]}

        async def quiet_a(state: ItemsState) -> dict[str, Any]:
            return {"items": [str((await quiet.ainvoke("quiet")).content)]}

        async def handmade_a(state: ItemsState) -> dict[str, Any]:
            return {"items": [str((await ahandmade("handmade")).content)]}

        nodes: dict[str, Callable[..., Any]] = {
            "ask": ask_a,
            "plan": plan_a,
            "tally": tally_a,
            "quiet": quiet_a,
            "handmade": handmade_a,
        }
    else:
        nodes = {
            "ask": lambda state: {"items": [str(plain.invoke("ask").content)]},
            "plan": lambda state: {"items": [str(planner.invoke("plan").content)]},
            "tally": lambda state: {"items": [tally("tally")]},
            "quiet": lambda state: {"items": [str(quiet.invoke("quiet").content)]},
            "handmade": lambda state: {"items": [str(handmade("handmade").content)]},
        }
    previous = START
    for name, node in nodes.items():
        builder.add_node(name, node)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return DurableGraph(
        builder.compile(checkpointer=saver), name=f"usage-{'async' if asynchronous else 'sync'}"
    )


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_each_model_call_in_a_node_records_its_usage_message_metadata(
    engine: Engine, saver: DurableCheckpointer, asynchronous: bool
) -> None:
    durable = usage_graph(saver, asynchronous=asynchronous)
    if asynchronous:
        output = asyncio.run(durable.ainvoke(EMPTY, cfg("u1")))
    else:
        output = durable.invoke(EMPTY, cfg("u1"))

    assert output["items"] == ["re:ask", "re:plan", "tallied tally", "re:quiet", "made handmade"]
    assert MODEL_CALLS == ["ask", "plan", "tally", "quiet", "handmade"]
    run = _only_run(engine, durable)
    usage = run.usage
    assert usage is not None
    assert usage.model_calls == 5 and usage.requests == 5
    assert (usage.input_tokens, usage.output_tokens) == (10 + 1000 + 7 + 4, 5 + 200 + 3 + 1)
    assert usage.cache_read_tokens == 2
    assert usage.unknown_tokens == 1  # the quiet model: unknown, not zero
    assert usage.unpriced == 3  # no provider named (ask, handmade) or nothing reported (quiet)
    assert usage.cost_usd == pytest.approx(PLAN_PRICE + 0.5)
    assert set(usage.by_model) == {"scripted-chat", "gpt-4o-mini", "fake-1", "silent-chat", "hand-1"}
    assert usage.by_model["gpt-4o-mini"].cost_usd == pytest.approx(PLAN_PRICE)
    assert usage.by_model["silent-chat"].unknown_tokens == 1

    # each call is a step row of its own, outside the run's step sequence, naming its node
    steps = engine.list_steps(run.workflow_id)
    calls = {s.output["node"]: s.name for s in steps if s.step_id < 0}
    tally_name = "atally_model" if asynchronous else "tally_model"
    handmade_name = "ahandmade" if asynchronous else "handmade"
    assert calls == {
        "ask": "langgraph.model",
        "plan": "plan",
        "tally": tally_name,
        "quiet": "langgraph.model",
        "handmade": handmade_name,
    }
    assert [s.name for s in steps if s.step_id > 0] == [
        "langgraph.base",
        "langgraph.run",
        "durable.set_event",
    ]
    assert engine.usage(group_by="model")["gpt-4o-mini"].model_calls == 1


def test_a_graph_run_inside_a_workflow_counts_in_its_tree(engine: Engine, saver: DurableCheckpointer) -> None:
    model = ScriptedChatModel()

    def ask(state: ItemsState) -> dict[str, Any]:
        return {"items": [str(model.invoke("a").content), str(model.invoke("b").content)]}

    builder: StateGraph[Any] = StateGraph(ItemsState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    durable = DurableGraph(builder.compile(checkpointer=saver), name="tree")

    @workflow(name="lg_usage_parent")
    def parent() -> int:
        durable.invoke(EMPTY, cfg("x1"))
        durable.invoke(EMPTY, cfg("x2"))
        return 2

    with workflow_options(workflow_id="lg-parent"):
        parent()

    children = _runs(engine, durable)
    assert len(children) == 2 and {c.parent_workflow_id for c in children} == {"lg-parent"}
    assert [c.usage.model_calls for c in children] == [2, 2]
    tree = engine.get_workflow_status("lg-parent").usage
    assert tree is not None and tree.model_calls == 4 and tree.tokens == 60
    assert engine.usage(group_by="name")["lg_usage_parent"].model_calls == 4


# -- budgets -----------------------------------------------------------------------------------


def chain_graph(
    saver: DurableCheckpointer, name: str, budget: Budget | None, *, asynchronous: bool = False
) -> DurableGraph:
    """m1 -> m2 -> m3 -> m4, each node one model call (tokens 15 each); m3's goes through durable_runnable."""
    model = ScriptedChatModel()
    wrapped = durable_runnable(model, name="m3.model")
    builder: StateGraph[Any] = StateGraph(ItemsState)
    names = ["m1", "m2", "m3", "m4"]
    for name_ in names:
        runnable = wrapped if name_ == "m3" else model

        def make(label: str, target: Any) -> Any:
            if asynchronous:

                async def anode(state: ItemsState) -> dict[str, Any]:
                    return {"items": [str((await target.ainvoke(label)).content)]}

                return anode

            def node(state: ItemsState) -> dict[str, Any]:
                return {"items": [str(target.invoke(label).content)]}

            return node

        builder.add_node(name_, make(name_, runnable))
    builder.add_edge(START, "m1")
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge("m4", END)
    return DurableGraph(builder.compile(checkpointer=saver), name=name, budget=budget)


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as error:
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def _run_id(engine: Engine, durable: DurableGraph, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _runs(engine, durable)
        if runs:
            return runs[0].workflow_id
        time.sleep(0.02)
    raise AssertionError("the run did not start")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_budget_pause_waits_durably_and_raise_budget_resumes_the_run(
    engine: Engine, saver: DurableCheckpointer, asynchronous: bool
) -> None:
    durable = chain_graph(saver, "paused", Budget(max_tokens=30), asynchronous=asynchronous)
    if asynchronous:
        thread, result = _in_thread(lambda: asyncio.run(durable.ainvoke(EMPTY, cfg("p1"))))
    else:
        thread, result = _in_thread(lambda: durable.invoke(EMPTY, cfg("p1")))
    run_id = _run_id(engine, durable)

    status = wait_until_waiting(engine, run_id)
    assert status.waiting is not None and status.waiting.kind == "budget"
    assert "max_tokens=30" in (status.waiting.detail or "")
    assert MODEL_CALLS == ["m1", "m2"]  # the third call was refused before it was made
    assert status.usage is not None and status.usage.model_calls == 2 and status.usage.tokens == 30
    assert thread.is_alive()  # invoke keeps waiting for the run
    assert durable.waiting_runs("p1") == []  # not an interrupt: nothing to send it

    engine.raise_budget(run_id, max_tokens=45)  # room for one more call, then it pauses again
    deadline = time.monotonic() + 30
    while len(MODEL_CALLS) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    again = wait_until_waiting(engine, run_id)
    assert again.waiting is not None and again.waiting.kind == "budget"
    assert MODEL_CALLS == ["m1", "m2", "m3"]

    engine.raise_budget(run_id, max_tokens=1000)
    thread.join(30)
    assert not thread.is_alive()
    assert "error" not in result, result
    assert result["value"]["items"] == ["re:m1", "re:m2", "re:m3", "re:m4"]
    assert MODEL_CALLS == ["m1", "m2", "m3", "m4"]  # no node's call was made twice
    final = engine.get_workflow_status(run_id)
    assert final.status == "SUCCESS"
    assert final.usage is not None and final.usage.model_calls == 4 and final.usage.tokens == 60
    names = [s.name for s in engine.list_steps(run_id) if s.step_id > 0]
    assert names.count("durable.budget") == 2 and names.count("langgraph.run") == 3


def test_a_fail_budget_ends_the_run_with_budget_exceeded(engine: Engine, saver: DurableCheckpointer) -> None:
    durable = chain_graph(saver, "failing", Budget(max_model_calls=3, on_exceeded="fail"))

    with pytest.raises(BudgetExceeded, match="max_model_calls=3"):
        durable.invoke(EMPTY, cfg("f1"))

    assert MODEL_CALLS == ["m1", "m2", "m3"]  # the fourth call was never made
    status = _only_run(engine, durable)
    assert status.status == "ERROR" and isinstance(status.error, BudgetExceeded)
    assert status.usage is not None and status.usage.model_calls == 3


def test_parallel_nodes_share_the_budget_and_none_repeats_its_call(
    engine: Engine, saver: DurableCheckpointer
) -> None:
    """Three parallel nodes under max_model_calls=2: one call is refused while two are in flight or
    recorded; its siblings finish and keep their writes; after the raise only the refused node runs."""
    model = ScriptedChatModel()
    builder: StateGraph[Any] = StateGraph(ItemsState)
    for name in ("p1", "p2", "p3"):

        def node(state: ItemsState, label: str = name) -> dict[str, Any]:
            return {"items": [str(model.invoke(label).content)]}

        builder.add_node(name, node)
        builder.add_edge(START, name)
        builder.add_edge(name, END)
    durable = DurableGraph(
        builder.compile(checkpointer=saver), name="fanout", budget=Budget(max_model_calls=2)
    )
    thread, result = _in_thread(lambda: durable.invoke(EMPTY, cfg("fan")))
    run_id = _run_id(engine, durable)
    status = wait_until_waiting(engine, run_id)
    assert status.waiting is not None and status.waiting.kind == "budget"
    assert len(MODEL_CALLS) == 2

    engine.raise_budget(run_id, max_model_calls=3)
    thread.join(30)
    assert "error" not in result, result
    assert sorted(result["value"]["items"]) == ["re:p1", "re:p2", "re:p3"]
    assert sorted(MODEL_CALLS) == ["p1", "p2", "p3"]  # each node's call made exactly once
    assert engine.get_workflow_status(run_id).usage.model_calls == 3


def test_a_budget_set_around_invoke_or_inherited_applies(engine: Engine, saver: DurableCheckpointer) -> None:
    durable = chain_graph(saver, "options", None)
    budget = Budget(max_model_calls=1, on_exceeded="fail")
    with workflow_options(workflow_id="opt-run", budget=budget), pytest.raises(BudgetExceeded):
        durable.invoke(EMPTY, cfg("o1"))
    assert MODEL_CALLS == ["m1"]
    MODEL_CALLS.clear()

    # a run the caller names still gets the graph's budget
    capped = chain_graph(saver, "capped", Budget(max_model_calls=2, on_exceeded="fail"))
    with workflow_options(workflow_id="named-run"), pytest.raises(BudgetExceeded):
        capped.invoke(EMPTY, cfg("o3"))
    assert MODEL_CALLS == ["m1", "m2"]
    assert engine.get_workflow_status("named-run").status == "ERROR"
    MODEL_CALLS.clear()

    own = chain_graph(saver, "own", Budget(max_model_calls=100))

    @workflow(name="lg_budget_parent")
    def parent() -> str:
        return ",".join(own.invoke(EMPTY, cfg("o2"))["items"])

    # the enclosing workflow's budget governs the graph run, not the graph's own (larger) budget
    budget = Budget(max_model_calls=2, on_exceeded="fail")
    with workflow_options(workflow_id="budget-parent", budget=budget), pytest.raises(BudgetExceeded):
        parent()
    assert MODEL_CALLS == ["m1", "m2"]
    assert engine.get_workflow_status("budget-parent").usage.model_calls == 2


# -- real process crashes ----------------------------------------------------------------------

HERE = Path(__file__).parent


def _app(database_url: str, log: Path, phase: str) -> subprocess.CompletedProcess[str]:
    return run_script(
        HERE.parent / "apps" / "langgraph_usage_app.py",
        database_url,
        str(log),
        phase,
        import_paths=[HERE, *sys.path],
    )


def _spawn(database_url: str, log: Path, phase: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    return subprocess.Popen(
        [sys.executable, str(HERE.parent / "apps" / "langgraph_usage_app.py"), database_url, str(log), phase],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.crash
def test_a_crash_and_replay_never_count_a_recorded_call_twice(database_url: str, tmp_path: Path) -> None:
    """Killed in node n2 after a direct model call and a memoized one: the restarted process
    replays n1 from its checkpoint and the memoized call from its memo (neither counted again),
    and makes the direct call again, which did reach the model twice and counts twice."""
    log = tmp_path / "calls.log"
    crashed = _app(database_url, log, "crash")
    assert crashed.returncode == 17, crashed.stderr[-3000:]
    assert log.read_text().split() == ["crash:model:n1", "crash:model:n2-direct", "crash:model:n2-memo"]

    resumed = _app(database_url, log, "recover")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["state"]["items"] == ["re:n1", "re:n2-direct", "re:n2-memo", "re:n3"]
    calls = log.read_text().split()
    assert calls[3:] == ["recover:model:n2-direct", "recover:model:n3"]
    # every call that reached the model counts once; nothing replayed counts
    assert result["usage"] == {"model_calls": len(calls), "tokens": 15 * len(calls)}
    with Engine(database_url) as engine:
        rows = [s for s in engine.list_steps(result["workflow_id"]) if s.step_id < 0]
        assert sorted(s.name for s in rows) == ["langgraph.model"] * 4 + ["n2.model"]


@pytest.mark.crash
def test_a_budget_pause_survives_sigkill_and_resumes_after_raise_budget(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    worker = _spawn(database_url, log, "pause")
    try:
        with Engine(database_url).connect() as client:
            [run] = _wait_for_runs(client)
            status = wait_until_waiting(client, run, timeout_seconds=60)
            assert status.waiting is not None and status.waiting.kind == "budget"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert log.read_text().split() == ["pause:model:n1", "pause:model:n2-direct", "pause:model:n2-memo"]

    restarted = _spawn(database_url, log, "recover")
    try:
        with Engine(database_url).connect() as client:
            status = wait_until_waiting(client, run, timeout_seconds=60)  # paused again, nothing spent
            assert status.waiting is not None and status.waiting.kind == "budget"
            assert status.usage is not None and status.usage.model_calls == 3
            client.raise_budget(run, max_model_calls=10)
        out, err = restarted.communicate(timeout=90)
        assert restarted.returncode == 0, err[-3000:]
    finally:
        if restarted.poll() is None:
            restarted.kill()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["state"]["items"] == ["re:n1", "re:n2-direct", "re:n2-memo", "re:n3"]
    assert log.read_text().split()[3:] == ["recover:model:n3"]  # only the refused call, once
    assert result["usage"] == {"model_calls": 4, "tokens": 60}


def _wait_for_runs(client: Engine, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [s.workflow_id for s in client.list_workflows(name="langgraph:usage")]
        if runs:
            return runs
        time.sleep(0.05)
    raise AssertionError("the run did not start")
