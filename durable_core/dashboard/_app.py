"""The dashboard's ASGI app: routes over the Engine's public management API only."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import DurableError, Engine, WorkflowNotFoundError
from .._inspection import (
    STATUSES,
    budget_text,
    parse_time,
    raise_outcome,
    show_workflow,
    step_dict,
    waiting_workflows,
    workflow_dict,
)
from . import _pages
from ._html import wf_url
from ._security import Guard, form_secret_ok

__all__ = ["create_app"]

PAGE_SIZE = 100
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[Request], Awaitable[Response]]


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (no multipart dependency: the pages only post small text fields)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _secret(request: Request) -> str:
    return str(request.scope.get("state", {}).get("form_secret", ""))


def create_app(engine: Engine, *, token: str | None = None, loopback_only: bool = True) -> Guard:
    """The dashboard for a connected `engine` (launched, or connected without running workflows).

    Mount it in your own server, or run `durable dashboard`. With `token`, every request must carry it.
    """

    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return run_in_threadpool(fn, *args, **kwargs)

    def post(handler: Callable[[Request, dict[str, str]], Awaitable[Response]]) -> Handler:
        async def checked(request: Request) -> Response:
            form = await _form(request)
            if not form_secret_ok(request.scope, form.get("csrf")):
                return _html(_pages.message_page("Form expired", "Reload the page and try again."), 403)
            try:
                return await handler(request, form)
            except WorkflowNotFoundError as exc:
                return _html(
                    _pages.message_page("Not found", f"No workflow with id {exc.workflow_id!r}."), 404
                )
            except DurableError as exc:
                return _html(_pages.message_page("Operation failed", exc.message), 409)

        return checked

    async def index(request: Request) -> Response:
        return RedirectResponse("/workflows", status_code=303)

    async def workflows(request: Request) -> Response:
        params = dict(request.query_params)
        params.pop("token", None)
        filters: dict[str, Any] = {}
        error = ""
        if params.get("status") in STATUSES:
            filters["status"] = params["status"]
        for key, arg in (("name", "name"), ("queue", "queue_name")):
            if params.get(key):
                filters[arg] = params[key]
        if params.get("waiting"):
            filters["waiting"] = True
        if params.get("since"):
            try:
                filters["created_after"] = parse_time(params["since"])
            except ValueError as exc:
                error = str(exc)
        try:
            offset = max(0, int(params.get("offset", "0") or 0))
        except ValueError:
            offset = 0
        rows = await call(
            engine.list_workflows, **filters, limit=PAGE_SIZE + 1, offset=offset, newest_first=True
        )
        more = len(rows) > PAGE_SIZE
        return _html(_pages.list_page(rows[:PAGE_SIZE], params, error=error, more=more))

    async def workflow(request: Request) -> Response:
        wid = request.path_params["workflow_id"]
        try:
            wf, steps = await call(show_workflow, engine, wid)
        except WorkflowNotFoundError:
            return _html(_pages.message_page("Not found", f"No workflow with id {wid!r}."), 404)
        notice = request.query_params.get("notice", "")
        auto_refresh = request.query_params.get("refresh") != "0"
        return _html(
            _pages.workflow_page(wf, steps, _secret(request), notice=notice, auto_refresh=auto_refresh)
        )

    async def workflow_json(request: Request) -> Response:
        wid = request.path_params["workflow_id"]
        try:
            wf, steps = await call(show_workflow, engine, wid)
        except WorkflowNotFoundError:
            return JSONResponse({"error": f"no workflow with id {wid!r}"}, status_code=404)
        return JSONResponse(
            {"workflow": workflow_dict(wf), "steps": [step_dict(s) for s in steps]}, headers=SECURITY_HEADERS
        )

    async def step_json(request: Request) -> Response:
        wid, number = request.path_params["workflow_id"], request.path_params["step_id"]
        try:
            steps = await call(engine.list_steps, wid)
        except WorkflowNotFoundError:
            return JSONResponse({"error": f"no workflow with id {wid!r}"}, status_code=404)
        for s in steps:
            if s.step_id == number:
                return JSONResponse(step_dict(s), headers=SECURITY_HEADERS)
        return JSONResponse({"error": f"workflow {wid!r} has no recorded step {number}"}, status_code=404)

    def back(wid: str, notice: str) -> Response:
        return RedirectResponse(f"{wf_url(wid)}?notice={_quote(notice)}", status_code=303)

    @post
    async def cancel(request: Request, form: dict[str, str]) -> Response:
        wid = request.path_params["workflow_id"]
        await call(engine.cancel_workflow, wid)
        return back(wid, "Cancelled.")

    @post
    async def resume(request: Request, form: dict[str, str]) -> Response:
        wid = request.path_params["workflow_id"]
        before = await call(engine.get_workflow_status, wid)
        if before.status not in _pages.RESUMABLE:
            return back(
                wid, f"Not resumed: it is {before.status}; only cancelled, parked or failed runs resume."
            )
        await call(engine.resume_workflow, wid)  # a failed run reruns from the step that failed
        status = await call(engine.get_workflow_status, wid)
        where = "queued for an engine that has its code" if status.status == "ENQUEUED" else status.status
        again = " from the step that failed" if before.status == "ERROR" else ""
        return back(wid, f"Resumed{again}: {where}.")

    @post
    async def fork(request: Request, form: dict[str, str]) -> Response:
        wid = request.path_params["workflow_id"]
        try:
            start_step = int(form.get("start_step", ""))
        except ValueError:
            return _html(_pages.message_page("Bad request", "start_step must be a step number."), 400)
        if start_step < 1:
            return _html(_pages.message_page("Bad request", "start_step must be 1 or more."), 400)
        source = await call(engine.get_workflow_status, wid)
        handle = await call(
            engine.fork_workflow,
            wid,
            start_step,
            new_workflow_id=form.get("new_id") or None,
            app_version=source.app_version,
        )
        return back(handle.workflow_id, f"Forked from {wid} at step {start_step}.")

    async def inbox(request: Request) -> Response:
        rows = await call(waiting_workflows, engine, limit=500)
        notice = request.query_params.get("notice", "")
        return _html(_pages.inbox_page(rows, _secret(request), notice=notice))

    @post
    async def send(request: Request, form: dict[str, str]) -> Response:
        wid = request.path_params["workflow_id"]
        text = form.get("message", "")
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            rows = await call(waiting_workflows, engine, limit=500)
            page = _pages.inbox_page(
                rows,
                _secret(request),
                error_for=wid,
                draft=text,
                error=f"Not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}). "
                'Quote text as JSON, e.g. "yes".',
            )
            return _html(page, 400)
        topic = form.get("topic", "") if form.get("has_topic") else None  # as status.waiting.topic
        await call(engine.send, wid, message, topic)
        return RedirectResponse(f"/inbox?notice={_quote(f'Sent to {wid}.')}", status_code=303)

    @post
    async def raise_budget(request: Request, form: dict[str, str]) -> Response:
        wid = request.path_params["workflow_id"]
        limits: dict[str, float | int] = {}
        problem = ""
        for name, label, _step in _pages.BUDGET_FIELDS:
            text = form.get(name, "").strip()
            if not text:
                continue
            try:
                value = float(text) if name == "max_cost_usd" else int(text)
            except ValueError:
                problem = (
                    f"{label}: {text!r} is not a {'number' if name == 'max_cost_usd' else 'whole number'}."
                )
                break
            if not 0 <= value < float("inf"):
                problem = f"{label} must be 0 or more."
                break
            limits[name] = value
        if not problem and not limits:
            problem = "Give at least one new limit."
        if problem:
            rows = await call(waiting_workflows, engine, limit=500)
            return _html(_pages.inbox_page(rows, _secret(request), error_for=wid, error=problem), 400)
        before = await call(engine.get_workflow_status, wid)
        budget = await call(engine.raise_budget, wid, **limits)
        status = await call(engine.get_workflow_status, wid)
        outcome, _still = raise_outcome(budget, status, before=before)
        notice = f"Budget of {wid} is now {budget_text(budget)}." + (
            f" {outcome[0].upper()}{outcome[1:]}." if outcome else ""
        )
        return RedirectResponse(f"/inbox?notice={_quote(notice)}", status_code=303)

    async def usage(request: Request) -> Response:
        params = dict(request.query_params)
        params.pop("token", None)
        error = ""
        since_text = params.get("since", "30d") or "30d"
        try:
            since = parse_time(since_text)
        except ValueError as exc:
            error, since = str(exc), parse_time("30d")
        name = params.get("name") or None
        per_day = await call(engine.usage, name=name, since=since, group_by="day")
        per_name = await call(engine.usage, name=name, since=since, group_by="name")
        return _html(_pages.usage_page(per_day, per_name, params, since=since, error=error))

    wid = "{workflow_id:path}"
    routes = [
        Route("/", index),
        Route("/workflows", workflows),
        Route("/inbox", inbox),
        Route("/usage", usage),
        Route(f"/api/workflows/{wid}/steps/{{step_id:int}}", step_json),
        Route(f"/api/workflows/{wid}", workflow_json),
        Route(f"/workflows/{wid}/cancel", cancel, methods=["POST"]),
        Route(f"/workflows/{wid}/resume", resume, methods=["POST"]),
        Route(f"/workflows/{wid}/fork", fork, methods=["POST"]),
        Route(f"/workflows/{wid}/send", send, methods=["POST"]),
        Route(f"/workflows/{wid}/raise-budget", raise_budget, methods=["POST"]),
        Route(f"/workflows/{wid}", workflow),
    ]
    app = Starlette(routes=routes)
    return Guard(app, token=token, loopback_only=loopback_only)


def _quote(text: str) -> str:
    return quote(text, safe="")
