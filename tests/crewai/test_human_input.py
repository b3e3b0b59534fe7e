"""Human input (`Task(human_input=True)`) is a durable wait answered by `engine.send`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from crewai_support import read_log, research_crew
from durable_crewai import HUMAN_INPUT_EVENT, HUMAN_INPUT_TOPIC, durable_kickoff

from durable_core import Engine, WorkflowStatus

HERE = Path(__file__).parent
ADAPTERS = HERE.parent.parent / "adapters"
INPUTS = {"topic": "AI"}


def wait_for_waiting(engine: Engine, timeout: float = 60.0) -> WorkflowStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = engine.list_workflows(waiting=True)
        if waiting:
            return waiting[0]
        time.sleep(0.05)
    raise AssertionError("the kickoff never waited for human input")


def test_human_feedback_arrives_through_engine_send(engine: Engine, call_log: list[str]) -> None:
    crew = research_crew(human_input=True, callbacks=[durable_kickoff])
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(output=crew.kickoff(inputs=INPUTS)), daemon=True)
    runner.start()

    waiting = wait_for_waiting(engine)
    review = engine.get_event(waiting.workflow_id, HUMAN_INPUT_EVENT, timeout_seconds=5)
    assert review["agent"] == "Writer"
    assert review["output"] == "Write done ['agents work' is correct]"
    writer_calls = call_log.count("llm:Write:Writer")
    engine.send(waiting.workflow_id, "cite your sources", topic=HUMAN_INPUT_TOPIC)

    deadline = time.monotonic() + 30
    while call_log.count("llm:Write:Writer") == writer_calls and time.monotonic() < deadline:
        time.sleep(0.05)
    wait_for_waiting(engine)  # asked again after acting on the feedback
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the second review shows the revised answer, not the first one
        review = engine.get_event(waiting.workflow_id, HUMAN_INPUT_EVENT, timeout_seconds=5)
        if review["output"].endswith("(revised)"):
            break
        time.sleep(0.05)
    assert review["output"] == "Write done ['agents work' is correct] (revised)"
    engine.send(waiting.workflow_id, "", topic=HUMAN_INPUT_TOPIC)  # "" approves
    runner.join(timeout=30)

    assert not runner.is_alive()
    assert result["output"].raw.startswith("Write done")
    assert call_log.count("llm:Write:Writer") > writer_calls
    assert engine.list_workflows(waiting=True) == []
    assert engine.get_workflow_status(waiting.workflow_id).status == "SUCCESS"
    recvs = [s for s in engine.list_steps(waiting.workflow_id) if s.name == "durable.recv"]
    assert [s.output for s in recvs] == ["cite your sources", ""]


@pytest.mark.crash
def test_a_waiting_kickoff_survives_a_restart_and_asks_once(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    env = {**os.environ, "CALL_LOG": str(log)}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ADAPTERS), env.get("PYTHONPATH", "")])
    command = [
        sys.executable,
        str(HERE.parent / "apps" / "crewai_crash_app.py"),
        database_url,
        "react",
        "human",
    ]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # An observer that never takes work (another app_version), like a web front end.
        with Engine(database_url, app_version="observer") as engine:
            waiting = wait_for_waiting(engine)
            first.send_signal(signal.SIGKILL)  # the process dies while the kickoff waits
            first.wait(timeout=30)
            engine.send(waiting.workflow_id, "", topic=HUMAN_INPUT_TOPIC)  # answered while nobody runs it
    finally:
        if first.poll() is None:
            first.kill()
    calls_before = read_log(log)
    assert calls_before.count("llm:Write:Writer") == 2

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "OUTPUT:Write done ['agents work' is correct]" in resumed.stdout
    assert read_log(log) == calls_before  # nothing ran again, and the question was not asked again
    with Engine(database_url) as engine:
        [status] = engine.list_workflows()
        assert status.status == "SUCCESS"
        assert [s.output for s in engine.list_steps(status.workflow_id) if s.name == "durable.recv"] == [""]
