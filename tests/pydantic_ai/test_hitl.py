"""Human-in-the-loop as durable waits: deferred tool requests and RequestInput, across a restart."""

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
from pydantic_ai.tools import DeferredToolResults

import durable_core
from durable_core import Engine

HERE = Path(__file__).parent
APPROVE = TypeAdapter(DeferredToolResults).dump_python(
    DeferredToolResults(approvals={"del-1": True}), mode="json"
)

pytestmark = pytest.mark.skipif(
    not hasattr(durable_core, "recv_async"), reason="durable_core has no recv/send yet (durable waits)"
)


def _waiting(engine: Engine, workflow_id: str) -> bool:
    return any(w.workflow_id == workflow_id for w in engine.list_workflows(waiting=True))


async def _until_waiting(engine: Engine, workflow_id: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not _waiting(engine, workflow_id):
        assert time.monotonic() < deadline, f"{workflow_id} never started waiting"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("form", ["deferred", "request_input"])
async def test_an_approval_is_a_durable_wait_answered_with_send(engine: Engine, form: str) -> None:
    log = CallLog()
    durable_agent = DurableAgent(approval_agent(unique_name(form), log, form=form))

    run = asyncio.create_task(durable_agent.run("delete the report", run_id=f"approve-{form}"))
    await _until_waiting(engine, f"approve-{form}")
    assert log.calls == ["model"]
    waiting = engine.retrieve_workflow(f"approve-{form}").get_status().waiting
    assert waiting is not None and (waiting.kind, waiting.topic) == ("recv", None)
    if form == "deferred":
        pending = engine.get_event(f"approve-{form}", DEFERRED_TOOL_REQUESTS_EVENT, timeout_seconds=5)
        assert pending["approvals"][0]["tool_name"] == "delete_file"
    engine.send(f"approve-{form}", APPROVE)
    result = await asyncio.wait_for(run, 30)

    assert result.output == "finished"
    assert log.calls == ["model", "delete_file", "model"]


async def test_a_cancelled_waiting_run_never_runs_the_tool(engine: Engine) -> None:
    log = CallLog()
    durable_agent = DurableAgent(approval_agent(unique_name("cancel"), log, form="request_input"))

    run = asyncio.create_task(durable_agent.run("delete the report", run_id="to-cancel"))
    await _until_waiting(engine, "to-cancel")
    engine.cancel_workflow("to-cancel")
    engine.send("to-cancel", APPROVE)
    with pytest.raises(BaseException):  # noqa: B017 - the awaited run ends cancelled, however the core reports it
        await asyncio.wait_for(run, 30)

    assert "delete_file" not in log.calls
    assert engine.retrieve_workflow("to-cancel").get_status().status == "CANCELLED"


def _app(database_url: str, name: str, log: Path, phase: str, form: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PHASE": phase,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, str(HERE / "hitl_app.py"), database_url, name, str(log), phase, form],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.crash
@pytest.mark.parametrize("form", ["deferred", "request_input"])
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
            while not _waiting(observer, "approval-run"):
                assert waiting.poll() is None, waiting.communicate()[1]
                assert time.monotonic() < deadline, "the run never started waiting"
                time.sleep(0.05)
        finally:
            waiting.send_signal(signal.SIGKILL)
            waiting.wait()
        observer.send("approval-run", APPROVE)

    resumed = _app(database_url, name, log, "after", form)
    out, err = resumed.communicate(timeout=90)
    assert resumed.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["output"] == "finished"
    # No repeated model call: the first request is replayed, the tool runs once, after the approval.
    assert log.read_text().split() == ["before:model", "after:delete_file", "after:model"]


async def test_unanswered_deferred_requests_become_the_output_after_the_timeout(engine: Engine) -> None:
    from pydantic_ai.tools import DeferredToolRequests

    log = CallLog()
    agent = approval_agent(unique_name("timeout"), log, form="deferred")
    durable_agent = DurableAgent(agent, deferred_tool_timeout_seconds=0.5)

    result = await durable_agent.run("delete the report", run_id="unanswered")

    assert isinstance(result.output, DeferredToolRequests)
    assert [call.tool_name for call in result.output.approvals] == ["delete_file"]
    assert log.calls == ["model"]
    again = await durable_agent.run("delete the report", run_id="unanswered")
    assert isinstance(again.output, DeferredToolRequests)  # typed back from the record


async def test_deferred_requests_are_returned_at_once_when_waiting_is_off(engine: Engine) -> None:
    from pydantic_ai.tools import DeferredToolRequests

    agent = approval_agent(unique_name("nowait"), CallLog(), form="deferred")
    durable_agent = DurableAgent(agent, deferred_tool_timeout_seconds=None)

    result = await durable_agent.run("delete the report", run_id="no-wait")

    assert isinstance(result.output, DeferredToolRequests)
    assert [s.name.split(".", 1)[1] for s in engine.list_steps("no-wait")] == ["model.request"]
