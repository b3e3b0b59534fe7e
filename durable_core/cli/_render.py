"""Rich tables for the terminal: readable at a glance, with long values cut (``--json`` has them whole)."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from .. import ModelUsage, StepInfo, WorkflowStatus
from .._inspection import (
    cost_text,
    describe_wait,
    duration_text,
    error_dict,
    error_line,
    format_ms,
    plain_time,
    pretty_json,
    preview,
    spent_text,
    tokens_text,
)

__all__ = [
    "UNKNOWN_NOTE",
    "inbox_table",
    "partly_unknown",
    "short_unknown",
    "step_detail",
    "step_plain",
    "step_row",
    "steps_table",
    "usage_fields",
    "usage_table",
    "workflow_fields",
    "workflow_panel",
    "workflows_table",
]

STATUS_STYLES = {
    "SUCCESS": "green",
    "ERROR": "bold red",
    "PENDING": "yellow",
    "ENQUEUED": "cyan",
    "CANCELLED": "magenta",
    "RETRIES_EXCEEDED": "bold red",
    "OK": "green",
}


UNKNOWN_NOTE = "+?: some model calls reported no tokens or no cost (unknown: none did; -: no model call)"


def short_unknown(text: str) -> str:
    """'750+unknown' as '750+?' for a narrow table column (explained by `UNKNOWN_NOTE`)."""
    return text.removesuffix("+unknown") + "+?" if text.endswith("+unknown") else text


def partly_unknown(usage: ModelUsage | None) -> bool:
    return short_unknown(tokens_text(usage)).endswith("+?") or short_unknown(cost_text(usage)).endswith("+?")


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def workflows_table(rows: list[WorkflowStatus]) -> Table:
    table = Table(title=f"{len(rows)} workflow(s)", title_justify="left")
    table.add_column("id", overflow="fold", style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("queue", overflow="fold")
    table.add_column("waiting for / error", overflow="fold", ratio=1)
    table.add_column("tokens", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    for row in rows:
        detail = describe_wait(row.waiting) if row.waiting else preview(error_line(row.error), 70)
        detail = preview(f"stranded: {row.stranded}", 70) if row.stranded else detail
        table.add_row(
            row.workflow_id,
            row.name,
            status_text(row.status),
            format_ms(row.created_at),
            row.queue_name or "",
            detail,
            short_unknown(tokens_text(row.usage)),
            short_unknown(cost_text(row.usage, sign="$")),
        )
    return table


def usage_fields(wf: WorkflowStatus) -> list[tuple[str, str]]:
    """The model usage of a workflow and its descendants, as (label, text) pairs."""
    usage = wf.usage
    if usage is None or not usage.model_calls:
        return [("usage", "no model call recorded")]
    fields = [
        ("model_calls", str(usage.model_calls)),
        ("tokens", tokens_text(usage)),
        ("cost_usd", cost_text(usage)),
    ]
    if len(usage.by_model) > 1 or (usage.by_model and "unknown" not in usage.by_model):
        fields += [(f"model {name}", spent_text(model)) for name, model in usage.by_model.items()]
    return fields


def workflow_fields(wf: WorkflowStatus) -> list[tuple[str, str]]:
    """The workflow's fields as (label, text) pairs for plain output; ids and names whole."""
    fields: list[tuple[str, str]] = [
        ("workflow_id", wf.workflow_id),
        ("name", wf.name),
        ("status", wf.status),
        ("created", plain_time(wf.created_at)),
        ("updated", plain_time(wf.updated_at)),
        ("app_version", wf.app_version),
        ("executor", wf.executor_id or ""),
    ]
    for label, value in (
        ("queue", wf.queue_name),
        ("parent", wf.parent_workflow_id),
        ("forked_from", wf.forked_from),
    ):
        if value:
            fields.append((label, value))
    if wf.recovery_attempts:
        fields.append(("recovery_attempts", str(wf.recovery_attempts)))
    if wf.waiting is not None:
        fields.append(("waiting_for", describe_wait(wf.waiting)))
        fields.append(("waiting_until", plain_time(wf.waiting.deadline) or "no deadline"))
    fields += usage_fields(wf)
    fields.append(("inputs", preview(wf.inputs, 200)))
    if wf.status == "SUCCESS":
        fields.append(("output", preview(wf.output, 200)))
    if wf.error is not None:
        fields.append(("error", preview(error_line(wf.error), 300)))
    return fields


def step_row(step: StepInfo) -> list[str]:
    """One step for plain output: number, name, status, duration, child, a preview of the outcome."""
    if step.error is not None:
        status, detail = "ERROR", preview(error_line(step.error), 200)
    else:
        status, detail = "OK", preview(step.output, 200)
    return [
        str(step.step_id),
        step.name,
        status,
        duration_text(step.started_at, step.completed_at),
        step.child_workflow_id or "",
        detail,
    ]


def step_plain(step: StepInfo) -> str:
    """One step in full, as text: a header line, then its output as JSON or its error and traceback."""
    head = f"step {step.step_id}: {step.name} ({duration_text(step.started_at, step.completed_at) or 'n/a'})"
    if step.child_workflow_id:
        head += f"\nchild workflow: {step.child_workflow_id}"
    info = error_dict(step.error)
    if info is not None:
        return f"{head}\nerror: {info['type']}: {info['message']}\n\n{info['traceback']}".rstrip()
    return f"{head}\n{pretty_json(step.output)}"


def workflow_panel(wf: WorkflowStatus) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("name", wf.name)
    grid.add_row("status", status_text(wf.status))
    grid.add_row("created", format_ms(wf.created_at))
    grid.add_row("updated", format_ms(wf.updated_at))
    grid.add_row("app version", wf.app_version)
    grid.add_row("executor", wf.executor_id or "")
    for label, value in (
        ("queue", wf.queue_name),
        ("parent", wf.parent_workflow_id),
        ("forked from", wf.forked_from),
    ):
        if value:
            grid.add_row(label, value)
    if wf.recovery_attempts:
        grid.add_row("recovery attempts", str(wf.recovery_attempts))
    if wf.waiting is not None:
        until = format_ms(wf.waiting.deadline) if wf.waiting.deadline is not None else "no deadline"
        grid.add_row("waiting for", f"{describe_wait(wf.waiting)} until {until}")
    if wf.stranded:
        grid.add_row("stranded", Text(wf.stranded, style="red"))
    if wf.usage is not None and wf.usage.model_calls:
        grid.add_row("usage", spent_text(wf.usage) + " (this workflow and its children)")
        if len(wf.usage.by_model) > 1 or "unknown" not in wf.usage.by_model:
            for name, model in wf.usage.by_model.items():
                grid.add_row(f"  {name}", spent_text(model))
    grid.add_row("inputs", preview(wf.inputs, 200))
    if wf.status == "SUCCESS":
        grid.add_row("output", preview(wf.output, 200))
    if wf.error is not None:
        grid.add_row("error", Text(preview(error_line(wf.error), 300), style="red"))
    return Panel(grid, title=f"workflow {wf.workflow_id}", title_align="left")


def steps_table(steps: list[StepInfo]) -> Table:
    table = Table(title=f"{len(steps)} recorded step(s)", title_justify="left")
    table.add_column("step", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("output / error", overflow="fold", ratio=1)
    table.add_column("child", overflow="fold")
    table.add_column("duration", justify="right", no_wrap=True)
    for step in steps:
        if step.error is not None:
            status, detail = "ERROR", Text(preview(error_line(step.error), 80), style="red")
        else:
            status, detail = "OK", Text(preview(step.output, 80))
        table.add_row(
            str(step.step_id),
            step.name,
            status_text(status),
            detail,
            step.child_workflow_id or "",
            duration_text(step.started_at, step.completed_at),
        )
    return table


def step_detail(step: StepInfo) -> Group:
    """One step in full: its output as pretty JSON, or its error with the recorded traceback."""
    title = f"step {step.step_id}: {step.name} ({duration_text(step.started_at, step.completed_at) or 'n/a'})"
    parts: list[Panel | Text] = [Text(title, style="bold")]
    if step.child_workflow_id:
        parts.append(Text(f"child workflow: {step.child_workflow_id}"))
    info = error_dict(step.error)
    if info is not None:
        body = f"{info['type']}: {info['message']}\n\n{info['traceback']}".rstrip()
        parts.append(Panel(Text(body, style="red"), title="error", title_align="left"))
    else:
        parts.append(
            Panel(
                Syntax(pretty_json(step.output), "json", word_wrap=True), title="output", title_align="left"
            )
        )
    return Group(*parts)


def usage_table(headers: list[str], title: str, rows: list[list[str]], total: list[str]) -> Table:
    """`durable usage`: one row per group, and the total under them."""
    table = Table(title=title, title_justify="left", show_footer=len(rows) > 1)
    for i, header in enumerate(headers):
        footer = total[i] if len(rows) > 1 else ""
        if i == 0:
            table.add_column(header, footer=footer, overflow="fold", style="bold", min_width=10)
        else:
            table.add_column(header, footer=footer, justify="right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def inbox_table(rows: list[WorkflowStatus], describe: Callable[[WorkflowStatus], str]) -> Table:
    """Waiting workflows: for what, until when (the commands that answer them are printed below it)."""
    now = int(time.time() * 1000)
    table = Table(title=f"{len(rows)} waiting workflow(s)", title_justify="left")
    table.add_column("id", overflow="fold", style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("waiting for", overflow="fold")
    table.add_column("until", no_wrap=True)
    for row in rows:
        wait = row.waiting
        deadline = wait.deadline if wait is not None else None
        if deadline is None:
            until = "no deadline"
        else:
            left = max(0, (deadline - now) // 1000)
            until = f"{format_ms(deadline)} (in {left // 60}m{left % 60:02d}s)"
        table.add_row(row.workflow_id, row.name, describe(row), until)
    return table
