"""One inbox agent per framework adapter, each waiting for a person in its framework's own way.

- Pydantic AI (`durable_pydantic_ai.DurableAgent`): a tool declared with ``requires_approval=True``
  and a plain ``str`` output type; the run publishes its deferred tool requests and waits inside
  itself (default topic: ``waiting.topic`` is None) for the JSON form of `DeferredToolResults`.
- LangGraph (`durable_langgraph.DurableGraph`): a node calls ``interrupt(...)``; the run waits on
  topic ``langgraph.resume`` and the answer becomes ``Command(resume=...)``.
- CrewAI (`durable_crewai.durable_kickoff`): a task with ``human_input=True``; the kickoff waits on
  topic ``crewai.human_input`` for feedback (empty approves; text asks the agent to revise).

Models are scripted (offline). Each agent is built *before* `engine.launch()`, like any
workflow, so that a restarted process resumes its waiting runs. A framework that is not
installed is skipped with a note.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from page import Kinds, Request

from durable_core import Engine, WorkflowStatus

__all__ = ["FrameworkAgent", "build"]

for _name in ("CREWAI_DISABLE_TELEMETRY", "OTEL_SDK_DISABLED"):  # offline: no telemetry
    os.environ.setdefault(_name, "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")


@dataclass
class FrameworkAgent:
    framework: str
    workflow_names: list[str]
    kinds: Kinds  # by status.waiting.topic, the topic each answer is sent on
    start: Callable[[Engine], list[str]]  # starts the demo runs that do not exist yet
    summaries: dict[str, Callable[[WorkflowStatus], str]] = field(default_factory=lambda: {})


def _in_background(engine: Engine, target: Callable[[], Any]) -> None:
    """Run an agent in a thread. A run stopped by the engine's shutdown is not an error: it stays
    recorded as waiting, and the next launch resumes it."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            if not engine.stopping:
                print(f"agent failed: {type(exc).__name__}: {exc}", flush=True)

    threading.Thread(target=run, daemon=True).start()


# -- Pydantic AI ------------------------------------------------------------------------------


class DeferredToolWait:
    """Pydantic AI's deferred tool requests: event ``deferred_tool_requests``, default topic."""

    def __init__(self, event: str) -> None:
        self.event = event

    def describe(self, engine: Engine, status: WorkflowStatus) -> Request | None:
        pending = engine.get_event(status.workflow_id, self.event, timeout_seconds=0)
        if not isinstance(pending, dict) or not pending.get("approvals"):
            return None
        calls = [f"{c['tool_name']}({c.get('args')})" for c in pending["approvals"]]
        return Request(
            f"Pydantic AI agent {status.name.removesuffix('.run')}", "Call " + ", ".join(calls), pending
        )

    def answer(self, engine: Engine, status: WorkflowStatus, approved: bool, note: str) -> Any:
        from pydantic import TypeAdapter
        from pydantic_ai.tools import DeferredToolResults, ToolDenied

        pending = engine.get_event(status.workflow_id, self.event, timeout_seconds=0) or {}
        verdict: bool | ToolDenied = True if approved else ToolDenied(note or "Rejected in the inbox.")
        results = DeferredToolResults(
            approvals={c["tool_call_id"]: verdict for c in pending.get("approvals", [])}
        )
        return TypeAdapter(DeferredToolResults).dump_python(results, mode="json")


def pydantic_ai_agent() -> FrameworkAgent:
    from durable_pydantic_ai import DEFERRED_TOOL_REQUESTS_EVENT, DurableAgent
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
        if not returns:
            call = ToolCallPart("delete_files", {"folder": "reports/2019"}, tool_call_id="cleanup-1")
            return ModelResponse(parts=[call])
        return ModelResponse(parts=[TextPart(f"cleanup done: {returns[-1].content}")])

    # The output type is plain `str` (no `DeferredToolRequests`): the run waits for the approval
    # inside itself, durably, instead of returning the pending calls to its caller.
    agent: Agent[None, str] = Agent(FunctionModel(model), name="inbox_cleanup")

    @agent.tool_plain(requires_approval=True)
    def delete_files(folder: str) -> str:  # pyright: ignore[reportUnusedFunction]
        return f"deleted 42 files in {folder}"

    durable = DurableAgent(agent)

    def start(engine: Engine) -> list[str]:
        run_id = "cleanup-reports-2019"
        if engine.list_workflows(workflow_ids=[run_id]):
            return []  # already started: a restarted engine resumes it by itself

        def run() -> None:
            asyncio.run(durable.run("Clean up the 2019 reports", run_id=run_id))

        _in_background(engine, run)
        return [run_id]

    def summarize(status: WorkflowStatus) -> str:
        return str(status.output["output"])  # the run's recorded AgentRunResult, as JSON

    return FrameworkAgent(
        "Pydantic AI",
        ["inbox_cleanup.run"],
        {None: DeferredToolWait(DEFERRED_TOOL_REQUESTS_EVENT)},
        start,
        {"inbox_cleanup.run": summarize},
    )


# -- LangGraph --------------------------------------------------------------------------------


class InterruptWait:
    """A LangGraph ``interrupt(value)``: the value is in the run's latest segment event."""

    def describe(self, engine: Engine, status: WorkflowStatus) -> Request | None:
        from durable_langgraph import segment_event

        latest: Any = None
        for n in range(1000):
            outcome = engine.get_event(status.workflow_id, segment_event(n), timeout_seconds=0)
            if outcome is None:
                break
            latest = outcome
        if not isinstance(latest, dict) or not latest.get("interrupts"):
            return None
        value = latest["interrupts"][-1]["value"]
        action = value.get("action", "resume") if isinstance(value, dict) else str(value)
        return Request(f"LangGraph graph {status.name.removeprefix('langgraph:')}", str(action), value)

    def answer(self, engine: Engine, status: WorkflowStatus, approved: bool, note: str) -> Any:
        return {"approved": approved, "note": note}


class PostState(TypedDict, total=False):
    topic: str
    draft: str
    verdict: str


def langgraph_agent(engine: Engine) -> FrameworkAgent:
    from durable_langgraph import DurableCheckpointer, DurableGraph
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    def write(state: PostState) -> PostState:
        return {"draft": f"Why {state.get('topic', 'agents')} matter: a run that survives a restart."}

    def review(state: PostState) -> PostState:
        draft = state.get("draft", "")
        answer = interrupt({"action": f"Publish the blog post {draft!r}", "draft": draft})
        approved = isinstance(answer, dict) and bool(answer.get("approved"))
        return {"verdict": "published" if approved else "sent back to the writer"}

    builder = StateGraph(PostState)
    builder.add_node("write", write)
    builder.add_node("review", review)
    builder.add_edge(START, "write")
    builder.add_edge("write", "review")
    builder.add_edge("review", END)
    durable = DurableGraph(builder.compile(checkpointer=DurableCheckpointer(engine)), name="inbox_blog")

    def start(engine: Engine) -> list[str]:
        if engine.list_workflows(name=durable.workflow_name):
            return []
        config: Any = {"configurable": {"thread_id": "blog-durable-agents"}}

        def run() -> None:
            durable.invoke({"topic": "durable agents"}, config)

        _in_background(engine, run)
        return ["thread blog-durable-agents"]

    def summarize(status: WorkflowStatus) -> str:
        config: Any = {"configurable": {"thread_id": status.output["thread_id"]}}
        state = durable.graph.get_state(config).values  # the thread's final state, from the checkpointer
        return f"blog post {state.get('verdict')}"

    from durable_langgraph import RESUME_TOPIC

    return FrameworkAgent(
        "LangGraph",
        [durable.workflow_name],
        {RESUME_TOPIC: InterruptWait()},
        start,
        {durable.workflow_name: summarize},
    )


# -- CrewAI -----------------------------------------------------------------------------------


class HumanInputWait:
    """CrewAI's ``human_input=True``: event (and topic) ``crewai.human_input``."""

    def __init__(self, event: str) -> None:
        self.event = event

    def describe(self, engine: Engine, status: WorkflowStatus) -> Request | None:
        review = engine.get_event(status.workflow_id, self.event, timeout_seconds=0)
        if not isinstance(review, dict):
            return None
        return Request("CrewAI crew", f"Review the answer to: {review.get('task')}", review)

    def answer(self, engine: Engine, status: WorkflowStatus, approved: bool, note: str) -> Any:
        return "" if approved else note or "Please revise."  # empty feedback approves


def crewai_agent() -> FrameworkAgent:
    from crewai import Agent, BaseLLM, Crew, Task
    from durable_crewai import HUMAN_INPUT_EVENT, HUMAN_INPUT_TOPIC, KICKOFF_WORKFLOW, durable_kickoff

    from durable_core import workflow_options

    class ScriptedLLM(BaseLLM):
        """Plays the LLM offline (CrewAI's ReAct format): an answer, revised when a reviewer objects."""

        model: str = "scripted"

        def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
            text = json.dumps(messages, default=str)
            revised = "feedback" in text.lower() and "revise" in text.lower()
            tagline = "Agents that never lose their place." if revised else "Durable agents, now in beta!"
            return f"Thought: I know the answer.\nFinal Answer: {tagline}"

        def get_context_window_size(self) -> int:
            return 200_000

    writer = Agent(
        role="Copywriter", goal="Write taglines", backstory="Brief.", llm=ScriptedLLM(model="scripted")
    )
    task = Task(
        description="Write a tagline for the launch",
        expected_output="One line",
        agent=writer,
        human_input=True,  # a durable wait for a reviewer
    )
    crew = Crew(agents=[writer], tasks=[task], before_kickoff_callbacks=[durable_kickoff])
    run_id = "crew-launch-tagline"

    def start(engine: Engine) -> list[str]:
        existing = engine.list_workflows(workflow_ids=[run_id])
        if existing and existing[0].status not in ("PENDING", "ENQUEUED"):
            return []

        def run() -> None:  # a restarted process re-runs the same kickoff, which resumes it
            with workflow_options(workflow_id=run_id):
                crew.kickoff()

        _in_background(engine, run)
        return [] if existing else [run_id]

    def summarize(status: WorkflowStatus) -> str:
        output = status.output
        return str(output.get("raw", output)) if isinstance(output, dict) else str(output)

    return FrameworkAgent(
        "CrewAI",
        [KICKOFF_WORKFLOW],
        {HUMAN_INPUT_TOPIC: HumanInputWait(HUMAN_INPUT_EVENT)},
        start,
        {KICKOFF_WORKFLOW: summarize},
    )


def build(engine: Engine) -> tuple[list[FrameworkAgent], list[str]]:
    """Build every framework agent whose packages are installed; call before `engine.launch()`."""
    agents: list[FrameworkAgent] = []
    notes: list[str] = []
    builders: list[tuple[str, Callable[[], FrameworkAgent]]] = [
        ("Pydantic AI", pydantic_ai_agent),
        ("LangGraph", lambda: langgraph_agent(engine)),
        ("CrewAI", crewai_agent),
    ]
    for name, make in builders:
        try:
            agents.append(make())
        except ImportError as exc:
            notes.append(f"{name} agent skipped ({exc}); pip install 'durable-agents[all]'")
    return agents, notes
