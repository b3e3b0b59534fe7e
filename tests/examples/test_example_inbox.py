"""examples/agent_inbox in a real headless Chromium: agents wait, the page shows them, a click answers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from example_support import EXAMPLES, example_env

if TYPE_CHECKING:
    from playwright.sync_api import Page

INBOX = EXAMPLES / "agent_inbox" / "inbox.py"
pytestmark = pytest.mark.crash


class Server:
    """One `inbox.py` process; `url` is read from its first lines."""

    def __init__(self, database_url: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(INBOX), "--database-url", database_url, "--port", "0", *extra],
            env=example_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("inbox.py exited early:\n" + "".join(self.lines))
            self.lines.append(line)
            if line.startswith("inbox at "):
                self.url = line.split()[-1]
                return
        raise AssertionError("inbox.py did not start:\n" + "".join(self.lines))

    def waiting(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url + "api/waiting", timeout=10) as response:
            return json.loads(response.read())

    def wait_for_waiting(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        items = self.waiting()
        while len(items) != count and time.monotonic() < deadline:
            time.sleep(0.1)
            items = self.waiting()
        assert len(items) == count, items
        return items

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def _decide(page: Page, workflow_id: str, button: str, note: str = "") -> None:
    row = page.locator(f'#waiting tr[data-workflow-id="{workflow_id}"]')
    if note:
        row.locator('input[name="note"]').fill(note)
    row.get_by_role("button", name=button).click()


def _outcome(page: Page, workflow_id: str) -> str:
    cell = page.locator(f'#finished tr[data-workflow-id="{workflow_id}"] td.outcome')
    deadline = time.monotonic() + 30
    while cell.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        page.reload()
    return cell.inner_text()


def test_an_agent_waits_the_page_shows_it_a_click_approves_it(
    database_url: str, page: Page, servers: list[Server]
) -> None:
    server = Server(database_url, "--no-frameworks")
    servers.append(server)
    server.wait_for_waiting(3)
    page.goto(server.url + "?refresh=0")
    rows = page.locator("#waiting tr[data-workflow-id]")
    assert rows.count() == 3
    refund = page.locator('#waiting tr[data-workflow-id="refund-ticket-981"]')
    assert "Refund 120.00 EUR on order A-1042" in refund.inner_text()
    assert "topic 'approval'" in refund.inner_text()

    _decide(page, "refund-ticket-981", "Approve")
    assert (
        _outcome(page, "refund-ticket-981") == "refunded 120.00 EUR on order A-1042 (approved by inbox page)"
    )
    _decide(page, "deploy-billing", "Reject", note="change freeze")
    assert _outcome(page, "deploy-billing") == "deploy of billing cancelled by inbox page"
    assert [item["workflow_id"] for item in server.waiting()] == ["outreach-ada"]
    page.reload()
    assert page.locator("#waiting tr[data-workflow-id]").count() == 1

    page.get_by_role("button", name="Start three more demo agents").click()
    assert {item["workflow_id"] for item in server.wait_for_waiting(4)} == {
        "outreach-ada",
        "refund-ticket-981-2",
        "outreach-ada-2",
        "deploy-billing-2",
    }
    page.reload()
    assert page.locator("#waiting tr[data-workflow-id]").count() == 4


def test_restarting_the_server_while_agents_wait_loses_nothing(
    database_url: str, page: Page, servers: list[Server]
) -> None:
    first = Server(database_url, "--no-frameworks")
    servers.append(first)
    before = {item.pop("workflow_id"): item for item in first.wait_for_waiting(3)}
    for item in before.values():
        del item["since"]  # the row's update time: the restart's claim changes it
    page.goto(first.url + "?refresh=0")
    assert page.locator("#waiting tr[data-workflow-id]").count() == 3
    first.kill()  # kill -9 while three agents wait

    second = Server(database_url, "--no-frameworks")
    servers.append(second)
    assert "started 0 agents" in "".join(second.lines)  # nothing started twice
    after = {item.pop("workflow_id"): item for item in second.wait_for_waiting(3)}
    for item in after.values():
        del item["since"]
    assert after == before  # same agents, same requests, same deadlines
    page.goto(second.url + "?refresh=0")
    assert page.locator("#waiting tr[data-workflow-id]").count() == 3
    _decide(page, "outreach-ada", "Approve")
    assert _outcome(page, "outreach-ada") == "sent 'Your trial' to ada@example.com (approved by inbox page)"
    assert {item["workflow_id"] for item in second.waiting()} == {"refund-ticket-981", "deploy-billing"}


@pytest.mark.backends("sqlite")
def test_a_second_page_only_process_can_answer(database_url: str, page: Page, servers: list[Server]) -> None:
    agents = Server(database_url, "--no-frameworks")
    servers.append(agents)
    agents.wait_for_waiting(3)
    viewer = Server(database_url, "--page-only")
    servers.append(viewer)
    page.goto(viewer.url + "?refresh=0")
    assert page.locator("#waiting tr[data-workflow-id]").count() == 3
    _decide(page, "refund-ticket-981", "Reject")
    assert _outcome(page, "refund-ticket-981").startswith("refund declined by inbox page")

    # the page refreshes itself: a decision made elsewhere (the other process's page) shows up
    from playwright.sync_api import expect

    page.goto(viewer.url + "?refresh=1")
    expect(page.locator("#waiting tr[data-workflow-id]")).to_have_count(2)
    form = urllib.parse.urlencode({"workflow_id": "deploy-billing", "decision": "approve", "wait": "x"})
    urllib.request.urlopen(agents.url + "decide", data=form.encode(), timeout=10).close()
    expect(page.locator("#waiting tr[data-workflow-id]")).to_have_count(1, timeout=10_000)
    expect(page.locator('#finished tr[data-workflow-id="deploy-billing"] td.outcome')).to_have_text(
        "deployed billing 2.4.1 (approved by inbox page)", timeout=10_000
    )


def test_one_agent_per_framework_waits_in_the_same_inbox_across_a_restart(
    database_url: str, page: Page, servers: list[Server]
) -> None:
    for adapter in ("durable_pydantic_ai", "durable_langgraph", "durable_crewai"):
        pytest.importorskip(adapter)
    first = Server(database_url)
    servers.append(first)
    before = {item["workflow_id"]: item for item in first.wait_for_waiting(6)}
    assert before["cleanup-reports-2019"]["topic"] is None  # the default topic: engine.send(wid, answer)
    assert before["cleanup-reports-2019"]["action"] == "Call delete_files({'folder': 'reports/2019'})"
    graph_run = next(wid for wid in before if wid.startswith("lg:inbox_blog:"))
    assert before[graph_run]["topic"] == "langgraph.resume"
    assert before["crew-launch-tagline"]["topic"] == "crewai.human_input"
    assert before["crew-launch-tagline"]["details"]["output"] == "Durable agents, now in beta!"
    first.kill()

    second = Server(database_url)
    servers.append(second)
    assert "started 0 agents" in "".join(second.lines)
    assert {item["workflow_id"] for item in second.wait_for_waiting(6)} == set(before)
    page.goto(second.url + "?refresh=0")
    _decide(page, "cleanup-reports-2019", "Approve")
    assert _outcome(page, "cleanup-reports-2019") == "cleanup done: deleted 42 files in reports/2019"
    _decide(page, graph_run, "Reject", note="too short")
    assert _outcome(page, graph_run) == "blog post sent back to the writer"
    _decide(page, "crew-launch-tagline", "Approve")  # empty feedback: CrewAI keeps the answer
    assert _outcome(page, "crew-launch-tagline") == "Durable agents, now in beta!"
    assert len(second.waiting()) == 3
