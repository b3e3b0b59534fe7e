"""Real process crashes: `os._exit` inside a tool of task 2, then a new process runs the same kickoff."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from crewai_support import KICKOFF_STEPS, read_log

from durable_core import Engine
from durable_core.testing import run_script

HERE = Path(__file__).parent
ADAPTERS = HERE.parent.parent / "adapters"

FIRST_TASK_AND_TOOL_CALL = [
    "llm:Research:Researcher",
    "tool:search:AI agents",
    "llm:Research:Researcher",
    "llm:Write:Writer",
]


def run_app(
    database_url: str, log: Path, *args: str, crash: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_script(
        HERE.parent / "apps" / "crewai_crash_app.py",
        database_url,
        *args,
        env={"CALL_LOG": str(log), "CRASH_IN_TOOL": crash},
        import_paths=[HERE, ADAPTERS],
    )


@pytest.mark.crash
@pytest.mark.parametrize("mode", ["react", "native"])
def test_a_crash_in_a_task_2_tool_resumes_at_that_tool(database_url: str, tmp_path: Path, mode: str) -> None:
    log = tmp_path / "calls.log"

    crashed = run_app(database_url, log, mode, crash="fact_check")

    assert crashed.returncode == 17, crashed.stderr[-3000:]
    assert read_log(log) == [*FIRST_TASK_AND_TOOL_CALL, "tool:fact_check:agents work", "crash:fact_check"]
    log.unlink()

    resumed = run_app(database_url, log, mode)

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "OUTPUT:Write done ['agents work' is correct]" in resumed.stdout
    # Task 1 and the first LLM call of task 2 replay from the record; only the tool that was in
    # flight at the crash and the LLM call after it run again.
    assert read_log(log) == ["tool:fact_check:agents work", "llm:Write:Writer"]
    log.unlink()

    if mode == "react":  # once is enough: a third process re-running the finished kickoff
        again = run_app(database_url, log, mode)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "OUTPUT:Write done ['agents work' is correct]" in again.stdout
        assert read_log(log) == []  # a finished kickoff: zero LLM or tool calls

    with Engine(database_url) as engine:
        [status] = engine.list_workflows()
        assert status.status == "SUCCESS"
        assert status.recovery_attempts >= 1
        assert [s.name for s in engine.list_steps(status.workflow_id)] == KICKOFF_STEPS
