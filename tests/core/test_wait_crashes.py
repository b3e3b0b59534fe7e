"""A process killed while a workflow waits: the restarted workflow keeps its original deadline
and receives the message sent while it was down, exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable_core import Engine
from durable_core.testing import wait_until_waiting

APP = str(Path(__file__).parents[1] / "apps" / "core_waits_app.py")
pytestmark = pytest.mark.crash


def _start(url: str, mode: str, workflow_id: str, kind: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, APP, url, mode, workflow_id, kind, str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _wait_for_wait(engine: Engine, workflow_id: str) -> int:
    info = wait_until_waiting(engine, workflow_id).waiting
    assert info is not None and info.deadline is not None
    return info.deadline


def _result(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_message_sent_while_recipient_is_down_is_received_once(database_url: str) -> None:
    with Engine(database_url) as engine:
        first = _start(database_url, "run", "hitl", "recv", 60)
        deadline = _wait_for_wait(engine, "hitl")
        first.kill()
        first.wait()
        engine.send("hitl", {"approved": True}, topic="approval")  # nobody is running it now
        second = _start(database_url, "wait", "hitl", "recv", 60)
        result = _result(second)
        assert result["message"] == {"approved": True}
        steps = engine.list_steps("hitl")
        assert [s.name for s in steps] == ["started_at", "durable.recv"]
        assert steps[1].output == {"approved": True}
        status = engine.get_workflow_status("hitl")
        assert status.status == "SUCCESS" and status.recovery_attempts == 1 and status.waiting is None
        assert deadline > 0


@pytest.mark.parametrize("kind", ["recv", "sleep"])
def test_restarted_wait_keeps_its_original_deadline(database_url: str, kind: str) -> None:
    seconds = 3.0
    with Engine(database_url) as engine:
        first = _start(database_url, "run", f"deadline-{kind}", kind, seconds)
        deadline_ms = _wait_for_wait(engine, f"deadline-{kind}")
        time.sleep(0.5)
        first.kill()
        first.wait()
        time.sleep(1.0)  # down for a while: a fresh timeout would end later than the recorded one
        second = _start(database_url, "wait", f"deadline-{kind}", kind, seconds)
        result = _result(second)
        ended_ms = float(result["ended"]) * 1000  # type: ignore[arg-type]
        assert result["message"] is None
        # ends at the recorded deadline (not `seconds` after the restart), within generous slack
        assert deadline_ms - 50 <= ended_ms <= deadline_ms + 1500
