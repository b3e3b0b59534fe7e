"""`durable inbox` lists runs waiting for input (what for, until when); `durable send` answers them."""

from __future__ import annotations

import json
import time

import cli_app
from cli_app import run_cli

from durable_core import Engine, workflow_options
from durable_core.testing import wait_until_waiting


def test_inbox_lists_waiting_workflows_and_send_answers_one(engine: Engine) -> None:
    url = engine.database_url
    with workflow_options(workflow_id="ask-1"):
        handle = engine.start_workflow(cli_app.approval, "delete the staging database")
    with workflow_options(workflow_id="nap-1"):
        engine.start_workflow(cli_app.napper)
    wait_until_waiting(engine, "ask-1")
    wait_until_waiting(engine, "nap-1")

    table = run_cli(url, "inbox")
    assert table.returncode == 0, table.stderr
    assert "ask-1" in table.stdout and "a message on topic 'approval'" in table.stdout
    assert "durable send ask-1 '<json>' --topic approval" in table.stdout
    assert "nap-1" not in table.stdout  # a timer is not waiting for input

    everything = run_cli(url, "inbox", "--all")
    assert "nap-1" in everything.stdout and "a timer (sleep)" in everything.stdout

    records = json.loads(run_cli(url, "inbox", "--json").stdout)
    assert [r["workflow_id"] for r in records] == ["ask-1"]
    wait = records[0]["waiting"]
    assert (wait["kind"], wait["topic"]) == ("recv", "approval")
    assert wait["answer_with"].startswith("durable send ask-1 ")
    now_ms = time.time() * 1000
    assert now_ms + 500_000 < wait["deadline"] < now_ms + 601_000  # recv(timeout_seconds=600)

    sent = run_cli(
        url, "send", "ask-1", '{"approved": false, "reason": "not on a Friday"}', "--topic", "approval"
    )
    assert sent.returncode == 0, sent.stderr
    assert "sent to ask-1" in sent.stdout
    assert handle.get_result(timeout_seconds=30) == {
        "request": "delete the staging database",
        "answer": {"approved": False, "reason": "not on a Friday"},
    }
    assert json.loads(run_cli(url, "inbox", "--json").stdout) == []
