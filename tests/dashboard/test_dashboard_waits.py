"""The dashboard's inbox answers each wait on exactly `status.waiting.topic` (the default topic,
a named one, even ""), as the CLI inbox and the agent-inbox example do. No browser: the forms are
posted as a browser would post them."""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from typing import Any

from dash_app import dashboard_server, http

from durable_core import Engine, recv, workflow, workflow_options
from durable_core.testing import wait_until_waiting


@workflow(name="dash_waits.topic")
def on_topic(topic: str | None) -> Any:
    return recv(topic=topic, timeout_seconds=900)


def _forms(page: str) -> dict[str, dict[str, str]]:
    """Each inbox card's send form: its action's workflow id -> the hidden fields it posts."""
    forms: dict[str, dict[str, str]] = {}
    for action, body in re.findall(r'<form method="post" action="([^"]+/send)">(.*?)</form>', page, re.S):
        wid = urllib.parse.unquote(html.unescape(action).removeprefix("/workflows/").removesuffix("/send"))
        fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body)
        forms[wid] = {name: html.unescape(value) for name, value in fields}
    return forms


def test_the_inbox_answers_on_the_waiting_topic(engine: Engine) -> None:
    handles = {}
    for wid, topic in (("t-approval", "approval"), ("t-default", None), ("t-empty", "")):
        with workflow_options(workflow_id=wid):
            handles[wid] = engine.start_workflow(on_topic, topic)
        wait_until_waiting(engine, wid)

    with dashboard_server(engine.database_url, token=None) as base:
        status, record = http("GET", f"{base}/api/workflows/t-approval")
        assert status == 200
        waiting = json.loads(record)["workflow"]["waiting"]
        assert (waiting["kind"], waiting["topic"]) == ("recv", "approval")

        status, page = http("GET", f"{base}/inbox")
        assert status == 200
        assert "kind <code>recv</code>, topic <code>&#x27;approval&#x27;</code>" in page
        forms = _forms(page)
        assert forms["t-approval"]["topic"] == "approval"
        assert "topic" not in forms["t-default"]  # the default topic: engine.send(id, answer)
        assert forms["t-empty"]["topic"] == ""
        for wid, fields in forms.items():
            body = urllib.parse.urlencode({**fields, "message": json.dumps(f"answer for {wid}")}).encode()
            status, _ = http(
                "POST",
                f"{base}/workflows/{urllib.parse.quote(wid)}/send",
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert status in (200, 303), (wid, status)

    for wid, handle in handles.items():
        assert handle.get_result(timeout_seconds=30) == f"answer for {wid}"
