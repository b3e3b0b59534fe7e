"""The waiting protocol: list the waiting workflows, send to `status.waiting.topic`, and every wait ends.

One run of each kind of human wait (a core `recv` on a topic and on the default topic, Pydantic AI's
in-run approvals, CrewAI's `human_input`, a LangGraph `interrupt()`) is answered by exactly the
loop a user writes from the public contract:

    for status in engine.list_workflows(waiting=True):
        if status.waiting.kind == "recv":
            engine.send(status.workflow_id, answer, topic=status.waiting.topic)

Waits that no message ends (a sleep, another workflow's event) are listed with their own kind and
no topic. Models are scripted (no provider is ever called). SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import pytest

from durable_core import (
    Engine,
    WaitInfo,
    WorkflowStatus,
    get_event,
    recv,
    sleep,
    workflow,
    workflow_options,
)
from durable_core._records import parse_wait, wait_label

os.environ.setdefault("CREWAI_TESTING", "true")


@workflow(name="waits_protocol.approval")
def core_approval(request: str) -> dict[str, Any]:
    return {"request": request, "answer": recv(topic="approval", timeout_seconds=600)}


@workflow(name="waits_protocol.default_topic")
def core_default_topic() -> Any:
    return recv(timeout_seconds=600)


@workflow(name="waits_protocol.napper")
def napper() -> str:
    sleep(600)
    return "rested"


@workflow(name="waits_protocol.event_reader")
def event_reader(source: str) -> Any:
    return get_event(source, "ready", timeout_seconds=600)


# -- one agent per framework, scripted ---------------------------------------------------------


def pydantic_ai_run(form: str, run_id: str, calls: list[str]) -> Callable[[], Any]:
    """A run that asks to delete a file (`requires_approval`) and waits inside the run for the answer."""
    from durable_pydantic_ai import DurableAgent
    from pydantic_ai import Agent
    from pydantic_ai.capabilities import RequestInput
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
        if not returns:
            return ModelResponse(
                parts=[ToolCallPart("delete_file", {"path": "report.txt"}, tool_call_id="del-1")]
            )
        return ModelResponse(parts=[TextPart(f"finished: {returns[-1].content}")])

    name = f"protocol-{form}-{uuid.uuid4().hex[:8]}"
    if form == "in_run":  # no DeferredToolRequests in the output type: the run waits for the results
        agent: Agent[None, Any] = Agent(FunctionModel(model), name=name)
    else:  # RequestInput: pydantic-ai's own in-run wait, made durable
        agent = Agent(
            FunctionModel(model), name=name, capabilities=[RequestInput(lambda ctx, req, token: None)]
        )

    @agent.tool_plain(requires_approval=True)
    def delete_file(path: str) -> str:  # pyright: ignore[reportUnusedFunction]
        calls.append(f"{form}:delete_file")
        return f"deleted {path}"

    durable = DurableAgent(agent)
    return lambda: asyncio.run(durable.run("delete the report", run_id=run_id)).output


def crewai_run(run_id: str) -> Callable[[], Any]:
    """A one-task crew whose task has `human_input=True`: the kickoff waits for a reviewer."""
    from crewai import Agent, BaseLLM, Crew, Task
    from durable_crewai import durable_kickoff

    class ScriptedLLM(BaseLLM):
        model: str = "scripted"

        def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
            return "Thought: I know the answer.\nFinal Answer: Durable agents, now in beta!"

        def get_context_window_size(self) -> int:
            return 200_000

    writer = Agent(role="Copywriter", goal="Taglines", backstory="Brief.", llm=ScriptedLLM(model="scripted"))
    task = Task(description="Write a tagline", expected_output="One line", agent=writer, human_input=True)
    crew = Crew(agents=[writer], tasks=[task], before_kickoff_callbacks=[durable_kickoff])

    def run() -> Any:
        with workflow_options(workflow_id=run_id):
            return crew.kickoff().raw

    return run


class _PostState(TypedDict, total=False):
    verdict: str


def langgraph_run(engine: Engine, run_id: str) -> tuple[Callable[[], Any], Any]:
    """A graph whose node calls `interrupt()`; `DurableGraph` waits durably for the resume value."""
    from durable_langgraph import DurableCheckpointer, DurableGraph
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    def review(state: _PostState) -> _PostState:
        return {"verdict": f"answered {interrupt('publish?')}"}

    builder: StateGraph[Any] = StateGraph(_PostState)
    builder.add_node("review", review)
    builder.add_edge(START, "review")
    builder.add_edge("review", END)
    durable = DurableGraph(
        builder.compile(checkpointer=DurableCheckpointer(engine)), name=f"protocol-{uuid.uuid4().hex[:8]}"
    )
    config: Any = {"configurable": {"thread_id": run_id}}

    def run() -> Any:
        with workflow_options(workflow_id=run_id):
            return durable.invoke({}, config)

    return run, durable


# -- the test ------------------------------------------------------------------------------------


def _until_waiting(engine: Engine, ids: set[str], timeout: float = 60.0) -> dict[str, WorkflowStatus]:
    deadline = time.monotonic() + timeout
    while True:
        waiting = {s.workflow_id: s for s in engine.list_workflows(waiting=True)}
        if ids <= waiting.keys():
            return waiting
        assert time.monotonic() < deadline, f"never waiting: {sorted(ids - waiting.keys())}"
        time.sleep(0.05)


def test_list_waiting_then_send_to_waiting_topic_answers_every_kind(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path / "crewai"))
    calls: list[str] = []
    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}
    graph_run, durable_graph = langgraph_run(engine, "lg-interrupt")
    runs: dict[str, Callable[[], Any]] = {
        "pai-in-run": pydantic_ai_run("in_run", "pai-in-run", calls),
        "pai-request-input": pydantic_ai_run("request_input", "pai-request-input", calls),
        "crew-human-input": crewai_run("crew-human-input"),
        "lg-interrupt": graph_run,
    }

    def background(workflow_id: str, fn: Callable[[], Any]) -> threading.Thread:
        def target() -> None:
            try:
                results[workflow_id] = fn()
            except BaseException as exc:
                errors[workflow_id] = exc

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    threads = [background(wid, fn) for wid, fn in runs.items()]
    with workflow_options(workflow_id="core-approval"):
        approval = engine.start_workflow(core_approval, "delete the staging database")
    with workflow_options(workflow_id="core-default"):
        default = engine.start_workflow(core_default_topic)
    with workflow_options(workflow_id="core-nap"):
        engine.start_workflow(napper)
    with workflow_options(workflow_id="core-event"):
        engine.start_workflow(event_reader, "core-nap")
    answers: dict[str, Any] = {
        "core-approval": {"approved": True},
        "core-default": "hello",
        "pai-in-run": {"approvals": {"del-1": True}},  # the JSON form of DeferredToolResults
        "pai-request-input": {"approvals": {"del-1": True}},
        "crew-human-input": "",  # empty feedback approves
        "lg-interrupt": "yes",  # becomes Command(resume="yes")
    }
    waiting = _until_waiting(engine, {*answers, "core-nap", "core-event"})

    # What each waiting workflow shows: kind, and for a recv exactly the topic engine.send needs.
    shown = {wid: (s.waiting.kind, s.waiting.topic) for wid, s in waiting.items() if s.waiting is not None}
    assert shown == {
        "core-approval": ("recv", "approval"),
        "core-default": ("recv", None),
        "pai-in-run": ("recv", None),
        "pai-request-input": ("recv", None),
        "crew-human-input": ("recv", "crewai.human_input"),
        "lg-interrupt": ("recv", "langgraph.resume"),
        "core-nap": ("sleep", None),
        "core-event": ("event", None),
    }
    assert waiting["core-event"].waiting == WaitInfo(
        kind="event", topic=None, deadline=waiting["core-event"].waiting.deadline, detail="core-nap:ready"
    )
    now = time.time() * 1000
    nap_deadline = waiting["core-nap"].waiting.deadline  # type: ignore[union-attr]
    assert nap_deadline is not None and now < nap_deadline < now + 601_000

    # The loop, exactly as a user writes it.
    for status in engine.list_workflows(waiting=True):
        assert status.waiting is not None
        if status.waiting.kind == "recv":
            engine.send(status.workflow_id, answers[status.workflow_id], topic=status.waiting.topic)

    assert approval.get_result(timeout_seconds=30) == {
        "request": "delete the staging database",
        "answer": {"approved": True},
    }
    assert default.get_result(timeout_seconds=30) == "hello"
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert results["pai-in-run"] == "finished: deleted report.txt"
    assert results["pai-request-input"] == "finished: deleted report.txt"
    assert sorted(calls) == ["in_run:delete_file", "request_input:delete_file"]
    assert results["crew-human-input"] == "Durable agents, now in beta!"
    lg = engine.retrieve_workflow("lg-interrupt").get_result(timeout_seconds=30)
    assert lg["status"] == "done"
    assert durable_graph.get_state({"configurable": {"thread_id": "lg-interrupt"}}).values == {
        "verdict": "answered yes"
    }
    still = {s.workflow_id for s in engine.list_workflows(waiting=True)}
    assert still == {"core-nap", "core-event"}  # no message ends a timer or an event wait


def test_wait_labels_round_trip() -> None:
    """The stored form of a wait reads back as the kind, and the topic exactly as recv() was given it."""
    for topic in ("approval", "a:b:c", "", "recv:x", None):
        info = parse_wait(wait_label("recv", topic), 5)
        assert (info.kind, info.topic, info.deadline, info.answerable) == ("recv", topic, 5, True)
    assert parse_wait(wait_label("sleep"), None) == WaitInfo(kind="sleep", topic=None, deadline=None)
    assert parse_wait(wait_label("event", "wf-1:key:x"), 1) == WaitInfo(
        kind="event", topic=None, deadline=1, detail="wf-1:key:x"
    )
    custom = parse_wait(wait_label("approval_gate", "ticket-7"), None)
    assert (custom.kind, custom.topic, custom.detail, custom.answerable) == (
        "approval_gate",
        None,
        "ticket-7",
        False,
    )
    with pytest.raises(ValueError):
        wait_label("re:cv")
