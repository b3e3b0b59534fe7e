"""The dashboard's pages: workflow list, one workflow as a timeline of steps, and the inbox."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from .. import ModelUsage, StepInfo, UsageTotals, WorkflowStatus
from .._inspection import (
    STATUSES,
    budget_limit,
    cost_text,
    describe_wait,
    duration_text,
    error_dict,
    error_line,
    format_ms,
    pretty_json,
    preview,
    reply_topic,
    spent_text,
    tokens_text,
    total_usage,
)
from ._html import api_url, badge, esc, hidden, layout, link, post_button, pre_json, wf_url

__all__ = ["RESUMABLE", "inbox_page", "list_page", "message_page", "usage_page", "workflow_page"]

# A failed (ERROR) run resumes from the step that failed (its cause fixed); a SUCCESS is final.
RESUMABLE = ("CANCELLED", "RETRIES_EXCEEDED", "ERROR")


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
        "<th>Updated</th><th>Queue</th><th>Waiting for / error</th>"
        '<th class="num">Tokens</th><th class="num">Cost (USD)</th></tr></thead><tbody>'
    )
    for row in rows:
        detail = esc(describe_wait(row.waiting)) if row.waiting else esc(preview(error_line(row.error), 90))
        forked = f' <span class="muted">fork of {esc(row.forked_from)}</span>' if row.forked_from else ""
        body.append(
            f'<tr><td class="mono"><a href="{esc(wf_url(row.workflow_id))}">'
            f"{esc(row.workflow_id)}</a>{forked}</td>"
            f"<td>{esc(row.name)}</td><td>{badge(row.status)}</td><td>{esc(format_ms(row.created_at))}</td>"
            f"<td>{esc(format_ms(row.updated_at))}</td><td>{esc(row.queue_name or '')}</td><td>"
            f'{detail}</td><td class="num" data-testid="tokens">{esc(tokens_text(row.usage))}</td>'
            f'<td class="num" data-testid="cost">{esc(cost_text(row.usage, sign="$"))}</td></tr>'
        )
    if not rows:
        body.append('<tr><td colspan="9" class="muted">No workflows match.</td></tr>')
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
    if wf.usage is not None and wf.usage.model_calls:
        items.append(
            (
                "Usage",
                f'<span data-testid="usage">{esc(spent_text(wf.usage))}</span> '
                '<span class="muted">(this workflow and its children)</span>' + _by_model(wf.usage),
            )
        )
    if wf.waiting is not None:
        until = format_ms(wf.waiting.deadline) if wf.waiting.deadline is not None else "no deadline"
        items.append(
            (
                "Waiting for",
                f"{esc(describe_wait(wf.waiting))} until {esc(until)} ({link('/inbox', 'inbox')})",
            )
        )
    return '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _by_model(usage: UsageTotals) -> str:
    models = usage.by_model
    if not models or list(models) == ["unknown"]:
        return ""
    lines = "".join(f"<li><code>{esc(name)}</code>: {esc(spent_text(m))}</li>" for name, m in models.items())
    return f'<ul class="models">{lines}</ul>'


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
    if wf.status in RESUMABLE:
        label = "Resume from the failed step" if wf.status == "ERROR" else "Resume"
        actions.append(post_button(wf_url(wid, "/resume"), label, secret, test_id="resume"))
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


_LIMIT_VALUE = re.compile(r"\b(max_cost_usd|max_tokens|max_model_calls)=\$?([0-9.]+)")
BUDGET_FIELDS = (
    ("max_cost_usd", "Max cost (USD)", "any"),
    ("max_tokens", "Max tokens", "1"),
    ("max_model_calls", "Max model calls", "1"),
)


def _budget_card(row: WorkflowStatus, secret: str, until: str, problem: str) -> str:
    """A run paused by its budget: what it spent and the limit it reached; its action is a raise."""
    wait = row.waiting
    assert wait is not None
    reached = _LIMIT_VALUE.search(wait.detail or "")
    limit = budget_limit(wait)
    inputs = []
    for name, label, step in BUDGET_FIELDS:
        now = f"now {reached.group(2)}" if reached and reached.group(1) == name else "unchanged"
        inputs.append(
            f'<label>{esc(label)}<input type="number" min="0" step="{step}" name="{name}" '
            f'placeholder="{esc(now)}"{" autofocus" if name == limit else ""}></label>'
        )
    return (
        f'<div class="card budget" data-testid="inbox-{esc(row.workflow_id)}">'
        f'<div class="step-head"><a class="mono" href="{esc(wf_url(row.workflow_id))}">'
        f"{esc(row.workflow_id)}</a>"
        f'<span class="name">{esc(row.name)}</span>{badge("BUDGET")}<span class="right muted">until '
        f"{esc(until)}</span></div>"
        f'<p data-testid="budget-{esc(row.workflow_id)}">Paused by its budget: reached '
        f"<strong>{esc(wait.detail or 'a limit')}</strong>.</p>"
        f'<p data-testid="spent-{esc(row.workflow_id)}">This run spent {esc(spent_text(row.usage))}.</p>'
        f'<p class="muted" data-testid="wait-{esc(row.workflow_id)}">kind <code>budget</code>: no message '
        "answers it; raising the budget (<code>engine.raise_budget</code>, "
        f"<code>durable budget raise</code>) lets it continue where it stopped.</p>{problem}"
        f'<form class="filters" method="post" action="{esc(wf_url(row.workflow_id, "/raise-budget"))}">'
        f"{hidden('csrf', secret)}{''.join(inputs)}"
        '<button type="submit" class="primary">Raise budget</button></form></div>'
    )


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
        '<p class="muted">Workflows waiting for a message now, and runs paused by their budget. '
        "An answer is JSON, delivered with <code>engine.send(id, answer, topic=waiting.topic)</code>; "
        "a budget pause ends when the budget is raised.</p>",
    ]
    if notice:
        parts.append(f'<div class="notice">{esc(notice)}</div>')
    shown = 0
    for row in rows:
        answerable, topic = reply_topic(row.waiting)
        budget = row.waiting is not None and row.waiting.kind == "budget"
        if not answerable and not budget:
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
        if budget:
            parts.append(_budget_card(row, secret, until, problem))
            continue
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


# -- usage -----------------------------------------------------------------------------------

MAX_DAYS = 120  # a longer window charts only the days with model calls


def _days(since: datetime | None, recorded: Mapping[str, ModelUsage]) -> list[str]:
    """Every UTC day from `since` to today (so idle days show as empty bars), else the recorded ones."""
    today = datetime.now(UTC).date()
    first = since.astimezone(UTC).date() if since is not None else None
    if first is None and recorded:
        first = min(date.fromisoformat(day) for day in recorded)
    if first is None or (today - first).days >= MAX_DAYS:
        return sorted(recorded)
    days = [(first + timedelta(days=i)).isoformat() for i in range((today - first).days + 1)]
    return sorted(set(days) | set(recorded))


def _chart(title: str, test_id: str, days: list[str], values: dict[str, tuple[float, str]]) -> str:
    """A bar per day, heights relative to the largest (plain HTML and CSS; no script, no asset)."""
    top = max((value for value, _ in values.values()), default=0.0)
    bars = []
    for day in days:
        value, label = values.get(day, (0.0, ""))
        height = 0.0 if top <= 0 else max(1.0, 100.0 * value / top) if value > 0 else 0.0
        bars.append(
            f'<div class="day" data-testid="{esc(test_id)}-{esc(day)}" '
            f'title="{esc(day)}: {esc(label or "no model call")}">'
            f'<span class="value">{esc(label)}</span>'
            f'<div class="track"><div class="bar" style="height:{height:.1f}%"></div></div>'
            f'<span class="label">{esc(day[5:])}</span></div>'
        )
    return f'<h2>{esc(title)}</h2><div class="chart" data-testid="{esc(test_id)}">{"".join(bars)}</div>'


def usage_page(
    per_day: Mapping[str, UsageTotals],
    per_name: Mapping[str, UsageTotals],
    params: Mapping[str, str],
    *,
    since: datetime | None,
    error: str = "",
) -> str:
    body = [
        "<h1>Usage</h1>",
        '<p class="muted">What recorded model calls consumed (a replay never counts twice), per UTC day. '
        "<em>unknown</em>: model calls that reported no tokens or no cost; <em>+?</em>: some did not.</p>",
        '<form class="filters" method="get" action="/usage">'
        f'<label>Since<input name="since" value="{esc(params.get("since", "30d"))}" '
        'placeholder="30d, 12h, 2026-01-31"></label>'
        f'<label>Name<input name="name" value="{esc(params.get("name", ""))}" '
        'placeholder="workflow name"></label>'
        '<button type="submit" class="primary">Show</button> <a href="/usage">reset</a></form>',
    ]
    if error:
        body.append(f'<div class="notice bad">{esc(error)}</div>')
    if not per_day:
        body.append('<p class="muted">No model call recorded in this window.</p>')
        return layout("Usage", "".join(body))
    total = total_usage(per_day.values())
    body.append(
        f'<p data-testid="usage-total">In this window: <strong>{esc(spent_text(total))}</strong>.</p>'
    )
    days = _days(since, per_day)
    cost = {day: (u.cost_usd, cost_text(u, sign="$").replace("+unknown", "+?")) for day, u in per_day.items()}
    tokens = {day: (float(u.tokens), tokens_text(u).replace("+unknown", "+?")) for day, u in per_day.items()}
    body.append(_chart("Cost per day (USD)", "cost-chart", days, cost))
    body.append(_chart("Tokens per day (input + output)", "tokens-chart", days, tokens))
    body.append(
        '<h2>By workflow name</h2><table data-testid="usage-by-name"><thead><tr><th>Name</th>'
        '<th class="num">Model calls</th><th class="num">Input tokens</th><th class="num">Output tokens</th>'
        '<th class="num">Tokens</th><th class="num">Cost (USD)</th></tr></thead><tbody>'
    )
    for name, u in per_name.items():
        body.append(
            f'<tr><td>{link("/workflows", name, name=name)}</td><td class="num">{u.model_calls}</td>'
            f'<td class="num">{esc(u.input_tokens if u.input_tokens or not u.unknown_tokens else "unknown")}</td>'
            f'<td class="num">{esc(u.output_tokens if u.output_tokens or not u.unknown_tokens else "unknown")}</td>'
            f'<td class="num">{esc(tokens_text(u))}</td><td class="num">{esc(cost_text(u, sign="$"))}</td></tr>'
        )
    body.append("</tbody></table>")
    return layout("Usage", "".join(body))
