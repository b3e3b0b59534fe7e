"""The dashboard shows what runs cost: tokens and cost per run in the list, usage on a run's page, a
per-day bar chart of cost and tokens (plain HTML and CSS: no script, no external asset), and runs
paused by their budget in the inbox with what they spent and the limit, raised from there.
In a real headless Chromium, on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
from dash_app import ARTIFACTS, dashboard_server, http
from playwright.sync_api import Page, Request, expect

from durable_core import Budget, Engine, Usage, record_usage, step, workflow, workflow_options
from durable_core.testing import wait_until_waiting

TOKEN = "usage-token-for-tests"
CALLS: list[str] = []


@step(name="dash_usage.model", model_call=True)
def model(prompt: str) -> str:
    CALLS.append(prompt)
    record_usage(
        Usage(model="fake-1", provider="scripted", input_tokens=100, output_tokens=50, cost_usd=0.01)
    )
    return prompt[::-1]


@step(name="dash_usage.silent_model", model_call=True)
def silent_model(prompt: str) -> str:
    CALLS.append(prompt)  # reports nothing
    return prompt


@workflow(name="dash_usage.agent")
def agent(n: int) -> int:
    for i in range(n):
        model(f"q{i}")
    return n


@workflow(name="dash_usage.quiet")
def quiet() -> str:
    return silent_model("hi")


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()


@pytest.fixture
def base(engine: Engine) -> Iterator[str]:
    with dashboard_server(engine.database_url, token=TOKEN) as url:
        yield url


def _offline(page: Page, base: str) -> list[str]:
    """Every request the page makes; the test asserts all go to the dashboard itself."""
    seen: list[str] = []

    def record(request: Request) -> None:
        seen.append(request.url)

    page.on("request", record)
    host = urlparse(base).netloc
    page.route(
        "**/*",
        lambda route: route.continue_() if urlparse(route.request.url).netloc == host else route.abort(),
    )
    return seen


def test_cost_per_run_and_a_per_day_chart(engine: Engine, base: str, page: Page, backend: str) -> None:
    with workflow_options(workflow_id="dash-priced"):
        agent(3)
    with workflow_options(workflow_id="dash-quiet"):
        quiet()
    requests = _offline(page, base)

    page.goto(f"{base}/workflows?token={TOKEN}&refresh=0")
    table = page.get_by_test_id("workflows")
    priced = table.locator("tr", has_text="dash-priced")
    expect(priced.get_by_test_id("tokens")).to_have_text("450")
    expect(priced.get_by_test_id("cost")).to_have_text("$0.03")
    silent = table.locator("tr", has_text="dash-quiet")
    expect(silent.get_by_test_id("tokens")).to_have_text("unknown")  # nothing reported: never 0
    expect(silent.get_by_test_id("cost")).to_have_text("unknown")

    page.get_by_role("link", name="dash-priced").click()
    expect(page.get_by_test_id("usage")).to_have_text("3 model calls, 450 tokens, $0.03")
    expect(page.locator(".meta")).to_contain_text("fake-1: 3 model calls, 450 tokens, $0.03")

    page.get_by_role("link", name="Usage").click()
    expect(page).to_have_url(re.compile(r"/usage$"))
    expect(page.get_by_test_id("usage-total")).to_contain_text(
        "4 model calls, 450+unknown tokens, $0.03+unknown"
    )
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    cost_bar = page.get_by_test_id(f"cost-chart-{today}")
    expect(cost_bar).to_have_attribute("title", f"{today}: $0.03+?")
    expect(cost_bar.locator(".bar")).to_have_attribute("style", "height:100.0%")  # the largest day
    expect(page.get_by_test_id(f"tokens-chart-{today}")).to_contain_text("450+?")
    days = page.get_by_test_id("cost-chart").locator(".day")
    assert days.count() >= 30  # the default window, 30 days: idle days are empty bars
    idle = days.first
    expect(idle.locator(".bar")).to_have_attribute("style", "height:0.0%")
    by_name = page.get_by_test_id("usage-by-name")
    expect(by_name.locator("tr", has_text="dash_usage.agent")).to_contain_text("450")
    expect(by_name.locator("tr", has_text="dash_usage.quiet")).to_contain_text("unknown")

    page.goto(f"{base}/usage?since=2999-01-01")
    expect(page.locator("main")).to_contain_text("No model call recorded in this window.")
    page.goto(f"{base}/usage?since=soon")
    expect(page.locator(".notice.bad")).to_contain_text("is not a time")
    page.goto(f"{base}/usage?since=2h&name=dash_usage.quiet")
    expect(page.get_by_test_id("usage-total")).to_contain_text("1 model call, unknown tokens, cost unknown")

    assert requests and all(url.startswith(base) for url in requests), requests  # offline: no asset
    status, html = http("GET", f"{base}/usage", headers={"X-Durable-Token": TOKEN})
    assert status == 200 and "<script" not in html and "http://" not in html and "https://" not in html
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{base}/usage")
    page.screenshot(path=str(ARTIFACTS / f"dashboard-usage-{backend}.png"), full_page=True)


def test_a_budget_pause_is_in_the_inbox_and_raised_there(engine: Engine, base: str, page: Page) -> None:
    with workflow_options(workflow_id="dash-capped", budget=Budget(max_cost_usd=0.02)):
        handle = engine.start_workflow(agent, 4)
    status = wait_until_waiting(engine, "dash-capped")
    assert status.waiting is not None and status.waiting.kind == "budget" and CALLS == ["q0", "q1"]

    page.goto(f"{base}/inbox?token={TOKEN}")
    card = page.get_by_test_id("inbox-dash-capped")
    expect(card).to_contain_text("dash_usage.agent")
    expect(page.get_by_test_id("budget-dash-capped")).to_contain_text(
        "Paused by its budget: reached $0.0200 of max_cost_usd=$0.02"
    )
    expect(page.get_by_test_id("spent-dash-capped")).to_have_text(
        "This run spent 2 model calls, 300 tokens, $0.02."
    )
    expect(card).not_to_contain_text("Send answer")  # a budget wait is not answered by a message
    expect(card.locator("input[name=max_cost_usd]")).to_have_attribute("placeholder", "now 0.02")

    card.locator("input[name=max_model_calls]").fill("-3")  # below min=0: the browser sends nothing
    card.get_by_role("button", name="Raise budget").click()
    expect(card.locator("input[name=max_model_calls]")).to_have_value("-3")
    assert engine.get_workflow_status("dash-capped").waiting is not None

    page.goto(f"{base}/inbox")
    card = page.get_by_test_id("inbox-dash-capped")
    card.get_by_role("button", name="Raise budget").click()  # no limit given
    expect(page.get_by_test_id("inbox-dash-capped").locator(".notice.bad")).to_contain_text(
        "Give at least one new limit."
    )

    page.goto(f"{base}/inbox")
    card = page.get_by_test_id("inbox-dash-capped")
    card.locator("input[name=max_cost_usd]").fill("0.5")
    card.get_by_role("button", name="Raise budget").click()
    expect(page.locator(".notice")).to_contain_text("Budget of dash-capped is now max_cost_usd=0.5.")
    assert handle.get_result(timeout_seconds=60) == 4
    assert CALLS == ["q0", "q1", "q2", "q3"]  # continued where it stopped
    page.goto(f"{base}/inbox")
    expect(page.locator("main")).to_contain_text("Nothing is waiting for input.")
    page.goto(f"{base}/workflows?refresh=0")
    expect(page.get_by_test_id("workflows").locator("tr", has_text="dash-capped")).to_contain_text("$0.04")
