"""Repairing workflows from the terminal: cancel, resume (one or by filter) and fork, and the
debugging story end to end: a step fails on a bad prompt, the prompt is fixed, a fork from that
step succeeds without re-running the steps before it."""

from __future__ import annotations

import json

import cli_app
import pytest
from cli_app import run_cli

from durable_core import AwaitedWorkflowCancelled, Engine, workflow_options
from durable_core.testing import wait_until_waiting


@pytest.fixture(autouse=True)
def _reset() -> None:
    cli_app.SETTINGS.prompt = cli_app.BAD_PROMPT
    cli_app.CALLS.clear()


def test_debugging_story_fix_the_prompt_and_fork_from_the_failed_step(engine: Engine) -> None:
    url = engine.database_url
    with workflow_options(workflow_id="story-1"), pytest.raises(ValueError, match="bad prompt"):
        cli_app.research("tides")
    assert cli_app.CALLS == {"fetch_documents": 1, "ask_model": 1}

    # 1. find the failed run and the failing step
    failed = json.loads(run_cli(url, "workflows", "list", "--status", "ERROR", "--json").stdout)
    assert [w["workflow_id"] for w in failed] == ["story-1"]
    shown = run_cli(url, "workflows", "show", "story-1")
    assert (
        "cli_test.ask_model" in shown.stdout and "the model refused the prompt 'bad prompt'" in shown.stdout
    )
    steps = json.loads(run_cli(url, "workflows", "show", "story-1", "--json").stdout)["steps"]
    failing = next(s for s in steps if s["status"] == "ERROR")
    assert failing["step_id"] == 2

    # 2. fix the setting, 3. fork from the failing step
    cli_app.SETTINGS.prompt = cli_app.GOOD_PROMPT
    forked = run_cli(
        url, "workflows", "fork", "story-1", "--from-step", str(failing["step_id"]), "--new-id", "story-1-fix"
    )
    assert forked.returncode == 0, forked.stderr
    assert "forked story-1 from step 2 as story-1-fix (1 step(s) copied)" in forked.stdout

    # the CLI has no workflow code: an engine that has it runs the fork
    result = engine.retrieve_workflow("story-1-fix").get_result(timeout_seconds=60)
    assert result == "published: summary of 3 documents about tides"
    assert cli_app.CALLS == {"fetch_documents": 1, "ask_model": 2, "publish": 1}  # step 1 was not re-run

    fixed = json.loads(run_cli(url, "workflows", "show", "story-1-fix", "--json").stdout)
    assert fixed["workflow"]["status"] == "SUCCESS"
    assert fixed["workflow"]["forked_from"] == "story-1"
    assert fixed["workflow"]["inputs"] == {"args": ["tides"], "kwargs": {}}
    assert [(s["name"], s["status"]) for s in fixed["steps"]] == [
        ("cli_test.fetch_documents", "OK"),
        ("cli_test.ask_model", "OK"),
        ("cli_test.publish", "OK"),
    ]
    assert fixed["steps"][0]["output"] == steps[0]["output"]  # copied, as recorded
    original = json.loads(run_cli(url, "workflows", "show", "story-1", "--json").stdout)["workflow"]
    assert original["status"] == "ERROR"  # the original run is left as it was


def test_fork_rejects_out_of_range_steps_and_taken_ids(engine: Engine) -> None:
    url = engine.database_url
    with workflow_options(workflow_id="story-2"), pytest.raises(ValueError):
        cli_app.research("reefs")
    too_far = run_cli(url, "workflows", "fork", "story-2", "--from-step", "4")
    assert too_far.returncode == 1
    assert "recorded steps 1..2" in too_far.stderr and "between 1 and 3" in too_far.stderr
    taken = run_cli(url, "workflows", "fork", "story-2", "--from-step", "1", "--new-id", "story-2")
    assert taken.returncode == 1 and "already exists" in taken.stderr
    assert [w.workflow_id for w in engine.list_workflows()] == ["story-2"]  # nothing was created

    as_json = run_cli(
        url, "workflows", "fork", "story-2", "--from-step", "3", "--json", "--app-version", "v2"
    )
    assert as_json.returncode == 0, as_json.stderr
    record = json.loads(as_json.stdout)
    assert record["forked_from"] == "story-2" and record["app_version"] == "v2"
    assert record["status"] == "ENQUEUED"  # v2 is not deployed: it waits for an engine of that version


def test_fork_a_running_workflow_is_allowed(engine: Engine) -> None:
    url = engine.database_url
    with workflow_options(workflow_id="live-1"):
        engine.start_workflow(cli_app.approval, "scale up")
    wait_until_waiting(engine, "live-1")
    forked = run_cli(url, "workflows", "fork", "live-1", "--from-step", "1", "--new-id", "live-1-copy")
    assert forked.returncode == 0, forked.stderr
    handle = engine.retrieve_workflow("live-1-copy")
    wait_until_waiting(engine, "live-1-copy")
    engine.send("live-1-copy", "ok", topic="approval")
    assert handle.get_result(timeout_seconds=30) == {"request": "scale up", "answer": "ok"}
    assert engine.get_workflow_status("live-1").status == "PENDING"  # the original still waits


def test_cancel_then_resume_one_workflow(engine: Engine) -> None:
    url = engine.database_url
    with workflow_options(workflow_id="wait-1"):
        handle = engine.start_workflow(cli_app.approval, "deploy")
    wait_until_waiting(engine, "wait-1")
    running = run_cli(url, "workflows", "resume", "wait-1")
    assert running.returncode == 0, running.stderr
    assert "is PENDING (running, waiting or queued): nothing to resume" in running.stdout
    assert engine.list_workflows(workflow_ids=["wait-1"], waiting=True)  # left alone, still waiting here

    cancelled = run_cli(url, "workflows", "cancel", "wait-1")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled wait-1 (cli_test.approval, was PENDING)" in cancelled.stdout
    with pytest.raises(AwaitedWorkflowCancelled):
        handle.get_result(timeout_seconds=30)
    again = run_cli(url, "workflows", "cancel", "wait-1")
    assert again.returncode == 0 and "already finished (CANCELLED)" in again.stdout

    resumed = run_cli(url, "workflows", "resume", "wait-1")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed wait-1" in resumed.stdout
    assert engine.get_workflow_status("wait-1").status in ("ENQUEUED", "PENDING")
    handle = engine.retrieve_workflow("wait-1")
    wait_until_waiting(engine, "wait-1")
    engine.send("wait-1", "approved", topic="approval")
    assert handle.get_result(timeout_seconds=30) == {"request": "deploy", "answer": "approved"}

    finished = run_cli(url, "workflows", "resume", "wait-1")
    assert finished.returncode == 1
    assert "already finished (SUCCESS)" in finished.stdout and "fork" in finished.stdout


def test_bulk_cancel_and_resume_by_filter(engine: Engine) -> None:
    url = engine.database_url
    for i in range(3):
        with workflow_options(workflow_id=f"bulk-{i}"):
            engine.start_workflow(cli_app.approval, f"request {i}")
    with workflow_options(workflow_id="other-1"):
        cli_app.parent(1)
    for i in range(3):
        wait_until_waiting(engine, f"bulk-{i}")

    dry = run_cli(url, "workflows", "cancel", "--name", "cli_test.approval", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would cancel 3 workflow(s)" in dry.stderr  # a remark, not data: pipes carry only rows
    assert all(f"bulk-{i}" in dry.stdout for i in range(3))
    assert {w.status for w in engine.list_workflows(name="cli_test.approval")} == {"PENDING"}

    bulk = run_cli(url, "workflows", "cancel", "--name", "cli_test.approval", "--status", "PENDING")
    assert bulk.returncode == 0, bulk.stderr
    assert "3 workflow(s) cancelled" in bulk.stdout
    assert {w.status for w in engine.list_workflows(name="cli_test.approval")} == {"CANCELLED"}
    assert engine.get_workflow_status("other-1").status == "SUCCESS"

    back = run_cli(url, "workflows", "resume", "--name", "cli_test.approval")
    assert back.returncode == 0, back.stderr
    assert "3 workflow(s) resumed" in back.stdout
    assert {w.status for w in engine.list_workflows(name="cli_test.approval")} <= {"ENQUEUED", "PENDING"}


def test_cancel_and_send_say_what_a_finished_state_means(engine: Engine) -> None:
    """RETRIES_EXCEEDED is finished for `cancel` (nothing to cancel, nothing changes); a message sent
    to a failed workflow is read only if it is resumed, to a successful one never."""
    url = engine.database_url
    with workflow_options(workflow_id="fin-err"), pytest.raises(ValueError, match="bad prompt"):
        cli_app.research("tides")
    cli_app.SETTINGS.prompt = cli_app.GOOD_PROMPT
    with workflow_options(workflow_id="fin-ok"):
        cli_app.research("tides")
    with workflow_options(workflow_id="fin-parked"), pytest.raises(ValueError, match="bad prompt"):
        cli_app.SETTINGS.prompt = cli_app.BAD_PROMPT
        cli_app.research("reefs")
    # parked after too many recoveries (what a crash loop ends in; its own test is in tests/core)
    assert engine.workflows.update("fin-parked", {"status": "RETRIES_EXCEEDED"})

    cancelled = run_cli(url, "workflows", "cancel", "fin-parked")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "already finished (RETRIES_EXCEEDED): nothing to cancel" in cancelled.stdout
    assert engine.get_workflow_status("fin-parked").status == "RETRIES_EXCEEDED"

    to_failed = run_cli(url, "send", "fin-err", '"hello"')
    assert "it reads the message only if it is resumed (durable workflows resume fin-err)" in to_failed.stdout
    to_done = run_cli(url, "send", "fin-ok", '"hello"')
    assert "already finished (SUCCESS); nobody will read it" in to_done.stdout
