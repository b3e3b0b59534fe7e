"""`durable` in pipes and scripts: options after the command, plain output that never wraps or cuts
an id, a name or a command, ids only for xargs, and read-only commands that never create a database.

Every command here runs the real console script in a subprocess whose stdout is a pipe (not a
terminal), with an 80-column COLUMNS, as in `durable workflows list | grep ...`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cli_app
import pytest
from cli_app import durable_bin

from durable_core import Engine, workflow, workflow_options
from durable_core.testing import wait_until_waiting

LONG_PREFIX = "ingest:quarterly-report-corpus-2026-06:document-batch-7f3c9a2e:"


@workflow(name="cli_test.ingest_one_document_with_a_rather_long_workflow_name")
def ingest(n: int) -> int:
    return n


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DURABLE_DATABASE_URL", "COLUMNS", "TERM")}
    return {**env, "COLUMNS": "80", **extra}


def durable(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The console script with options wherever the caller puts them; stdout is a pipe."""
    return subprocess.run(
        [durable_bin(), *args], capture_output=True, text=True, env=env or _env(), timeout=120, check=False
    )


def shell(pipeline: str, url: str) -> subprocess.CompletedProcess[str]:
    """A shell pipeline, with the venv's `durable` first on PATH and the URL in the environment."""
    path = f"{Path(durable_bin()).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline],
        capture_output=True,
        text=True,
        env=_env(PATH=path, DURABLE_DATABASE_URL=url),
        timeout=180,
        check=False,
    )


def test_options_work_after_the_subcommand(engine: Engine) -> None:
    url = engine.database_url
    with workflow_options(workflow_id="opt-1"):
        engine.start_workflow(cli_app.approval, "anything")
    wait_until_waiting(engine, "opt-1")

    inbox = durable("inbox", "--database-url", url)
    assert inbox.returncode == 0, inbox.stderr
    assert "opt-1" in inbox.stdout
    listed = durable("workflows", "list", "--json", "--database-url", url)
    assert listed.returncode == 0, listed.stderr
    assert [w["workflow_id"] for w in json.loads(listed.stdout)] == ["opt-1"]
    between = durable("workflows", "--database-url", url, "show", "opt-1", "--json")
    assert json.loads(between.stdout)["workflow"]["workflow_id"] == "opt-1"
    # after the command wins over before it, as the last of a repeated option does
    both = durable("--database-url", "sqlite:////nonexistent/x.db", "inbox", "--database-url", url, "-q")
    assert both.stdout == "opt-1\n", both.stderr


def test_piped_list_keeps_every_id_whole_and_greppable(engine: Engine) -> None:
    url = engine.database_url
    for i in range(301):
        with workflow_options(workflow_id=f"{LONG_PREFIX}doc-{i:04d}"):
            ingest(i)

    found = shell("durable workflows list | grep doc-0299", url)  # piped: every row, none cut
    assert found.returncode == 0, found.stderr
    [line] = found.stdout.splitlines()
    fields = line.split("\t")
    assert fields[:3] == [
        f"{LONG_PREFIX}doc-0299",
        "cli_test.ingest_one_document_with_a_rather_long_workflow_name",
        "SUCCESS",
    ]

    plain = durable("workflows", "list", env=_env(DURABLE_DATABASE_URL=url))
    lines = plain.stdout.splitlines()
    assert lines[0].split("\t") == [
        "ID", "NAME", "STATUS", "CREATED", "QUEUE", "WAITING_FOR_OR_ERROR", "TOKENS", "COST_USD",
    ]  # fmt: skip
    assert len(lines) == 302  # the header and one line per workflow: nothing wrapped
    assert all(line.split("\t")[0].startswith(LONG_PREFIX) for line in lines[1:])
    assert plain.stderr == ""

    ids = durable("workflows", "list", "-q", "--database-url", url)
    assert ids.stdout.splitlines() == [f"{LONG_PREFIX}doc-{i:04d}" for i in range(301)]
    headless = durable("workflows", "list", "--limit", "5", "--no-header", "--database-url", url)
    assert len(headless.stdout.splitlines()) == 5
    assert "more may exist" in headless.stderr  # remarks go to stderr, rows to stdout

    table = durable("workflows", "list", "--format", "table", "--database-url", url)
    assert "100 workflow(s)" in table.stdout  # a table (a terminal's default) shows 100 at a time
    assert "more may exist (--offset 100, or --limit 0 for all)" in table.stdout


def test_ids_feed_xargs(engine: Engine) -> None:
    url = engine.database_url
    for i in range(3):
        with workflow_options(workflow_id=f"{LONG_PREFIX}wait-{i}"):
            engine.start_workflow(cli_app.approval, f"request {i}")
        wait_until_waiting(engine, f"{LONG_PREFIX}wait-{i}")

    cancelled = shell("durable workflows list --status PENDING -q | xargs -r durable workflows cancel", url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert {w.status for w in engine.list_workflows()} == {"CANCELLED"}
    for i in range(3):
        assert (
            f"cancelled {LONG_PREFIX}wait-{i} (cli_test.approval, was PENDING)"
            in cancelled.stdout.splitlines()
        )

    resumed = shell("durable workflows list --status CANCELLED -q | xargs -r durable workflows resume", url)
    assert resumed.returncode == 0, resumed.stderr
    assert {w.status for w in engine.list_workflows()} <= {"PENDING", "ENQUEUED"}
    nothing = shell("durable workflows list --status ERROR -q | xargs -r durable workflows resume", url)
    assert nothing.returncode == 0 and nothing.stdout == ""


def test_failed_workflows_whose_cause_is_fixed_resume_through_xargs(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = engine.database_url
    monkeypatch.setattr(cli_app.SETTINGS, "prompt", cli_app.BAD_PROMPT)
    cli_app.CALLS.clear()
    failed = [f"{LONG_PREFIX}failed-{i}" for i in range(3)]
    for wid in failed:
        with workflow_options(workflow_id=wid), pytest.raises(ValueError, match="bad prompt"):
            cli_app.research("tides")
    with workflow_options(workflow_id="done-1"):
        ingest(1)
    assert {w.workflow_id: w.status for w in engine.list_workflows(status="ERROR")} == dict.fromkeys(
        failed, "ERROR"
    )
    assert cli_app.CALLS == {"fetch_documents": 3, "ask_model": 3}

    monkeypatch.setattr(cli_app.SETTINGS, "prompt", cli_app.GOOD_PROMPT)  # the cause is fixed
    resumed = shell("durable workflows list --status ERROR -q | xargs durable workflows resume", url)
    assert resumed.returncode == 0, resumed.stderr
    for wid in failed:
        assert f"resumed {wid} (cli_test.research, again from the step that failed): " in resumed.stdout
        result = engine.retrieve_workflow(wid).get_result(timeout_seconds=60)
        assert result == "published: summary of 3 documents about tides"
        assert engine.get_workflow_status(wid).status == "SUCCESS"
    # the step before the failed one ran once per workflow, the failed one again, then the rest
    assert cli_app.CALLS == {"fetch_documents": 3, "ask_model": 6, "publish": 3}
    assert shell("durable workflows list --status ERROR -q", url).stdout == ""

    final = durable("workflows", "resume", "done-1", "--database-url", url)
    assert final.returncode == 1 and "already finished (SUCCESS)" in final.stdout  # a success is final


def test_inbox_answer_column_is_a_complete_command(engine: Engine) -> None:
    url = engine.database_url
    wid = f"{LONG_PREFIX}approve it's-fine"  # a space and a quote: the command quotes them
    with workflow_options(workflow_id=wid):
        handle = engine.start_workflow(cli_app.approval, "ship it")
    wait_until_waiting(engine, wid)

    plain = durable("inbox", "--database-url", url)
    assert plain.returncode == 0, plain.stderr
    header, row = plain.stdout.splitlines()
    assert header.split("\t") == ["ID", "NAME", "KIND", "TOPIC", "DEADLINE", "WAITING_FOR", "ANSWER_WITH"]
    fields = row.split("\t")
    assert fields[:4] == [wid, "cli_test.approval", "recv", "approval"]
    command = fields[-1]
    assert command == (
        f"durable send {shlex.quote(wid)} '<json>' --topic approval --database-url {shlex.quote(url)}"
    )
    table = durable("inbox", "--format", "table", "--database-url", url)
    assert command in table.stdout.splitlines()[-1]  # under the table, on one line, never wrapped

    answered = shell(command.replace("'<json>'", shlex.quote('{"approved": true}')), url)
    assert answered.returncode == 0, answered.stderr
    assert handle.get_result(timeout_seconds=30) == {"request": "ship it", "answer": {"approved": True}}


def test_read_only_commands_never_create_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    url = f"sqlite:///{missing}"
    for args in (
        ("workflows", "list"),
        ("workflows", "show", "x"),
        ("inbox",),
        ("workflows", "cancel", "x"),
        ("send", "x", '"hi"'),
    ):
        result = durable(*args, "--database-url", url)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert f"no database exists at {missing}" in " ".join(result.stderr.split()), result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert list(tmp_path.iterdir()) == [], args  # no file, no -wal, no -shm
    created = durable("migrate", "--database-url", url)
    assert created.returncode == 0 and missing.exists()  # migrate is the command that creates one


def _as_another_user(command: list[str], directory: Path) -> subprocess.CompletedProcess[str]:
    """Run as a user who may read `directory` but not write it (root: as nobody; else chmod it)."""
    env = _env()
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    else:
        directory.chmod(0o555)
        for path in directory.iterdir():
            path.chmod(0o444)
    try:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    finally:
        directory.chmod(0o755)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory other users may enter and read (pytest's own tmp dirs are private to us)."""
    directory = Path(tempfile.mkdtemp(prefix="durable-cli-ro-"))
    directory.chmod(0o755)
    yield directory
    directory.chmod(0o755)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_database_the_user_can_only_read_can_be_listed_and_shown(shared: Path) -> None:
    url = f"sqlite:///{shared / 'agents.db'}"
    with Engine(url), workflow_options(workflow_id="ro-1"):
        ingest(7)
    (shared / "agents.db").chmod(0o644)
    before = sorted(p.name for p in shared.iterdir())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _as_another_user([durable_bin(), *args, "--database-url", url], shared)

    listed = run("workflows", "list", "-q")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == "ro-1\n"
    shown = run("workflows", "show", "ro-1", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["workflow"]["output"] == 7
    inbox = run("inbox")
    assert inbox.returncode == 0, inbox.stderr
    cancel = run("workflows", "cancel", "ro-1")
    assert cancel.returncode == 1
    assert "read-only for this user" in cancel.stderr and "Traceback" not in cancel.stderr
    assert sorted(p.name for p in shared.iterdir()) == before  # nothing written next to it


@pytest.mark.backends("postgres")
def test_read_only_commands_create_no_tables_on_postgres(database_url: str) -> None:
    for args in (("workflows", "list"), ("inbox",), ("workflows", "list", "--json")):
        result = durable(*args, "--database-url", database_url)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "no durable-agents database at" in result.stderr and "no durable tables" in result.stderr
        assert result.stdout == "" and "Traceback" not in result.stderr
    assert durable("migrate", "--database-url", database_url).returncode == 0
    listed = durable("workflows", "list", "--json", "--database-url", database_url)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
