"""DurableGraph in one process: runs as workflows, interrupts as durable waits, memoized node steps."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import pytest
from durable_langgraph import (
    RESUME_TOPIC,
    DurableCheckpointer,
    DurableGraph,
    GraphNotDurable,
    durable_runnable,
    step,
)
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, interrupt
from lg_support import FRESH, ChainState, approval_builder, cfg, chain_builder
from typing_extensions import TypedDict

import durable_core
from durable_core import Engine, workflow_options


def _runs(engine: Engine, durable: DurableGraph) -> list[Any]:
    return engine.list_workflows(name=[durable.workflow_name, durable.workflow_name + ":async"])


def test_invoke_and_stream_run_as_durable_workflows(engine: Engine, saver: DurableCheckpointer) -> None:
    durable = DurableGraph(chain_builder().compile(checkpointer=saver), name="chain")
    expected = {"count": 5, "items": ["n1", "n2", "n3", "n4", "n5"]}
    assert durable.invoke(FRESH, cfg("t1")) == expected
    chunks = list(durable.stream(FRESH, cfg("t2"), stream_mode="updates"))
    assert [next(iter(c)) for c in chunks] == ["n1", "n2", "n3", "n4", "n5"]
    # LangGraph keyword arguments pass through: "exit" saves one checkpoint per run.
    assert durable.invoke(FRESH, cfg("t3"), durability="exit") == expected
    assert len(list(durable.get_state_history(cfg("t3")))) == 1
    runs = _runs(engine, durable)
    assert len(runs) == 3 and {r.status for r in runs} == {"SUCCESS"}
    assert all(r.workflow_id.startswith("lg:chain:") for r in runs)
    steps = [s.name for s in engine.list_steps(runs[0].workflow_id)]
    assert steps[:2] == ["langgraph.base", "langgraph.run"]


async def test_ainvoke_and_astream(engine: Engine, saver: DurableCheckpointer) -> None:
    durable = DurableGraph(chain_builder(3).compile(checkpointer=saver), name="achain")
    assert await durable.ainvoke(FRESH, cfg("a1")) == {"count": 3, "items": ["n1", "n2", "n3"]}
    values = [c async for c in durable.astream(FRESH, cfg("a2"), stream_mode="values")]
    assert values[-1] == {"count": 3, "items": ["n1", "n2", "n3"]}
    runs = await engine.list_workflows_async(name=durable.workflow_name + ":async")
    assert len(runs) == 2 and {r.status for r in runs} == {"SUCCESS"}


def test_workflow_options_names_the_run(engine: Engine, saver: DurableCheckpointer) -> None:
    durable = DurableGraph(chain_builder(2).compile(checkpointer=saver), name="named")
    with workflow_options(workflow_id="order-42"):
        durable.invoke(FRESH, cfg("n"))
    assert engine.get_workflow_status("order-42").status == "SUCCESS"


def test_interrupt_waits_durably_and_resumes_with_a_command(
    engine: Engine, saver: DurableCheckpointer
) -> None:
    durable = DurableGraph(approval_builder().compile(checkpointer=saver), name="approval")
    out = durable.invoke(FRESH, cfg("i1"))
    assert out["__interrupt__"][0].value == {"question": "publish?", "count": 1}
    waiting = engine.list_workflows(waiting=True)
    assert [w.workflow_id for w in waiting] == durable.waiting_runs("i1")
    assert waiting[0].waiting is not None and waiting[0].status == "PENDING"
    out = durable.invoke(Command(resume="yes"), cfg("i1"))
    assert out == {"count": 2, "items": ["draft", "approved:yes", "publish"]}
    assert engine.get_workflow_status(waiting[0].workflow_id).status == "SUCCESS"
    assert engine.list_workflows(waiting=True) == []
    assert len(_runs(engine, durable)) == 1  # the resume continued the same durable run


def test_resume_delivered_through_the_engine(engine: Engine, saver: DurableCheckpointer) -> None:
    durable = DurableGraph(approval_builder().compile(checkpointer=saver), name="approval2")
    durable.invoke(FRESH, cfg("i2"))
    [run_id] = durable.waiting_runs("i2")
    engine.send(run_id, "from-the-web", topic=RESUME_TOPIC)  # e.g. a web front end, no graph in that process
    outcome = engine.retrieve_workflow(run_id).get_result(timeout_seconds=30)
    assert outcome["status"] == "done"
    assert durable.get_state(cfg("i2")).values["items"] == ["draft", "approved:from-the-web", "publish"]


async def test_async_interrupt_and_resume(engine: Engine, saver: DurableCheckpointer) -> None:
    durable = DurableGraph(approval_builder().compile(checkpointer=saver), name="approval3")
    out = await durable.ainvoke(FRESH, cfg("i3"))
    assert "__interrupt__" in out
    assert len(await asyncio.to_thread(durable.waiting_runs, "i3")) == 1
    out = await durable.ainvoke(Command(resume="ok"), cfg("i3"))
    assert out["items"] == ["draft", "approved:ok", "publish"]


def test_new_input_supersedes_an_interrupted_run(engine: Engine, saver: DurableCheckpointer) -> None:
    durable = DurableGraph(approval_builder().compile(checkpointer=saver), name="approval4")
    durable.invoke(FRESH, cfg("i4"))
    [old] = durable.waiting_runs("i4")
    durable.invoke(FRESH, cfg("i4"))
    assert engine.get_workflow_status(old).status == "CANCELLED"
    assert len(durable.waiting_runs("i4")) == 1


def test_core_steps_inside_a_node_are_memoized_per_task_across_an_interrupt(
    engine: Engine, saver: DurableCheckpointer
) -> None:
    calls: list[str] = []

    @durable_core.step(name="lookup")
    def lookup(key: str) -> str:
        calls.append(key)
        return f"value-of-{key}"

    @step(name="adapter-step")
    def enrich(value: str) -> str:
        calls.append(f"enrich:{value}")
        return value.upper()

    def ask(state: ChainState) -> dict[str, Any]:
        found = lookup("a")  # before the interrupt: the node re-runs on resume, this must not
        loud = enrich(found)
        answer = interrupt(loud)
        return {"items": [found, loud, str(answer)]}

    builder: StateGraph[Any] = StateGraph(ChainState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    durable = DurableGraph(builder.compile(checkpointer=saver), name="memo")
    out = durable.invoke(FRESH, cfg("m"))
    assert out["__interrupt__"][0].value == "VALUE-OF-A"
    assert saver.store.thread_stats("m")["lg_memos_rows"] == 2  # kept while the run waits
    out = durable.invoke(Command(resume=42), cfg("m"))
    assert out["items"] == ["value-of-a", "VALUE-OF-A", "42"]
    assert calls == ["a", "enrich:value-of-a"]  # once each, though the node ran twice
    assert saver.store.thread_stats("m")["lg_memos_rows"] == 0  # a finished run's memos are dropped
    # Outside a DurableGraph run the same functions are plain calls.
    assert lookup("b") == "value-of-b" and calls[-1] == "b"


class _Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def test_durable_runnable_memoizes_a_chat_model_call(engine: Engine, saver: DurableCheckpointer) -> None:
    responses = [AIMessage(content="first answer"), AIMessage(content="SECOND CALL: must not happen")]
    raw_model = FakeMessagesListChatModel(responses=responses)
    model = durable_runnable(raw_model, name="model")

    def agent(state: _Chat) -> dict[str, Any]:
        reply = model.invoke(state["messages"])
        approved = interrupt({"draft": reply.content})
        return {"messages": [reply, HumanMessage(content=f"approved={approved}")]}

    builder: StateGraph[Any] = StateGraph(_Chat)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    durable = DurableGraph(builder.compile(checkpointer=saver), name="chat")
    out = durable.invoke({"messages": [HumanMessage(content="hi")]}, cfg("c"))
    assert out["__interrupt__"][0].value == {"draft": "first answer"}
    out = durable.invoke(Command(resume=True), cfg("c"))
    assert [m.content for m in out["messages"]] == ["hi", "first answer", "approved=True"]
    assert isinstance(out["messages"][1], AIMessage)  # replayed as the model's own message type
    assert raw_model.i == 1  # the fake model advanced once: the call was not repeated


def test_errors_propagate_and_are_recorded(engine: Engine, saver: DurableCheckpointer) -> None:
    def boom(state: ChainState) -> dict[str, Any]:
        raise ValueError("node failed")

    builder: StateGraph[Any] = StateGraph(ChainState)
    builder.add_node("boom", boom)
    builder.add_edge(START, "boom")
    builder.add_edge("boom", END)
    durable = DurableGraph(builder.compile(checkpointer=saver), name="boom")
    with pytest.raises(ValueError, match="node failed"):
        durable.invoke(FRESH, cfg("e"))
    [run] = _runs(engine, durable)
    assert run.status == "ERROR"


def test_clear_errors_for_misuse(engine: Engine, saver: DurableCheckpointer) -> None:
    with pytest.raises(GraphNotDurable, match="DurableCheckpointer"):
        DurableGraph(chain_builder().compile(checkpointer=InMemorySaver()), name="plain")
    durable = DurableGraph(chain_builder().compile(checkpointer=saver), name="misuse")
    with pytest.raises(ValueError, match="thread_id"):
        durable.invoke(FRESH, {})


async def test_async_core_steps_in_async_nodes_are_memoized(
    engine: Engine, saver: DurableCheckpointer
) -> None:
    calls: list[str] = []

    @durable_core.step(name="fetch")
    async def fetch(key: str) -> dict[str, str]:
        calls.append(key)
        await asyncio.sleep(0)
        return {"key": key}

    async def ask(state: ChainState) -> dict[str, Any]:
        found = await fetch("x")
        answer = interrupt(found)
        return {"items": [found["key"], str(answer)]}

    builder: StateGraph[Any] = StateGraph(ChainState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    durable = DurableGraph(builder.compile(checkpointer=saver), name="amemo")
    out = await durable.ainvoke(FRESH, cfg("am"))
    assert out["__interrupt__"][0].value == {"key": "x"}
    out = await durable.ainvoke(Command(resume="go"), cfg("am"))
    assert out["items"] == ["x", "go"]
    assert calls == ["x"]


def test_stream_through_an_interrupt_and_its_resume(engine: Engine, saver: DurableCheckpointer) -> None:
    durable = DurableGraph(approval_builder().compile(checkpointer=saver), name="approval5")
    first = list(durable.stream(FRESH, cfg("s5"), stream_mode="updates"))
    assert [next(iter(c)) for c in first] == ["draft", "__interrupt__"]
    second = list(durable.stream(Command(resume="ok"), cfg("s5"), stream_mode="updates"))
    assert [next(iter(c)) for c in second] == ["approve", "publish"]
    [run] = _runs(engine, durable)
    assert run.status == "SUCCESS"
