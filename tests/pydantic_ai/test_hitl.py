"""Human in the loop as pydantic-ai defines it, made durable.

- Output type with `DeferredToolRequests`: a deferring run returns them, like a plain agent; the
  caller continues in another run with `deferred_tool_results`.
- `RequestInput`, or an output type without `DeferredToolRequests`: the run waits inside, durably
  (`WorkflowStatus.waiting`), answered with `engine.send(run_id, results, topic=waiting.topic)`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from durable_pydantic_ai import DEFERRED_TOOL_REQUESTS_EVENT, DurableAgent
from pai_support import CallLog, approval_agent, unique_name
from pydantic import TypeAdapter
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults

from durable_core import Engine, WaitInfo

HERE = Path(__file__).parent
APPROVE = TypeAdapter(DeferredToolResults).dump_python(
    DeferredToolResults(approvals={"del-1": True}), mode="json"
)


def _waiting(engine: Engine, workflow_id: str) -> WaitInfo | None:
    for status in engine.list_workflows(waiting=True, workflow_ids=[workflow_id]):
        return status.waiting
    return None


async def _until_waiting(engine: Engine, workflow_id: str, timeout: float = 20.0) -> WaitInfo:
    deadline = time.monotonic() + timeout
    while (waiting := _waiting(engine, workflow_id)) is None:
        assert time.monotonic() < deadline, f"{workflow_id} never started waiting"
        await asyncio.sleep(0.05)
    return waiting


async def test_deferred_requests_are_the_output_and_the_caller_continues_in_another_run(
    engine: Engine,
) -> None:
    log = CallLog()
    name = unique_name("twostep")
    plain = await approval_agent(f"{name}-plain", CallLog(), form="deferred").run("delete the report")
    durable_agent = DurableAgent(approval_agent(name, log, form="deferred"))

    first = await durable_agent.run("delete the report", run_id="ask")

    # Exactly what a plain agent returns: the pending approval, as the run's output. No wait.
    assert isinstance(first.output, DeferredToolRequests)
    assert first.output == plain.output
    assert log.calls == ["model"]
    status = engine.retrieve_workflow("ask").get_status()
    assert status.status == "SUCCESS" and status.waiting is None

    approvals = first.output.build_results(approve_all=True)
    second = await durable_agent.run(
        message_history=first.all_messages(), deferred_tool_results=approvals, run_id="continue"
    )
    assert second.output == "finished: deleted report.txt"
    assert log.calls == ["model", "delete_file", "model"]
    assert second.run_id == "continue" and second.run_id != first.run_id
    assert second.conversation_id == first.conversation_id

    # Both runs replay from their records: the same typed results, no model or tool call.
    log.calls.clear()
    again_first = await durable_agent.run("delete the report", run_id="ask")
    again_second = await durable_agent.run(
        message_history=first.all_messages(), deferred_tool_results=approvals, run_id="continue"
    )
    assert log.calls == []
    assert again_first.output == first.output and isinstance(again_first.output, DeferredToolRequests)
    assert again_second.all_messages() == second.all_messages()

    # A fork re-runs the second run from its recorded inputs (what recovery in another process does).
    fork = await engine.fork_workflow_async("continue", 2)
    assert (await fork.get_result_async(timeout_seconds=30))["output"] == "finished: deleted report.txt"
    assert log.calls == ["model"]


@pytest.mark.parametrize("form", ["request_input", "handler", "in_run"])
async def test_an_in_run_wait_is_answered_with_send_on_the_waiting_topic(engine: Engine, form: str) -> None:
    log = CallLog()
    durable_agent = DurableAgent(approval_agent(unique_name(form), log, form=form))

    run = asyncio.create_task(durable_agent.run("delete the report", run_id=f"approve-{form}"))
    waiting = await _until_waiting(engine, f"approve-{form}")
    assert waiting.kind == "recv"
    assert log.calls == ["model"]
    if form == "in_run":
        pending = engine.get_event(f"approve-{form}", DEFERRED_TOOL_REQUESTS_EVENT, timeout_seconds=5)
        assert pending["approvals"][0]["tool_name"] == "delete_file"
    engine.send(f"approve-{form}", APPROVE, topic=waiting.topic)
    result = await asyncio.wait_for(run, 30)

    assert result.output == "finished: deleted report.txt"
    assert log.calls == ["model", "delete_file", "model"]
    log.calls.clear()
    again = await durable_agent.run("delete the report", run_id=f"approve-{form}")
    assert again.output == result.output and log.calls == []


@pytest.mark.parametrize("form", ["request_input", "in_run"])
async def test_a_cancelled_waiting_run_never_runs_the_tool(engine: Engine, form: str) -> None:
    log = CallLog()
    durable_agent = DurableAgent(approval_agent(unique_name(f"cancel-{form}"), log, form=form))

    run = asyncio.create_task(durable_agent.run("delete the report", run_id=f"to-cancel-{form}"))
    waiting = await _until_waiting(engine, f"to-cancel-{form}")
    engine.cancel_workflow(f"to-cancel-{form}")
    engine.send(f"to-cancel-{form}", APPROVE, topic=waiting.topic)
    with pytest.raises(BaseException):  # noqa: B017 - the awaited run ends cancelled, however the core reports it
        await asyncio.wait_for(run, 30)

    assert "delete_file" not in log.calls
    assert engine.retrieve_workflow(f"to-cancel-{form}").get_status().status == "CANCELLED"


async def test_an_unanswered_in_run_wait_denies_the_call_after_its_timeout(engine: Engine) -> None:
    log = CallLog()
    agent = approval_agent(unique_name("timeout"), log, form="in_run")
    durable_agent = DurableAgent(agent, deferred_tool_timeout_seconds=0.5)

    result = await durable_agent.run("delete the report", run_id="unanswered")

    assert log.calls == ["model", "model"]  # the tool never ran; the model heard why
    assert str(result.output).startswith("finished: No decision on this tool call arrived")


def _app(database_url: str, name: str, log: Path, phase: str, form: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PHASE": phase,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE.parent / "apps" / "pai_hitl_app.py"),
            database_url,
            name,
            str(log),
            phase,
            form,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.crash
@pytest.mark.parametrize("form", ["request_input", "in_run"])
def test_an_approval_asked_before_a_restart_is_answered_after_it(
    database_url: str, tmp_path: Path, form: str
) -> None:
    name = unique_name(form)
    log = tmp_path / "calls.log"
    # An observer engine of another app version: it reads and sends but never claims the run.
    with Engine(database_url, app_version="observer") as observer:
        waiting = _app(database_url, name, log, "before", form)
        try:
            deadline = time.monotonic() + 30
            while (info := _waiting(observer, "approval-run")) is None:
                assert waiting.poll() is None, waiting.communicate()[1]
                assert time.monotonic() < deadline, "the run never started waiting"
                time.sleep(0.05)
        finally:
            waiting.send_signal(signal.SIGKILL)
            waiting.wait()
        observer.send("approval-run", APPROVE, topic=info.topic)

    resumed = _app(database_url, name, log, "after", form)
    out, err = resumed.communicate(timeout=90)
    assert resumed.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["output"] == "finished: deleted report.txt"
    # No repeated model call: the first request is replayed, the tool runs once, after the approval.
    assert log.read_text().split() == ["before:model", "after:delete_file", "after:model"]
