"""The dashboard in a real headless Chromium: list, open a workflow, fork from a step, cancel and
resume, answer an inbox item; and the token rules (401, nothing changed)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import quote

import dash_app
import pytest
from dash_app import ARTIFACTS, dashboard_server, http
from playwright.sync_api import Page, expect

from durable_core import AwaitedWorkflowCancelled, Engine, workflow_options
from durable_core.testing import wait_until_waiting

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(autouse=True)
def _reset() -> None:
    dash_app.SETTINGS.prompt = dash_app.BAD_PROMPT
    dash_app.CALLS.clear()


@pytest.fixture
def base(engine: Engine) -> Iterator[str]:
    with dashboard_server(engine.database_url, token=TOKEN) as url:
        yield url


def _failed_run(workflow_id: str) -> None:
    with workflow_options(workflow_id=workflow_id), pytest.raises(ValueError, match="bad prompt"):
        dash_app.agent("which tide tables are accurate?")


def test_list_and_open_a_workflow(engine: Engine, base: str, page: Page, backend: str) -> None:
    _failed_run("dash-bad")
    with workflow_options(workflow_id="dash-ok"):
        dash_app.SETTINGS.prompt = dash_app.GOOD_PROMPT
        dash_app.agent("best harbour?")

    page.goto(f"{base}/workflows?token={TOKEN}&refresh=0")
    table = page.get_by_test_id("workflows")
    expect(table).to_contain_text("dash-bad")
    expect(table).to_contain_text("dash-ok")
    expect(table.locator("tr", has_text="dash-bad")).to_contain_text("ERROR")
    expect(table.locator("tr", has_text="dash-bad")).to_contain_text("ValueError: the model refused")
    expect(table.locator("tr", has_text="dash-ok")).to_contain_text("SUCCESS")

    page.select_option("select[name=status]", "ERROR")
    page.get_by_role("button", name="Filter").click()
    expect(table).to_contain_text("dash-bad")
    expect(table).not_to_contain_text("dash-ok")

    page.get_by_role("link", name="dash-bad").click()
    expect(page).to_have_url(re.compile(r"/workflows/dash-bad$"))
    expect(page.locator("h1")).to_have_text("dash-bad")
    expect(page.get_by_test_id("step-1")).to_contain_text("dash_test.search")
    expect(page.get_by_test_id("step-1")).to_contain_text("Result 0 for which tide tables are accurate?")
    failed = page.get_by_test_id("step-2")
    expect(failed).to_have_class(re.compile(r"\bfailed\b"))
    expect(failed.locator("pre.error").first).to_contain_text(
        "ValueError: the model refused the prompt 'bad prompt'"
    )
    expect(page.get_by_test_id("fork-2")).to_be_visible()

    status, body = http("GET", f"{base}/api/workflows/dash-bad", headers={"X-Durable-Token": TOKEN})
    assert status == 200
    record = json.loads(body)
    assert record["workflow"]["status"] == "ERROR"
    assert [s["status"] for s in record["steps"]] == ["OK", "ERROR"]
    assert http("GET", f"{base}/workflows/no-such-run", headers={"X-Durable-Token": TOKEN})[0] == 404

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-workflow-{backend}.png"), full_page=True)


def test_fork_from_the_failed_step_after_fixing_the_prompt(engine: Engine, base: str, page: Page) -> None:
    _failed_run("dash-story")
    dash_app.SETTINGS.prompt = dash_app.GOOD_PROMPT

    page.goto(f"{base}/workflows/dash-story?token={TOKEN}")
    page.get_by_test_id("fork-2").click()
    expect(page.locator(".notice")).to_contain_text("Forked from dash-story at step 2")
    new_id = page.locator("h1").inner_text()
    assert new_id != "dash-story"
    expect(page.locator(".meta")).to_contain_text("Forked from")

    result = engine.retrieve_workflow(new_id).get_result(timeout_seconds=60)
    assert result == {
        "saved": True,
        "answer": "Result 0 for which tide tables are accurate? is the best match.",
    }
    assert dash_app.CALLS == {"search": 1, "llm": 2, "save": 1}  # step 1 was copied, not re-run

    page.goto(f"{base}/workflows/{quote(new_id)}")
    expect(page.locator(".meta")).to_contain_text("SUCCESS")
    for step_id in (1, 2, 3):
        expect(page.get_by_test_id(f"step-{step_id}")).not_to_have_class(re.compile(r"\bfailed\b"))
    expect(page.get_by_test_id("step-3")).to_contain_text('"saved": true')
    page.get_by_role("link", name="dash-story").click()
    expect(page.locator(".meta")).to_contain_text("ERROR")  # the original is untouched


def test_cancel_and_resume_buttons(engine: Engine, base: str, page: Page) -> None:
    with workflow_options(workflow_id="dash-wait"):
        handle = engine.start_workflow(dash_app.approval, "rotate keys")
    wait_until_waiting(engine, "dash-wait")

    page.goto(f"{base}/workflows/dash-wait?token={TOKEN}&refresh=0")
    expect(page.locator(".meta")).to_contain_text("a message on topic 'approval'")
    page.get_by_test_id("cancel").click()
    expect(page.locator(".notice")).to_contain_text("Cancelled.")
    expect(page.locator(".meta")).to_contain_text("CANCELLED")
    with pytest.raises(AwaitedWorkflowCancelled):
        handle.get_result(timeout_seconds=30)

    page.get_by_test_id("resume").click()
    expect(page.locator(".notice")).to_contain_text("Resumed")
    assert engine.get_workflow_status("dash-wait").status in ("ENQUEUED", "PENDING")
    handle = engine.retrieve_workflow("dash-wait")
    wait_until_waiting(engine, "dash-wait")
    engine.send("dash-wait", "go", topic="approval")
    assert handle.get_result(timeout_seconds=30) == {"action": "rotate keys", "answer": "go"}


def test_answer_an_inbox_item(engine: Engine, base: str, page: Page) -> None:
    with workflow_options(workflow_id="dash-ask"):
        handle = engine.start_workflow(dash_app.approval, "drop table users")
    wait_until_waiting(engine, "dash-ask")

    page.goto(f"{base}/inbox?token={TOKEN}")
    card = page.get_by_test_id("inbox-dash-ask")
    expect(card).to_contain_text("a message on topic 'approval'")
    expect(card).to_contain_text("dash_test.approval")

    card.locator("textarea").fill("{approved: no}")
    card.get_by_role("button", name="Send answer").click()
    card = page.get_by_test_id("inbox-dash-ask")
    expect(card.locator(".notice.bad")).to_contain_text("Not valid JSON")
    expect(card.locator("textarea")).to_have_value("{approved: no}")  # the draft is kept
    assert engine.get_workflow_status("dash-ask").waiting is not None  # nothing was sent

    card.locator("textarea").fill('{"approved": false, "reason": "never on Friday"}')
    card.get_by_role("button", name="Send answer").click()
    expect(page.locator(".notice")).to_contain_text("Sent to dash-ask.")
    assert handle.get_result(timeout_seconds=30) == {
        "action": "drop table users",
        "answer": {"approved": False, "reason": "never on Friday"},
    }
    page.goto(f"{base}/inbox")
    expect(page.locator("main")).to_contain_text("Nothing is waiting for input.")


def test_requests_without_the_token_get_401_and_change_nothing(engine: Engine, base: str, page: Page) -> None:
    with workflow_options(workflow_id="dash-guarded"):
        engine.start_workflow(dash_app.approval, "ship it")
    wait_until_waiting(engine, "dash-guarded")

    response = page.goto(f"{base}/workflows")
    assert response is not None and response.status == 401
    expect(page.locator("body")).to_contain_text("token is required")
    assert "dash-guarded" not in page.content()

    for headers in ({}, {"X-Durable-Token": "wrong"}, {"Authorization": "Bearer wrong"}):
        status, _ = http("POST", f"{base}/workflows/dash-guarded/cancel", data=b"csrf=x", headers=headers)
        assert status == 401
        status, _ = http("GET", f"{base}/workflows/dash-guarded", headers=headers)
        assert status == 401
    status, _ = http("POST", f"{base}/workflows/dash-guarded/send", data=b"message=%22yes%22&topic=approval")
    assert status == 401
    status, _ = http("GET", f"{base}/workflows/dash-guarded", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    # with the token but without the page's form secret: refused too (no cross-site form posts)
    status, _ = http(
        "POST",
        f"{base}/workflows/dash-guarded/cancel",
        data=b"csrf=forged",
        headers={"X-Durable-Token": TOKEN},
    )
    assert status == 403
    status, _ = http("GET", f"{base}/workflows/dash-guarded/cancel", headers={"X-Durable-Token": TOKEN})
    assert status in (404, 405)  # state changes are POST only: a GET cancels nothing

    state = engine.get_workflow_status("dash-guarded")
    assert state.status == "PENDING" and state.waiting is not None
