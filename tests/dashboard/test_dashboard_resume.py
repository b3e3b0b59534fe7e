"""A failed run's page offers a resume: once the cause is fixed it reruns from the step that
failed (the steps before it are not re-run) and ends SUCCESS; a SUCCESS offers none. No browser:
the form is posted as a browser would post it."""

from __future__ import annotations

import collections
import html
import re
import urllib.parse

import dash_app
import pytest
from dash_app import dashboard_server, http

from durable_core import Engine, workflow_options

FORM = re.compile(r'<form class="inline" method="post" action="([^"]+/resume)">(.*?)</form>', re.S)


def _resume_form(page: str) -> tuple[str, dict[str, str], str] | None:
    """The page's resume form: its action, its hidden fields and its button label (None: no form)."""
    match = FORM.search(page)
    if match is None:
        return None
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', match.group(2))
    label = re.search(r"<button[^>]*>(.*?)</button>", match.group(2))
    assert label is not None
    return (
        html.unescape(match.group(1)),
        {name: html.unescape(value) for name, value in fields},
        html.unescape(label.group(1)),
    )


def test_a_failed_run_resumes_from_the_failed_step(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dash_app.SETTINGS, "prompt", dash_app.BAD_PROMPT)
    monkeypatch.setattr(dash_app, "CALLS", collections.Counter())
    with workflow_options(workflow_id="dash-failed"), pytest.raises(ValueError, match="bad prompt"):
        dash_app.agent("which harbour?")
    assert engine.get_workflow_status("dash-failed").status == "ERROR"
    assert dash_app.CALLS == {"search": 1, "llm": 1}

    monkeypatch.setattr(dash_app.SETTINGS, "prompt", dash_app.GOOD_PROMPT)  # the cause is fixed
    with dashboard_server(engine.database_url, token=None) as base:
        status, page = http("GET", f"{base}/workflows/dash-failed?refresh=0")
        assert status == 200
        form = _resume_form(page)
        assert form is not None
        action, fields, label = form
        assert label == "Resume from the failed step"
        status, after = http(
            "POST",
            f"{base}{action}",
            data=urllib.parse.urlencode(fields).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200, after  # redirected back to the run's page
        assert "Resumed from the step that failed" in html.unescape(after)

        result = engine.retrieve_workflow("dash-failed").get_result(timeout_seconds=60)
        assert result == {"saved": True, "answer": "Result 0 for which harbour? is the best match."}
        assert dash_app.CALLS == {"search": 1, "llm": 2, "save": 1}  # the search before it not re-run

        status, done = http("GET", f"{base}/workflows/dash-failed?refresh=0")
        assert status == 200 and _resume_form(done) is None  # a SUCCESS is final
