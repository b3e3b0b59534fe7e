"""A real process crash inside the third tool; a new process finishes the run from its record."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pai_support import operation_steps, unique_name

from durable_core import Engine
from durable_core.testing import run_script

HERE = Path(__file__).parent


def _run_app(
    database_url: str, name: str, log: Path, phase: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_script(
        HERE.parent / "apps" / "pai_crash_app.py",
        database_url,
        name,
        str(log),
        phase,
        *extra,
        env={"PHASE": phase},
        import_paths=[HERE],
        timeout_seconds=90,
    )


@pytest.mark.crash
@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_stream"])
def test_crash_in_third_tool_resumes_with_only_that_tool_and_the_final_model_request(
    database_url: str, tmp_path: Path, streamed: bool
) -> None:
    name = unique_name("crashy")
    log = tmp_path / "calls.log"

    # With `run_stream`, the crashing process streams the run (streamed model requests).
    crashed = _run_app(database_url, name, log, "crash", *(["stream"] if streamed else []))
    assert crashed.returncode == 17, crashed.stderr
    first = log.read_text().split()
    assert first == [f"crash:{c}" for c in ("model", "tool_a", "model", "tool_b", "model", "tool_c")]

    resumed = _run_app(database_url, name, log, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["output"].startswith("done")
    second = log.read_text().split()[len(first) :]
    # Completed model requests and tools are replayed from the record, never repeated.
    assert second == ["resume:tool_c", "resume:model"]

    with Engine(database_url) as engine:
        # A recovered run makes streamed requests if its record says the run did.
        steps = engine.list_steps("crash-run")
        assert [s.name.removeprefix(f"{name}.") for s in steps] == operation_steps(streamed=streamed)
        assert engine.retrieve_workflow("crash-run").get_status().status == "SUCCESS"
