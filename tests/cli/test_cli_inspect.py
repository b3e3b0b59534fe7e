"""`durable workflows list|show`, `durable migrate` and usage errors, through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cli_app
import pytest
from cli_app import durable_bin, run_cli, run_cli_many

from durable_core import Engine, workflow_options


@pytest.fixture(autouse=True)
def _bad_prompt() -> None:
    cli_app.SETTINGS.prompt = cli_app.BAD_PROMPT


def test_migrate_creates_the_schema_and_is_idempotent(database_url: str) -> None:
    for _ in range(2):
        result = run_cli(database_url, "migrate")
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stdout
    listed = run_cli(database_url, "workflows", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_list_filters_and_json(engine: Engine) -> None:
    url = engine.database_url
    with workflow_options(workflow_id="ok-1"):
        cli_app.parent(1)
    with workflow_options(workflow_id="bad-1"), pytest.raises(ValueError):
        cli_app.research("tides")

    table, failed, by_name, newest, second, since, until = run_cli_many(
        url,
        ("workflows", "list", "--format", "table"),
        ("workflows", "list", "--status", "ERROR", "--json"),
        ("workflows", "list", "--name", "cli_test.child", "--status", "SUCCESS", "--json"),
        ("workflows", "list", "--newest-first", "--limit", "1", "--json"),
        ("workflows", "list", "--limit", "1", "--offset", "1", "--json"),
        ("workflows", "list", "--since", "1h", "--json"),
        ("workflows", "list", "--until", "1h", "--json"),
    )
    assert table.returncode == 0, table.stderr
    for text in (
        "ok-1",
        "ok-1-2",
        "bad-1",
        "cli_test.parent",
        "SUCCESS",
        "ERROR",
        "ValueError: the model refused",
    ):
        assert text in table.stdout

    errors = json.loads(failed.stdout)
    assert [w["workflow_id"] for w in errors] == ["bad-1"]
    assert errors[0]["error"]["type"] == "ValueError"
    assert "bad prompt" in errors[0]["error"]["message"]
    assert errors[0]["inputs"] == {"args": ["tides"], "kwargs": {}}

    children = json.loads(by_name.stdout)
    assert [(w["workflow_id"], w["parent_workflow_id"], w["output"]) for w in children] == [
        ("ok-1-2", "ok-1", 2)
    ]
    assert [w["workflow_id"] for w in json.loads(newest.stdout)] == ["bad-1"]
    assert [w["workflow_id"] for w in json.loads(second.stdout)] == ["ok-1-2"]
    assert len(json.loads(since.stdout)) == 3
    assert json.loads(until.stdout) == []


def test_show_truncates_in_the_table_and_is_complete_in_json(engine: Engine) -> None:
    url = engine.database_url
    with workflow_options(workflow_id="big-1"):
        cli_app.parent(21)

    shown, as_json, one, missing = run_cli_many(
        url,
        ("workflows", "show", "big-1", "--format", "table"),
        ("workflows", "show", "big-1", "--json"),
        ("workflows", "show", "big-1", "--step", "1", "--json"),
        ("workflows", "show", "big-1", "--step", "9"),
    )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "workflow big-1" in out and "cli_test.parent" in out and "SUCCESS" in out
    assert "cli_test.huge" in out and "big-1-2" in out  # the child column
    assert "chars)" in out and "x" * 200 not in out  # the 20k output is cut in the table
    assert len(out) < 5000

    complete = json.loads(as_json.stdout)
    assert complete["workflow"]["output"] == {"doubled": 42, "size": cli_app.HUGE_SIZE}
    steps = complete["steps"]
    assert [s["step_id"] for s in steps] == [1, 2, 3]  # huge, start the child, await the child
    assert steps[0]["name"] == "cli_test.huge" and steps[0]["output"] == "x" * cli_app.HUGE_SIZE
    assert steps[1]["child_workflow_id"] == "big-1-2"
    assert steps[2]["output"] == 42
    assert all(s["status"] == "OK" and s["duration_ms"] is not None for s in steps)

    assert json.loads(one.stdout)["output"] == "x" * cli_app.HUGE_SIZE
    assert missing.returncode == 1
    assert "no recorded step 9" in missing.stderr and "1..3" in missing.stderr


def test_show_a_failed_step_with_its_error_and_traceback(engine: Engine) -> None:
    url = engine.database_url
    with workflow_options(workflow_id="bad-2"), pytest.raises(ValueError):
        cli_app.research("volcanoes")
    shown, detail, as_json = run_cli_many(
        url,
        ("workflows", "show", "bad-2", "--format", "table"),
        ("workflows", "show", "bad-2", "--step", "2"),
        ("workflows", "show", "bad-2", "--json"),
    )
    table = shown.stdout
    assert "ERROR" in table and "ValueError: the model refused the prompt 'bad prompt'" in table

    assert detail.returncode == 0, detail.stderr
    assert "cli_test.ask_model" in detail.stdout
    assert "Traceback" in detail.stdout and "raise ValueError" in detail.stdout

    steps = json.loads(as_json.stdout)["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [
        ("cli_test.fetch_documents", "OK"),
        ("cli_test.ask_model", "ERROR"),
    ]
    assert steps[1]["error"]["type"] == "ValueError"
    assert "raise ValueError" in steps[1]["error"]["traceback"]


@pytest.mark.parametrize(
    "args",
    [
        ("workflows", "show", "nope"),
        ("workflows", "cancel", "nope"),
        ("workflows", "resume", "nope"),
        ("workflows", "fork", "nope", "--from-step", "1"),
        ("send", "nope", '"hi"'),
    ],
    ids=["show", "cancel", "resume", "fork", "send"],
)
def test_unknown_id_is_a_clear_error_with_status_1(engine: Engine, args: tuple[str, ...]) -> None:
    result = run_cli(engine.database_url, *args)
    assert result.returncode == 1
    assert "no workflow with id 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "required"),
        (("workflows", "list", "--status", "DONE"), "unknown status 'DONE'"),
        (("workflows", "list", "--since", "yesterday"), "not a time"),
        (("workflows", "fork", "w", "--from-step", "0"), "must be 1 or more"),
        (("workflows", "fork", "w"), "--from-step"),
        (("workflows", "cancel"), "say which workflows to cancel"),
        (("workflows", "resume", "w", "--status", "ERROR"), "not both"),
        (("send", "w", "{not json"), "MESSAGE is not valid JSON"),
    ],
    ids=[
        "no-command",
        "bad-status",
        "bad-time",
        "step-0",
        "no-step",
        "no-target",
        "ids-and-filter",
        "bad-json",
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run_cli(f"sqlite:///{tmp_path / 'usage.db'}", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_database_url_from_the_environment(engine: Engine) -> None:
    with workflow_options(workflow_id="env-1"):
        cli_app.parent(3)
    env = {**os.environ, "DURABLE_DATABASE_URL": engine.database_url}
    result = subprocess.run(
        [durable_bin(), "workflows", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert {w["workflow_id"] for w in json.loads(result.stdout)} == {"env-1", "env-1-2"}


def test_unreachable_database_is_a_clear_error_with_status_1() -> None:
    result = run_cli("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", "workflows", "list")
    assert result.returncode == 1
    assert "Cannot connect to the database" in result.stderr and "--database-url" in result.stderr
    assert "Traceback" not in result.stderr
