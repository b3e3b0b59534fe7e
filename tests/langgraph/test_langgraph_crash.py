"""A real process crash inside node 3 of 5; the thread finishes with no explicit invoke, either in the
restarted process or on another live worker once the dead one's lease expires."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph_crash_app import build, finish

from durable_core import Engine
from durable_core.testing import run_script

HERE = Path(__file__).parent
EXPECTED_STATE = {"count": 5, "items": ["n1", "n2", "n3", "answer to n3", "n4", "n5"]}
CRASHED_RUN = ["crash:node:n1", "crash:node:n2", "crash:node:n3", "crash:model:n3"]


def _run_app(
    database_url: str, log: Path, phase: str, flavour: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return run_script(
        HERE.parent / "apps" / "langgraph_crash_app.py",
        database_url,
        str(log),
        phase,
        flavour,
        env=env,
        import_paths=[HERE, *sys.path],
    )


@pytest.mark.crash
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_crash_in_node_three_resumes_without_rerunning_nodes_or_the_model_call(
    database_url: str, tmp_path: Path, flavour: str
) -> None:
    log = tmp_path / "calls.log"
    crashed = _run_app(database_url, log, "crash", flavour)
    assert crashed.returncode == 17, crashed.stderr
    assert log.read_text().split() == CRASHED_RUN

    resumed = _run_app(database_url, log, "resume", flavour)  # no invoke: engine.launch() resumes the thread
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["state"] == EXPECTED_STATE
    assert result["outcome"]["status"] == "done"
    second = log.read_text().split()[len(CRASHED_RUN) :]
    # Nodes 1-2 come from checkpoints; node 3 runs again but its model call is replayed, not repeated.
    assert second == ["resume:node:n3", "resume:node:n4", "resume:node:n5"]

    with Engine(database_url) as engine:
        status = engine.get_workflow_status(result["workflow_id"])
        assert status.status == "SUCCESS"
        assert status.recovery_attempts >= 1


@pytest.mark.crash
def test_another_live_worker_takes_over_after_the_lease_expires(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    crashed = _run_app(database_url, log, "crash", "sync", LEASE_SECONDS="2")
    assert crashed.returncode == 17, crashed.stderr

    survivor = Engine(database_url, executor_id="survivor", heartbeat_seconds=0.3, lease_seconds=5.0)
    durable = build(survivor, log, "takeover")
    survivor.launch()  # a different executor: it claims the dead one's run once its lease expires
    try:
        result = finish(survivor, durable)
        assert result["state"] == EXPECTED_STATE
        assert survivor.get_workflow_status(result["workflow_id"]).executor_id == "survivor"
    finally:
        survivor.shutdown()
    assert log.read_text().split()[len(CRASHED_RUN) :] == [
        "takeover:node:n3",
        "takeover:node:n4",
        "takeover:node:n5",
    ]
