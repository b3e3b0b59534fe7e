"""Every example as a newcomer runs it: `--help` runs nothing, `--database-url` (default: a named
SQLite file in the current directory, printed at start, inspectable with `durable` afterwards),
a second run works and says what it did, no file is left in the temp directory, and a long run
prints progress in a pipe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from example_support import EXAMPLES, example_env

pytestmark = pytest.mark.crash

SCRIPTS = {
    "quickstart": (EXAMPLES / "quickstart.py", "quickstart.db"),
    "pydantic_ai": (EXAMPLES / "pydantic_ai" / "support_agent.py", "support_agent.db"),
    "crewai": (EXAMPLES / "crewai" / "research_crew.py", "research_crew.db"),
    "langgraph": (EXAMPLES / "langgraph" / "approval_agent.py", "approval_agent.db"),
    "debugging": (EXAMPLES / "debugging" / "fork_to_debug.py", "fork_to_debug.db"),
    "ingestion": (EXAMPLES / "document_ingestion" / "ingest.py", "ingest.db"),
    "inbox": (EXAMPLES / "agent_inbox" / "inbox.py", "inbox.db"),
    "budgets": (EXAMPLES / "budgets" / "budget_agent.py", "budget_agent.db"),
}
FRAMEWORK = {
    "pydantic_ai": "durable_pydantic_ai",
    "budgets": "durable_pydantic_ai",
    "crewai": "durable_crewai",
    "langgraph": "durable_langgraph",
}


def _run(script: Path, cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    tmp = cwd / "tmp"
    tmp.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=example_env(TMPDIR=str(tmp)),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _durable_ids(database: Path) -> list[str]:
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("durable")), "workflows", "list", "-q", "--limit", "0"],
        env={**os.environ, "DURABLE_DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_prints_help_and_runs_nothing(name: str, tmp_path: Path) -> None:
    if name in FRAMEWORK:
        pytest.importorskip(FRAMEWORK[name])
    script, database = SCRIPTS[name]
    result = _run(script, tmp_path, "--help", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
    assert "--database-url" in result.stdout and database in result.stdout  # the default, named
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # no database, nothing else
    assert list((tmp_path / "tmp").iterdir()) == []


def _twice(name: str, tmp_path: Path, *args: str) -> tuple[str, str, Path]:
    script, database = SCRIPTS[name]
    first = _run(script, tmp_path, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    second = _run(script, tmp_path, *args)
    assert second.returncode == 0, second.stdout + second.stderr
    for output in (first.stdout, second.stdout):
        assert f"database: sqlite:///{database}" in output  # printed at start
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing left in the temp directory
    assert (tmp_path / database).exists()
    return first.stdout, second.stdout, tmp_path / database


def test_quickstart_twice(tmp_path: Path) -> None:
    _first, second, database = _twice("quickstart", tmp_path, "--auto")
    assert "starting clean: removing quickstart.db from an earlier run" in second
    assert "step 3: ran live" in second and "recoveries: 1" in second
    assert _durable_ids(database) == ["report-1"]
    again = _run(SCRIPTS["quickstart"][0], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "report-1 already finished in this database" in again.stdout and "ran live" not in again.stdout


@pytest.mark.parametrize(
    ("name", "second_run", "ids"),
    [
        (
            "pydantic_ai",
            "earlier runs of this demo are in the database; this one is ticket-42-2",
            {"ticket-42", "ticket-42-2"},
        ),
        ("langgraph", "this one is weather-2, on its own thread", {"weather-1", "weather-2"}),
        ("crewai", "this is demo run 2, a new kickoff", None),
        ("debugging", "1) run meeting-", None),
    ],
)
def test_a_demo_runs_twice(name: str, second_run: str, ids: set[str] | None, tmp_path: Path) -> None:
    if name in FRAMEWORK:
        pytest.importorskip(FRAMEWORK[name])
    _first, second, database = _twice(name, tmp_path)
    assert second_run in second
    recorded = set(_durable_ids(database))
    if ids is not None:
        assert ids <= recorded
    assert "durable workflows" in second  # how to inspect the database afterwards


def test_ingestion_twice_resumes_and_prints_progress_in_a_pipe(tmp_path: Path) -> None:
    script = SCRIPTS["ingestion"][0]
    args = [
        "--docs", "24", "--embedder", "hash", "--embed-delay", "0.4", "--query", "",
        "--index", str(tmp_path / "index.db"), "--corpus-dir", str(tmp_path / "corpus"),
    ]  # fmt: skip
    (tmp_path / "tmp").mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=example_env(TMPDIR=str(tmp_path / "tmp"), INGEST_WORKER_CONCURRENCY="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    started = time.monotonic()
    lines: list[tuple[float, str]] = [(time.monotonic() - started, line) for line in proc.stdout]
    assert proc.wait(timeout=120) == 0, "".join(text for _, text in lines)
    ended = time.monotonic() - started
    text = "".join(line for _, line in lines)
    assert "database: sqlite:///ingest.db" in text and "loading the embedder" in text
    progress = [
        (at, int(m.group(1))) for at, line in lines if (m := re.match(r"indexing: (\d+)/24 documents", line))
    ]
    during = [(at, done) for at, done in progress if 0 < done < 24]
    assert during, text  # progress while it ran, not only at the end
    assert during[0][0] < ended - 1.0  # arrived while the run was still going
    assert [done for _, done in progress] == sorted(done for _, done in progress)
    assert progress[-1][1] == 24

    again = _run(script, tmp_path, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "run ingest-1 already finished" in again.stdout
    assert list((tmp_path / "tmp").iterdir()) == []
    assert "ingest-1" in _durable_ids(tmp_path / "ingest.db")
