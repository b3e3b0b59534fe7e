"""examples/budgets/budget_agent.py as a newcomer runs it: an agent stopped by its budget, listed in
the inbox, resumed after a raise (by the script, or by `durable budget raise` between two runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from example_support import EXAMPLES, example_env

pytest.importorskip("durable_pydantic_ai")

SCRIPT = EXAMPLES / "budgets" / "budget_agent.py"
PAUSED = "paused before its next model request: $0.0325 of max_cost_usd=$0.03"
FINISHED = "SUCCESS; it spent 9 model requests, 26550 tokens, $0.0765"


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (cwd / "tmp").mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=example_env(TMPDIR=str(cwd / "tmp")),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _durable(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DURABLE_DATABASE_URL"}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("durable")), *args, "--database-url", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_the_budget_story_runs_again_and_again(tmp_path: Path) -> None:
    first = _run(tmp_path).stdout
    assert first.startswith("database: sqlite:///budget_agent.db\n")
    assert f"research-1 {PAUSED}" in first
    # listed in the inbox with what it spent and the limit it reached
    assert "research-1  kind='budget'  paused by its budget: reached $0.0325 of max_cost_usd=$0.03" in first
    assert "spent: 5 model requests, 10750 tokens, $0.0325" in first
    assert "engine.raise_budget('research-1', max_cost_usd=0.1)" in first
    assert f"research-1: {FINISHED}" in first and "answer: On 16 August 1858" in first

    second = _run(tmp_path).stdout
    assert "earlier runs of this demo are in the database; this one is research-2" in second
    assert f"research-2: {FINISHED}" in second
    assert "every run of this demo: 18 model requests, $0.1530" in second
    assert "durable usage --by workflow" in second  # how to look at it afterwards

    # left paused and nobody raised it: the next run resumes it, finds it still paused, raises it
    left = _run(tmp_path, "--leave-paused").stdout
    assert f"research-3 {PAUSED}" in left and "left paused" in left and "SUCCESS" not in left
    resumed = _run(tmp_path).stdout
    assert "run research-3 of an earlier invocation is unfinished: this engine resumed it" in resumed
    assert f"research-3 {PAUSED}" in resumed and f"research-3: {FINISHED}" in resumed

    assert list((tmp_path / "tmp").iterdir()) == []  # nothing left in the temp directory
    usage = _durable("sqlite:///" + str(tmp_path / "budget_agent.db"), "usage", "--by", "workflow").stdout
    rows = [line.split("\t") for line in usage.splitlines()[1:]]
    assert [(r[0], r[1], r[-1]) for r in rows] == [(f"research-{n}", "9", "0.0765") for n in (1, 2, 3)]


def test_left_paused_raised_with_the_cli_then_resumed(database_url: str, tmp_path: Path) -> None:
    left = _run(tmp_path, "--leave-paused", "--database-url", database_url).stdout
    assert f"research-1 {PAUSED}" in left
    assert f"durable budget raise research-1 --cost 0.1 --database-url {database_url}" in left

    inbox = _durable(database_url, "inbox").stdout.splitlines()
    fields = inbox[1].split("\t")
    assert fields[:3] == ["research-1", "researcher.run", "budget"]
    assert "reached $0.0325 of max_cost_usd=$0.03" in fields[5] and "$0.0325" in fields[5]
    assert fields[6].startswith("durable budget raise research-1 --cost '<usd>'")
    raised = _durable(database_url, "budget", "raise", "research-1", "--cost", "0.1").stdout
    assert "budget of research-1 (researcher.run) is now: max_cost_usd=0.1" in raised

    resumed = _run(tmp_path, "--database-url", database_url).stdout
    assert "run research-1 of an earlier invocation is unfinished: this engine resumed it" in resumed
    assert "its budget had been raised: it continued where it stopped" in resumed
    assert "engine.raise_budget" not in resumed  # the CLI's raise was enough
    assert f"research-1: {FINISHED}" in resumed
    listed = _durable(database_url, "workflows", "list").stdout.splitlines()
    assert listed[1].split("\t")[-2:] == ["26550", "0.0765"]
    assert _durable(database_url, "inbox").stdout == ""
