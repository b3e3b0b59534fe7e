"""The crash-safety kit over every example: each crash point (before and after every step of every
workflow) recovers to the same result, with nothing but a step in flight at the crash executed again.

Subprocess mode (a real child process killed with os._exit, recovered in another) for the quickstart
and the Pydantic AI example; in-process mode (a simulated crash, the database copied at that
instant, recovered in a fresh engine) for the others. The matrix size of each example and the
kit's total time are printed in the session's "durable crash-safety" summary.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from example_support import EXAMPLES

from durable_core import Engine, WorkflowStatus, current_engine, workflow_options
from durable_core.testing import CrashReport

pytestmark = [pytest.mark.crash, pytest.mark.timeout(600)]


def _load(name: str, path: Path, *import_paths: Path) -> ModuleType:
    """An example module under a stable name, so the kit's child processes load the same one."""
    if name in sys.modules:
        return sys.modules[name]
    for directory in import_paths:
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def _show(report: CrashReport) -> None:
    print(report.table())
    report.assert_ok()
    for point in report.points:
        assert point.reached and point.result_equal and not point.unexpected_again, point


# -- quickstart (subprocess) ---------------------------------------------------------------------------

quickstart = _load("quickstart_example", EXAMPLES / "quickstart.py")


def test_quickstart(crash_safety: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUICKSTART_STEP_SECONDS", "0")  # each step sleeps half a second in the demo
    report = crash_safety(quickstart.write_report, "durable agents", process="subprocess")
    _show(report)
    assert report.baseline_result == " | ".join(f"note {n} on durable agents" for n in range(1, 6))
    assert report.matrix_size == 10  # 5 steps, killed before and after each


# -- document ingestion on a reduced corpus (in-process) ---------------------------------------------


def _ingest() -> ModuleType:
    folder = EXAMPLES / "document_ingestion"
    return _load("ingest_example", folder / "ingest.py", folder)


def test_document_ingestion(crash_safety: Any, tmp_path: Path) -> None:
    ingest = _ingest()
    from corpus import ensure_corpus  # type: ignore[import-not-found]

    doc_ids = ensure_corpus(tmp_path / "corpus", 3)
    settings = ingest.Settings(
        corpus_dir=str(tmp_path / "corpus"), index_path=str(tmp_path / "index.db"), embedder="hash"
    )
    report = crash_safety(ingest.ingest_corpus, "ingest-kit", settings, doc_ids, process="in-process")
    _show(report)
    assert report.baseline_result.documents == 3
    assert len(report.workflows) == 4  # the parent and one queued child per document
    assert report.matrix_size == 2 * report.step_count


# -- agent inbox: the three plain agents, answered automatically (in-process) --------------------------

inbox_agents = _load("inbox_agents_example", EXAMPLES / "agent_inbox" / "agents.py")


def run_inbox_agents() -> list[str]:
    """Start the demo agents (fixed ids, as inbox.py does) and wait for their outcomes."""
    engine = current_engine()
    handles = []
    for workflow_id, agent, argument in inbox_agents.DEMO_AGENTS:
        with workflow_options(workflow_id=workflow_id):
            handles.append(engine.start_workflow(agent, argument))
    return [handle.get_result(timeout_seconds=60) for handle in handles]


def test_agent_inbox(crash_safety: Any) -> None:
    approve = {inbox_agents.APPROVAL_TOPIC: {"approved": True, "reviewer": "crash-kit"}}
    report = crash_safety(run_inbox_agents, answer=approve, process="in-process")
    _show(report)
    assert report.baseline_result == [
        "refunded 120.00 EUR on order A-1042 (approved by crash-kit)",
        "sent 'Your trial' to ada@example.com (approved by crash-kit)",
        "deployed billing 2.4.1 (approved by crash-kit)",
    ]
    assert set(report.workflows) == {"refund-ticket-981", "outreach-ada", "deploy-billing"}


# -- fork-to-debug (in-process: the story changes the prompt between the run and its fork) ------------

fork_story = _load("fork_to_debug_example", EXAMPLES / "debugging" / "fork_to_debug.py")


def fork_to_debug() -> str:
    """The example's story, re-runnable: the run fails on the bad prompt, the prompt is fixed, and
    a fork from the model call (made once: a fixed id) books the meeting."""
    engine = current_engine()
    fork_story.PROMPT = fork_story.BAD_PROMPT
    with (
        pytest.raises(ValueError, match="malformed structured output"),
        workflow_options(workflow_id="meeting-kit"),
    ):
        fork_story.schedule_meeting("platform")
    fork_story.PROMPT = fork_story.FIXED_PROMPT
    if engine.list_workflows(workflow_ids=["meeting-kit-fixed"]):
        handle = engine.retrieve_workflow("meeting-kit-fixed")
    else:
        handle = engine.fork_workflow("meeting-kit", 3, new_workflow_id="meeting-kit-fixed")
    return handle.get_result(timeout_seconds=60)


def test_fork_to_debug(crash_safety: Any) -> None:
    report = crash_safety(fork_to_debug, process="in-process")
    _show(report)
    assert report.baseline_result == "booked 'Design review' at 2026-12-01T10:00 for ada, grace"
    assert [s.name for s in report.workflows["meeting-kit"]] == [
        "read_calendar",
        "read_preferences",
        "scheduler.model_request",
        "book_meeting",
    ]


# -- Pydantic AI support agent (subprocess) ------------------------------------------------------------


# loaded at import, so the kit's process that forks the runs has pydantic-ai imported once
support_agent: ModuleType | None = None
support_error: str | None = None
if _installed("durable_pydantic_ai") and _installed("pydantic_ai"):
    try:
        support_agent = _load("support_agent_example", EXAMPLES / "pydantic_ai" / "support_agent.py")
    except Exception as exc:  # reported by the test, without hiding the other examples
        support_error = f"{type(exc).__name__}: {exc}"


_built: dict[str, Any] = {}


def support_setup(engine: Engine) -> Any:
    """Built before launch, as the example's workers do (once per process: a DurableAgent's name is
    unique in a process)."""
    assert support_agent is not None
    if "support" not in _built:
        _built["support"] = support_agent.build_agent(None)
    return _built["support"]


def support_ticket(agent: Any) -> str:
    """The ticket, approved: a run that defers the refund returns its requests (pydantic-ai's
    `DeferredToolRequests` output), and a second run continues with the approval; a run that waits
    for the approval instead is answered by the kit (`approve_refund`)."""
    from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults

    result = asyncio.run(agent.run("My headphones (order A-1001) arrived broken.", run_id="ticket-42"))
    if isinstance(result.output, DeferredToolRequests):
        approvals = DeferredToolResults(
            approvals={call.tool_call_id: True for call in result.output.approvals}
        )
        result = asyncio.run(
            agent.run(
                message_history=result.all_messages(),
                deferred_tool_results=approvals,
                run_id="ticket-42-approved",
            )
        )
    return result.output


def approve_refund(engine: Engine, status: WorkflowStatus) -> Any:
    """What the support lead of the example sends: every deferred tool call approved."""
    from durable_pydantic_ai import DEFERRED_TOOL_REQUESTS_EVENT
    from pydantic import TypeAdapter
    from pydantic_ai.tools import DeferredToolResults

    pending = engine.get_event(status.workflow_id, DEFERRED_TOOL_REQUESTS_EVENT, timeout_seconds=5)
    approvals = {call["tool_call_id"]: True for call in pending["approvals"]}
    return TypeAdapter(DeferredToolResults).dump_python(DeferredToolResults(approvals=approvals), mode="json")


@pytest.mark.skipif(support_agent is None and support_error is None, reason="pydantic-ai is not installed")
def test_pydantic_ai_support_agent(crash_safety: Any) -> None:
    if support_error is not None:
        pytest.fail(f"examples/pydantic_ai/support_agent.py does not import: {support_error}")
    report = crash_safety(support_ticket, setup=support_setup, answer=approve_refund, process="subprocess")
    _show(report)
    assert report.baseline_result == "Sorry about the headphones! Refunded 199.00 for order A-1001."


# -- CrewAI research crew (in-process) -------------------------------------------------------------------


def _crew() -> ModuleType:
    pytest.importorskip("durable_crewai")
    return _load("research_crew_example", EXAMPLES / "crewai" / "research_crew.py")


def crew_kickoff() -> str:
    research_crew = _crew()
    return research_crew.build_crew().kickoff(inputs=research_crew.INPUTS).raw


def test_crewai_research_crew(crash_safety: Any) -> None:
    _crew()
    from durable_crewai import HUMAN_INPUT_TOPIC

    report = crash_safety(crew_kickoff, answer={HUMAN_INPUT_TOPIC: ""}, process="in-process")
    _show(report)
    assert report.baseline_result.startswith("Report: durable execution resumes crashed work.")


# -- LangGraph approval agent (in-process) ---------------------------------------------------------------


def _weather() -> ModuleType:
    pytest.importorskip("durable_langgraph")
    return _load("approval_agent_example", EXAMPLES / "langgraph" / "approval_agent.py")


def weather_setup(engine: Engine) -> Any:
    return _weather().build(engine, None)  # the graph's checkpointer is bound to this engine


def weather_run(agent: Any) -> str:
    from langchain_core.messages import HumanMessage

    config = _weather().thread("weather-kit")
    agent.invoke({"messages": [HumanMessage(content="What's the weather in Berlin?")]}, config)
    engine = current_engine()
    [run] = engine.list_workflows(name=agent.workflow_name)
    engine.retrieve_workflow(run.workflow_id).get_result(timeout_seconds=60)  # the kit approves the tool
    return agent.get_state(config).values["messages"][-1].content


def test_langgraph_approval_agent(crash_safety: Any) -> None:
    _weather()
    from durable_langgraph import RESUME_TOPIC

    report = crash_safety(
        weather_run, setup=weather_setup, answer={RESUME_TOPIC: "approve"}, process="in-process"
    )
    _show(report)
    assert report.baseline_result == "Here is the forecast: Berlin: 21 degrees, light wind"
