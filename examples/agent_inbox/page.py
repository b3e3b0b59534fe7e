"""The inbox web page: which agents wait for what, with Approve and Reject buttons.

Standard library only (`http.server`), bound to 127.0.0.1. Everything it shows comes from the
engine's records (`engine.list_workflows(waiting=True)` and each agent's ``approval_request``
event), and a decision is one `engine.send(...)`, so the page holds no state of its own: stop
it, restart it, run two of them, nothing is lost.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

from durable_core import Engine, WorkflowStatus

__all__ = ["APPROVAL_WAIT", "ApprovalWait", "InboxServer", "Kinds", "Request", "WaitKind", "waiting_items"]


@dataclass(frozen=True)
class Request:
    """What a waiting agent asks a person to decide."""

    agent: str
    action: str
    details: Any = None


class WaitKind(Protocol):
    """How the page reads and answers the waits on one topic.

    Every wait here is a message wait (``status.waiting.kind == "recv"``), keyed by
    ``status.waiting.topic``: exactly the topic the answer is sent on
    (``engine.send(workflow_id, message, topic=status.waiting.topic)``; None is the default topic).
    Each framework asks in its own way (a plain `recv`, Pydantic AI's deferred tool requests, a
    LangGraph `interrupt()`, CrewAI's human input); a kind turns that into a `Request`, and a
    decision into the message the waiting code expects.
    """

    def describe(self, engine: Engine, status: WorkflowStatus) -> Request | None: ...

    def answer(self, engine: Engine, status: WorkflowStatus, approved: bool, note: str) -> Any:
        """The message for ``engine.send`` (sent on ``status.waiting.topic``)."""
        ...


class ApprovalWait:
    """The plain `durable_core` agents of `agents.py`: event ``approval_request``, topic ``approval``."""

    def describe(self, engine: Engine, status: WorkflowStatus) -> Request | None:
        request = engine.get_event(status.workflow_id, "approval_request", timeout_seconds=0)
        if not isinstance(request, dict):
            return None
        return Request(
            str(request.get("agent", status.name)), str(request.get("action")), request.get("details")
        )

    def answer(self, engine: Engine, status: WorkflowStatus, approved: bool, note: str) -> Any:
        return {"approved": approved, "reviewer": "inbox page", "note": note}


APPROVAL_WAIT = ApprovalWait()


@dataclass(frozen=True)
class WaitingItem:
    workflow_id: str
    agent: str
    action: str
    details: Any
    topic: str | None
    deadline: int | None
    since: int


Kinds = dict[str | None, WaitKind]
"""The page's wait kinds by ``status.waiting.topic`` (None: the default topic)."""


def _kind(kinds: Kinds, status: WorkflowStatus) -> WaitKind | None:
    wait = status.waiting
    return kinds.get(wait.topic) if wait is not None and wait.kind == "recv" else None


def waiting_items(engine: Engine, kinds: Kinds) -> list[WaitingItem]:
    """The workflows blocked in a wait this page can answer, with what they asked for."""
    items: list[WaitingItem] = []
    for status in engine.list_workflows(waiting=True):
        assert status.waiting is not None
        kind = _kind(kinds, status)
        request = kind.describe(engine, status) if kind is not None else None
        if request is None:
            continue
        items.append(
            WaitingItem(
                workflow_id=status.workflow_id,
                agent=request.agent,
                action=request.action,
                details=request.details,
                topic=status.waiting.topic,
                deadline=status.waiting.deadline,
                since=status.created_at,
            )
        )
    return items


def _topic_text(topic: str | None) -> str:
    return "topic " + (repr(topic) if topic is not None else "(default)")


def _clock(ms: int | None) -> str:
    return "never" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.5rem;text-align:left;
vertical-align:top}pre{margin:0;font-size:.8rem;white-space:pre-wrap}button{margin-right:.3rem}
.approve{background:#1a7f37;color:#fff}.reject{background:#cf222e;color:#fff}.muted{color:#777}
"""


# Reload every few seconds to show new waits, but never while someone is typing a note.
_AUTO_REFRESH = """<script>
setInterval(() => {
  const typing = [...document.querySelectorAll('input[name=note]')].some(i => i.value || i === document.activeElement);
  if (!typing) location.reload();
}, SECONDS * 1000);
</script>"""


class InboxServer:
    """Serves the page for one launched engine. `start_demo` (optional) is called by the page's button."""

    def __init__(
        self,
        engine: Engine,
        *,
        agent_names: list[str],
        kinds: Kinds | None = None,
        summaries: dict[str, Callable[[WorkflowStatus], str]] | None = None,
        start_demo: Callable[[], list[str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 8765,
    ) -> None:
        self.engine = engine
        self.agent_names = agent_names
        self.kinds: Kinds = kinds or {"approval": APPROVAL_WAIT}
        self.summaries = summaries or {}  # workflow name -> a one-line outcome for the "Finished" table
        self.start_demo = start_demo
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- rendering ---------------------------------------------------------------------

    def render(self, refresh: int) -> str:
        suffix = "" if refresh == 3 else f"?refresh={refresh}"  # keep the reader's refresh setting
        rows = []
        for item in waiting_items(self.engine, self.kinds):
            wid = html.escape(item.workflow_id)
            details = html.escape(json.dumps(item.details, indent=1)) if item.details is not None else ""
            rows.append(
                f'<tr data-workflow-id="{wid}"><td><b>{html.escape(item.agent)}</b><br>'
                f'<span class="muted">{wid}</span></td><td class="action">{html.escape(item.action)}'
                f"<pre>{details}</pre></td><td>{html.escape(_topic_text(item.topic))}<br><span class=muted>started "
                f"{_clock(item.since)}<br>until {_clock(item.deadline)}</span></td><td>"
                f'<form method="post" action="/decide{suffix}"><input type="hidden" name="workflow_id" value="{wid}">'
                f'<input type="hidden" name="wait" value="{item.deadline}">'
                f'<input name="note" placeholder="note (optional)"><br>'
                f'<button class="approve" name="decision" value="approve">Approve</button>'
                f'<button class="reject" name="decision" value="reject">Reject</button></form></td></tr>'
            )
        waiting = (
            "".join(rows) or '<tr><td colspan="4" class="muted" id="empty">No agent is waiting.</td></tr>'
        )
        finished = []
        for status in self.engine.list_workflows(name=self.agent_names, newest_first=True, limit=15):
            if status.status in ("PENDING", "ENQUEUED"):
                continue
            outcome = self._summary(status)
            finished.append(
                f'<tr data-workflow-id="{html.escape(status.workflow_id)}"><td>{html.escape(status.workflow_id)}'
                f"</td><td>{html.escape(status.status)}</td><td class=outcome>{html.escape(str(outcome))}</td></tr>"
            )
        demo = (
            f'<form method="post" action="/start{suffix}"><button>Start three more demo agents</button></form>'
            if self.start_demo is not None
            else ""
        )
        meta = _AUTO_REFRESH.replace("SECONDS", str(refresh)) if refresh > 0 else ""
        return (
            f"<!doctype html><html><head><meta charset=utf-8><title>Agent inbox</title>{meta}"
            f"<style>{_STYLE}</style></head><body><h1>Agent inbox</h1>"
            f'<h2>Waiting for you</h2><table id="waiting"><tr><th>Agent</th><th>Wants to</th><th>Waiting on</th>'
            f"<th>Decision</th></tr>{waiting}</table>"
            f'<h2>Finished</h2><table id="finished"><tr><th>Run</th><th>Status</th><th>Outcome</th></tr>'
            f"{''.join(finished)}</table><p>{demo}</p><p class=muted>Engine {html.escape(self.engine.executor_id)};"
            f" everything here is read from the database at each load.</p></body></html>"
        )

    def _summary(self, status: WorkflowStatus) -> str:
        if status.error is not None:
            return f"{type(status.error).__name__}: {status.error}"
        summarize = self.summaries.get(status.name)
        if summarize is not None:
            try:
                return summarize(status)
            except Exception as exc:  # a summary must never break the page
                return f"(no summary: {exc})"
        text = str(status.output)
        return text if len(text) <= 200 else text[:200] + "..."

    def decide(self, workflow_id: str, approved: bool, note: str, wait: str) -> str:
        """Send the decision to a waiting workflow; a repeated click on the same wait is a no-op."""
        status = self.engine.get_workflow_status(workflow_id)
        kind = _kind(self.kinds, status)
        if kind is None or status.waiting is None:
            return f"{workflow_id} is not waiting for a decision any more"
        message = kind.answer(self.engine, status, approved, note)
        self.engine.send(
            workflow_id, message, topic=status.waiting.topic, idempotency_key=f"inbox:{workflow_id}:{wait}"
        )
        return f"{'approved' if approved else 'rejected'} {workflow_id}"

    # -- HTTP ----------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet by default
                pass

            def _send(self, code: int, body: str, content_type: str = "text/html; charset=utf-8") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _redirect(self) -> None:
                query = urlparse(self.path).query
                self.send_response(HTTPStatus.SEE_OTHER)
                self.send_header("Location", "/" + (f"?{query}" if query else ""))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if url.path == "/":
                    self._send(HTTPStatus.OK, server.render(int(query.get("refresh", ["3"])[0])))
                elif url.path == "/api/waiting":
                    items = [item.__dict__ for item in waiting_items(server.engine, server.kinds)]
                    self._send(HTTPStatus.OK, json.dumps(items), "application/json")
                else:
                    self._send(HTTPStatus.NOT_FOUND, "not found", "text/plain")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                path = urlparse(self.path).path
                if path == "/decide" and "workflow_id" in form:
                    server.decide(
                        form["workflow_id"],
                        form.get("decision") == "approve",
                        form.get("note", ""),
                        form.get("wait", ""),
                    )
                    self._redirect()
                elif path == "/start" and server.start_demo is not None:
                    server.start_demo()
                    self._redirect()
                else:
                    self._send(HTTPStatus.BAD_REQUEST, "bad request", "text/plain")

        return Handler
