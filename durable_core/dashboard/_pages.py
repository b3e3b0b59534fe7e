"""The dashboard's pages: workflow list, one workflow as a timeline of steps, and the inbox."""

from __future__ import annotations

import time
from collections.abc import Mapping

from .._records import StepInfo, WorkflowStatus
from ..cli._export import (
    describe_wait,
    duration_text,
    error_dict,
    error_line,
    format_ms,
    pretty_json,
    preview,
    reply_topic,
)
from ..cli._parser import STATUSES
from ._html import api_url, badge, esc, hidden, layout, link, post_button, pre_json, wf_url

__all__ = ["inbox_page", "list_page", "message_page", "workflow_page"]


def message_page(title: str, message: str) -> str:
    return layout(
        title, f"<h1>{esc(title)}</h1><p>{esc(message)}</p><p>{link('/workflows', 'All workflows')}</p>"
    )


def _filter_form(params: Mapping[str, str]) -> str:
    options = "".join(
        f'<option value="{s}"{" selected" if params.get("status") == s else ""}>{s}</option>'
        for s in STATUSES
    )
    checked = " checked" if params.get("waiting") else ""
    refresh_checked = "" if params.get("refresh") == "0" else " checked"
    return (
        '<form class="filters" method="get" action="/workflows">'
        f'<label>Status<select name="status"><option value="">any</option>{options}</select></label>'
        f'<label>Name<input name="name" value="{esc(params.get("name", ""))}" '
        'placeholder="workflow name"></label>'
        f'<label>Queue<input name="queue" value="{esc(params.get("queue", ""))}"></label>'
        f'<label>Created since<input name="since" value="{esc(params.get("since", ""))}" '
        f'placeholder="2h, 2026-01-31"></label>'
        f'<label><span><input type="checkbox" name="waiting" value="1"{checked}> waiting now</span></label>'
        '<label><span><input type="hidden" name="refresh" value="0">'
        f'<input type="checkbox" name="refresh" value="5"{refresh_checked}> auto-refresh</span></label>'
        '<button type="submit" class="primary">Filter</button> <a href="/workflows">reset</a></form>'
    )


def list_page(
    rows: list[WorkflowStatus], params: Mapping[str, str], *, error: str = "", more: bool = False
) -> str:
    body = ["<h1>Workflows</h1>", _filter_form(params)]
    if error:
        body.append(f'<div class="notice bad">{esc(error)}</div>')
    body.append(
        '<table data-testid="workflows"><thead><tr><th>ID</th><th>Name</th><th>Status</th><th>Created</th>'
        "<th>Updated</th><th>Queue</th><th>Waiting for / error</th></tr></thead><tbody>"
    )
    for row in rows:
        detail = esc(describe_wait(row.waiting)) if row.waiting else esc(preview(error_line(row.error), 90))
        forked = f' <span class="muted">fork of {esc(row.forked_from)}</span>' if row.forked_from else ""
        body.append(
            f'<tr><td class="mono"><a href="{esc(wf_url(row.workflow_id))}">'
            f"{esc(row.workflow_id)}</a>{forked}</td>"
            f"<td>{esc(row.name)}</td><td>{badge(row.status)}</td><td>{esc(format_ms(row.created_at))}</td>"
            f"<td>{esc(format_ms(row.updated_at))}</td><td>{esc(row.queue_name or '')}</td><td>"
            f"{detail}</td></tr>"
        )
    if not rows:
        body.append('<tr><td colspan="7" class="muted">No workflows match.</td></tr>')
    body.append("</tbody></table>")
    if more:
        offset = int(params.get("offset", "0") or 0) + len(rows)
        body.append(f"<p>{link('/workflows', 'Next page', **{**params, 'offset': str(offset)})}</p>")
    refresh = None if params.get("refresh") == "0" else 5
    return layout("Workflows", "".join(body), refresh_seconds=refresh)


def _meta(wf: WorkflowStatus) -> str:
    items = [
        ("Name", esc(wf.name)),
        ("Status", badge(wf.status)),
        ("Created", esc(format_ms(wf.created_at))),
        ("Updated", esc(format_ms(wf.updated_at))),
        ("App version", esc(wf.app_version)),
        ("Executor", f'<span class="mono">{esc(wf.executor_id or "")}</span>'),
    ]
    if wf.queue_name:
        items.append(("Queue", esc(wf.queue_name)))
    if wf.parent_workflow_id:
        items.append(
            ("Parent", f'<a href="{esc(wf_url(wf.parent_workflow_id))}">{esc(wf.parent_workflow_id)}</a>')
        )
    if wf.forked_from:
        items.append(("Forked from", f'<a href="{esc(wf_url(wf.forked_from))}">{esc(wf.forked_from)}</a>'))
    if wf.recovery_attempts:
        items.append(("Recovery attempts", esc(wf.recovery_attempts)))
    if wf.waiting is not None:
        until = format_ms(wf.waiting.deadline) if wf.waiting.deadline is not None else "no deadline"
        items.append(
            (
                "Waiting for",
                f"{esc(describe_wait(wf.waiting))} until {esc(until)} ({link('/inbox', 'inbox')})",
            )
        )
    return '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _error_block(error: BaseException | None) -> str:
    info = error_dict(error)
    if info is None:
        return ""
    trace = (
        f"<details><summary>recorded traceback</summary>{pre_json(info['traceback'], css='error')}</details>"
        if info["traceback"]
        else ""
    )
    return pre_json(f"{info['type']}: {info['message']}", css="error") + trace


def _step_item(wf: WorkflowStatus, step: StepInfo, secret: str) -> str:
    failed = step.error is not None
    child = ""
    if step.child_workflow_id:
        child = (
            f'child <a class="mono" href="{esc(wf_url(step.child_workflow_id))}">'
            f"{esc(step.child_workflow_id)}</a>"
        )
    fork = post_button(
        wf_url(wf.workflow_id, "/fork"),
        f"Fork from step {step.step_id}",
        secret,
        fields={"start_step": str(step.step_id)},
        test_id=f"fork-{step.step_id}",
    )
    body = (
        _error_block(step.error)
        if failed
        else pre_json(pretty_json(step.output), full_href=api_url(wf.workflow_id, f"/steps/{step.step_id}"))
    )
    return (
        f'<li class="{"failed" if failed else "ok"}" id="step-{step.step_id}" '
        f'data-testid="step-{step.step_id}">'
        f'<div class="step-head"><span class="mono muted">#{step.step_id}</span><span class="name">'
        f"{esc(step.name)}</span>"
        f'{badge("ERROR" if failed else "OK")}{child}<span class="right"><span class="muted">'
        f"{esc(format_ms(step.started_at))} · "
        f"{esc(duration_text(step.started_at, step.completed_at) or 'n/a')}</span>"
        f"{fork}</span></div>{body}</li>"
    )


def workflow_page(
    wf: WorkflowStatus, steps: list[StepInfo], secret: str, *, notice: str = "", auto_refresh: bool = True
) -> str:
    wid = wf.workflow_id
    actions = []
    if wf.status in ("PENDING", "ENQUEUED"):
        actions.append(post_button(wf_url(wid, "/cancel"), "Cancel", secret, css="danger", test_id="cancel"))
    if wf.status in ("CANCELLED", "RETRIES_EXCEEDED"):
        actions.append(post_button(wf_url(wid, "/resume"), "Resume", secret, test_id="resume"))
    next_step = (steps[-1].step_id if steps else 0) + 1
    actions.append(
        post_button(
            wf_url(wid, "/fork"),
            f"Fork from step {next_step} (after the last recorded)",
            secret,
            fields={"start_step": str(next_step)},
            test_id=f"fork-{next_step}",
        )
    )
    parts = [
        f'<div class="crumbs muted">{link("/workflows", "Workflows")} / {esc(wf.name)}</div>',
        f'<h1 class="mono">{esc(wid)}</h1>',
        f'<div class="notice">{esc(notice)}</div>' if notice else "",
        _meta(wf),
        f'<div class="actions">{"".join(actions)}</div>',
        "<h2>Inputs</h2>",
        pre_json(pretty_json(wf.inputs)),
    ]
    if wf.status == "SUCCESS":
        parts += ["<h2>Output</h2>", pre_json(pretty_json(wf.output))]
    if wf.error is not None:
        parts += ["<h2>Error</h2>", _error_block(wf.error)]
    parts.append(f'<h2>Steps <span class="muted">({len(steps)} recorded)</span></h2>')
    if steps:
        parts.append('<ol class="timeline">' + "".join(_step_item(wf, s, secret) for s in steps) + "</ol>")
    else:
        parts.append('<p class="muted">No step recorded yet.</p>')
    refresh = 5 if auto_refresh and wf.status in ("PENDING", "ENQUEUED") else None
    return layout(wid, "".join(parts), refresh_seconds=refresh)


def inbox_page(
    rows: list[WorkflowStatus],
    secret: str,
    *,
    notice: str = "",
    error_for: str = "",
    error: str = "",
    draft: str = "",
) -> str:
    now = int(time.time() * 1000)
    parts = [
        "<h1>Inbox</h1>",
        '<p class="muted">Workflows waiting for a message now. '
        "The answer is JSON, delivered with <code>engine.send(id, answer, topic=waiting.topic)</code>.</p>",
    ]
    if notice:
        parts.append(f'<div class="notice">{esc(notice)}</div>')
    shown = 0
    for row in rows:
        answerable, topic = reply_topic(row.waiting)
        if not answerable:
            continue
        shown += 1
        deadline = row.waiting.deadline if row.waiting else None
        until = (
            "no deadline"
            if deadline is None
            else (f"{format_ms(deadline)} (in {max(0, deadline - now) // 60000} min)")
        )
        problem = (
            f'<div class="notice bad">{esc(error)}</div>' if error and error_for == row.workflow_id else ""
        )
        value = draft if error_for == row.workflow_id else ""
        # exactly status.waiting.topic: absent for the default topic (None), "" kept as ""
        fields = hidden("topic", topic) + hidden("has_topic", "1") if topic is not None else ""
        parts.append(
            f'<div class="card" data-testid="inbox-{esc(row.workflow_id)}">'
            f'<div class="step-head"><a class="mono" href="{esc(wf_url(row.workflow_id))}">'
            f"{esc(row.workflow_id)}</a>"
            f'<span class="name">{esc(row.name)}</span><span class="right muted">until '
            f"{esc(until)}</span></div>"
            f"<p>Waiting for {esc(describe_wait(row.waiting))}.</p>"
            f'<p class="muted" data-testid="wait-{esc(row.workflow_id)}">kind <code>{esc(row.waiting.kind if row.waiting else "")}</code>, '
            f"topic <code>{esc(repr(topic))}</code></p>{problem}"
            f'<form method="post" action="{esc(wf_url(row.workflow_id, "/send"))}">'
            f"{hidden('csrf', secret)}{fields}"
            f'<textarea name="message" placeholder=\'{{"approved": true}}\'>{esc(value)}</textarea>'
            '<div class="actions"><button type="submit" class="primary">Send answer</button></div>'
            "</form></div>"
        )
    if not shown:
        parts.append('<p class="muted">Nothing is waiting for input.</p>')
    return layout("Inbox", "".join(parts))
