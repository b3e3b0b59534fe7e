"""Usage and budgets in the CLI: tokens and cost columns in `durable workflows list/show` (and in
`--json`), `durable usage`, budget waits in `durable inbox`, and `durable budget raise`.

Every command runs the real console script in a subprocess whose stdout is a pipe (plain output),
unless a test asks for `--format table`. Unknown usage prints as unknown, never as 0.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_app import durable_bin, run_cli

from durable_core import Budget, Engine, Usage, record_usage, step, workflow, workflow_options
from durable_core._inspection import raise_outcome
from durable_core.testing import wait_until_waiting

MODEL_CALLS: list[str] = []


@step(name="cli_usage.model", model_call=True)
def priced_model(prompt: str) -> str:
    MODEL_CALLS.append(prompt)
    record_usage(
        Usage(model="fake-1", provider="scripted", input_tokens=100, output_tokens=50, cost_usd=0.01)
    )
    return f"answer to {prompt}"


@step(name="cli_usage.silent_model", model_call=True)
def silent_model(prompt: str) -> str:
    MODEL_CALLS.append(prompt)  # a scripted model that reports nothing
    return prompt.upper()


@step(name="cli_usage.tool")
def tool(x: int) -> int:
    return x + 1


@workflow(name="cli_usage.agent")
def agent(n: int) -> int:
    for i in range(n):
        priced_model(f"q{i}")
    return n


@workflow(name="cli_usage.quiet")
def quiet() -> str:
    return silent_model("hello")


@workflow(name="cli_usage.no_model")
def no_model() -> int:
    return tool(1)


@workflow(name="cli_usage.parent")
def parent() -> int:
    silent_model("mixed")
    return agent(2)


@pytest.fixture(autouse=True)
def _reset() -> None:
    MODEL_CALLS.clear()


def _runs(engine: Engine) -> None:
    with workflow_options(workflow_id="priced"):
        agent(3)  # 3 calls: 450 tokens, $0.03
    with workflow_options(workflow_id="silent"):
        quiet()  # 1 call that reported nothing: unknown
    with workflow_options(workflow_id="toolonly"):
        no_model()  # no model call: "-"
    with workflow_options(workflow_id="mixed"):
        parent()  # 1 unknown + 2 priced in its child: 300+unknown tokens


def _table_rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    return {line.split("\t")[0]: line.split("\t") for line in lines[1:]}


def test_list_and_show_have_tokens_and_cost(engine: Engine) -> None:
    url = engine.database_url
    _runs(engine)

    plain = run_cli(url, "workflows", "list")
    assert plain.returncode == 0, plain.stderr
    header = plain.stdout.splitlines()[0].split("\t")
    assert header[-2:] == ["TOKENS", "COST_USD"]
    rows = _table_rows(plain.stdout)
    assert rows["priced"][-2:] == ["450", "0.03"]
    assert rows["silent"][-2:] == ["unknown", "unknown"]  # nothing reported: never 0
    assert rows["toolonly"][-2:] == ["-", "-"]  # no model call
    assert rows["mixed"][-2:] == ["300+unknown", "0.02+unknown"]  # the child's calls count too
    assert rows["mixed-2"][-2:] == ["300", "0.02"]

    records = {r["workflow_id"]: r for r in json.loads(run_cli(url, "workflows", "list", "--json").stdout)}
    priced = records["priced"]
    assert (priced["tokens"], priced["cost_usd"]) == (450, pytest.approx(0.03))
    assert priced["usage"]["model_calls"] == 3 and priced["usage"]["input_tokens"] == 300
    assert priced["usage"]["by_model"]["fake-1"]["output_tokens"] == 150
    silent = records["silent"]
    assert silent["tokens"] is None and silent["cost_usd"] is None
    assert silent["usage"]["model_calls"] == 1 and silent["usage"]["unknown_tokens"] == 1
    assert silent["usage"]["input_tokens"] is None  # not 0: nobody reported it
    assert records["toolonly"]["usage"] is None and records["toolonly"]["tokens"] is None
    assert records["mixed"]["usage"]["complete"] is False and records["mixed"]["tokens"] == 300

    table = run_cli(url, "workflows", "list", "--format", "table")
    assert "tokens" in table.stdout and "$0.03" in table.stdout and "unknown" in table.stdout
    assert "300+?" in table.stdout and "+?: some model calls reported no tokens" in table.stdout

    shown = run_cli(url, "workflows", "show", "priced")
    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split("\t", 1) for line in shown.stdout.split("\n\n")[0].splitlines())
    assert (fields["model_calls"], fields["tokens"], fields["cost_usd"]) == ("3", "450", "0.03")
    assert fields["model fake-1"] == "3 model calls, 450 tokens, $0.03"
    quiet_fields = run_cli(url, "workflows", "show", "silent").stdout
    assert "tokens\tunknown\n" in quiet_fields and "cost_usd\tunknown\n" in quiet_fields
    assert "usage\tno model call recorded\n" in run_cli(url, "workflows", "show", "toolonly").stdout
    full = json.loads(run_cli(url, "workflows", "show", "mixed", "--json").stdout)
    assert full["workflow"]["usage"]["model_calls"] == 3 and full["workflow"]["cost_usd"] == pytest.approx(
        0.02
    )
    panel = run_cli(url, "workflows", "show", "priced", "--format", "table").stdout
    assert "3 model calls, 450 tokens, $0.03 (this workflow and its children)" in panel


def test_usage_prints_a_table_by_name_workflow_model_and_day(engine: Engine) -> None:
    url = engine.database_url
    _runs(engine)
    today = datetime.now(UTC).strftime("%Y-%m-%d")

    by_name = run_cli(url, "usage", "--since", "1d", "--by", "name")
    assert by_name.returncode == 0, by_name.stderr
    lines = by_name.stdout.splitlines()
    assert lines[0].split("\t") == [
        "NAME", "MODEL_CALLS", "REQUESTS", "INPUT_TOKENS", "OUTPUT_TOKENS", "TOKENS", "COST_USD",
    ]  # fmt: skip
    rows = _table_rows(by_name.stdout)
    assert rows["cli_usage.agent"] == ["cli_usage.agent", "3", "3", "300", "150", "450", "0.03"]
    assert rows["cli_usage.quiet"] == [
        "cli_usage.quiet",
        "1",
        "unknown",
        "unknown",
        "unknown",
        "unknown",
        "unknown",
    ]
    assert rows["cli_usage.parent"][1] == "3" and rows["cli_usage.parent"][5:] == [
        "300+unknown",
        "0.02+unknown",
    ]
    assert "cli_usage.no_model" not in rows  # no model call, nothing to report

    by_workflow = _table_rows(run_cli(url, "usage", "--by", "workflow").stdout)
    assert set(by_workflow) == {"priced", "silent", "mixed"}  # top-level runs, children inside
    by_model = _table_rows(run_cli(url, "usage", "--by", "model", "--since", "30m").stdout)
    assert by_model["fake-1"][1:3] == ["5", "5"] and by_model["fake-1"][5] == "750"
    assert by_model["unknown"][1] == "2" and by_model["unknown"][5] == "unknown"
    by_day = _table_rows(run_cli(url, "usage", "--by", "day", "--since", "12h").stdout)
    assert list(by_day) == [today] and by_day[today][1] == "7"
    named = _table_rows(
        run_cli(url, "usage", "--name", "cli_usage.agent", "--name", "cli_usage.quiet").stdout
    )
    assert set(named) == {"cli_usage.agent", "cli_usage.quiet"}

    report = json.loads(run_cli(url, "usage", "--by", "model", "--format", "json").stdout)
    assert report["by"] == "model" and report["groups"]["fake-1"]["tokens"] == 750
    assert report["total"]["model_calls"] == 7 and report["total"]["cost_usd"] == pytest.approx(0.05)
    assert report["total"]["unknown_tokens"] == 2 and report["total"]["complete"] is False

    table = run_cli(url, "usage", "--since", "1d", "--format", "table")
    assert "model usage by name since" in table.stdout and "total" in table.stdout
    assert "cli_usage.agent" in table.stdout and "0.05+?" in table.stdout

    later = run_cli(url, "usage", "--since", "2999-01-01")
    assert later.returncode == 0 and later.stdout == ""
    assert "no model call recorded since 2999-01-01" in later.stderr  # remarks on stderr
    assert json.loads(run_cli(url, "usage", "--since", "2999-01-01", "--json").stdout)["groups"] == {}
    for bad in (("--since", "yesterday"), ("--by", "week")):
        wrong = run_cli(url, "usage", *bad)
        assert wrong.returncode == 2 and "Traceback" not in wrong.stderr, wrong.stderr


def _shell(command: str, url: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(durable_bin()).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {k: v for k, v in os.environ.items() if k != "DURABLE_DATABASE_URL"}
    return subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        env={**env, "PATH": path, "DURABLE_DATABASE_URL": url},
        timeout=120,
        check=False,
    )


def test_a_budget_wait_is_in_the_inbox_and_budget_raise_resumes_it(engine: Engine) -> None:
    url = engine.database_url
    with workflow_options(workflow_id="capped run", budget=Budget(max_model_calls=2)):
        handle = engine.start_workflow(agent, 4)
    status = wait_until_waiting(engine, "capped run")
    assert status.waiting is not None and status.waiting.kind == "budget"
    assert MODEL_CALLS == ["q0", "q1"]
    # A raise wakes the run, which may have left its wait when the status is read after the raise:
    # the status read before it still says the run was paused by its budget (found flaky on PG).
    moved_on = dataclasses.replace(status, waiting=None)
    assert raise_outcome(Budget(max_model_calls=10), moved_on, before=status) == (
        "it was paused by its budget: it continues now, where it stopped",
        False,
    )

    plain = run_cli(url, "inbox")
    assert plain.returncode == 0, plain.stderr
    header, row = plain.stdout.splitlines()
    assert header.split("\t") == ["ID", "NAME", "KIND", "TOPIC", "DEADLINE", "WAITING_FOR", "ANSWER_WITH"]
    fields = row.split("\t")
    assert fields[:4] == ["capped run", "cli_usage.agent", "budget", ""]
    # what was spent and the limit it reached
    assert "reached 2 of max_model_calls=2 model calls" in fields[5]
    assert "this run spent 2 model calls, 300 tokens, $0.02" in fields[5]
    command = fields[6]  # a budget wait is not answered by send: its action is a raise
    assert command == f"durable budget raise 'capped run' --calls '<calls>' --database-url {shlex.quote(url)}"

    records = json.loads(run_cli(url, "inbox", "--json").stdout)
    wait = records[0]["waiting"]
    assert (wait["kind"], wait["answer_with"], wait["budget_limit"]) == ("budget", None, "max_model_calls")
    assert wait["raise_with"] == command and records[0]["tokens"] == 300
    table = run_cli(url, "inbox", "--format", "table").stdout
    assert "a budget raise (reached 2 of max_model_calls=2" in " ".join(table.split())
    assert "raise the budget with" in table and command in table.splitlines()[-1]
    assert "durable send" not in table

    # usage errors, an id without a budget, an unknown id: one line, no traceback, nothing changed
    nothing = run_cli(url, "budget", "raise", "capped run")
    assert nothing.returncode == 2 and "say which limit to raise" in nothing.stderr
    negative = run_cli(url, "budget", "raise", "capped run", "--cost", "-1")
    assert negative.returncode == 2
    with workflow_options(workflow_id="free"):
        agent(1)
    unbudgeted = run_cli(url, "budget", "raise", "free", "--cost", "5")
    assert unbudgeted.returncode == 1 and "has no budget to raise" in unbudgeted.stderr
    unknown = run_cli(url, "budget", "raise", "nope", "--cost", "5")
    assert unknown.returncode == 1 and "no workflow with id 'nope'" in unknown.stderr
    assert "Traceback" not in unbudgeted.stderr + unknown.stderr
    too_low = run_cli(url, "budget", "raise", "capped run", "--calls", "2", "--cost", "1.5")
    assert too_low.returncode == 0, too_low.stderr
    assert "is now: max_cost_usd=1.5, max_model_calls=2 (on_exceeded=pause)" in too_low.stdout
    assert "still reached: 2 of max_model_calls=2 model calls" in too_low.stdout
    assert engine.get_workflow_status("capped run").waiting is not None and MODEL_CALLS == ["q0", "q1", "q0"]

    raised = _shell(command.replace("'<calls>'", "10"), url)  # the inbox's command, as pasted
    assert raised.returncode == 0, raised.stderr
    assert (
        "budget of capped run (cli_usage.agent) is now: max_cost_usd=1.5, max_model_calls=10" in raised.stdout
    )
    assert "it continues now, where it stopped" in raised.stdout
    assert handle.get_result(timeout_seconds=60) == 4
    assert MODEL_CALLS == ["q0", "q1", "q0", "q2", "q3"]  # the pause resumed where it stopped
    assert json.loads(run_cli(url, "inbox", "--json").stdout) == []

    as_json = run_cli(url, "budget", "raise", "capped run", "--tokens", "900", "--json")
    budget: dict[str, Any] = json.loads(as_json.stdout)
    assert budget == {"max_cost_usd": 1.5, "max_tokens": 900, "max_model_calls": 10, "on_exceeded": "pause"}
