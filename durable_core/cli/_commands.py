"""What each `durable` command does, on top of the Engine's public management API only."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from .. import TERMINAL_STATES, Engine, ModelUsage, WorkflowNotFoundError, WorkflowState, WorkflowStatus
from .._inspection import (
    answer_command,
    budget_text,
    cost_text,
    count_text,
    database_option,
    describe_wait,
    error_line,
    plain_field,
    plain_time,
    preview,
    raise_command,
    raise_outcome,
    spent_text,
    step_dict,
    tokens_text,
    total_usage,
    usage_dict,
    waiting_workflows,
    workflow_dict,
)
from . import _render

__all__ = ["COMMANDS", "CommandError", "check_usage", "load_message", "output_format"]


class CommandError(Exception):
    """An operation that could not be done; printed without a traceback, exit status 1 (or `code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _out() -> Console:
    # soft_wrap: a message line is never broken at the terminal width (ids and commands stay whole)
    return Console(soft_wrap=True, highlight=False)


def _note(text: str) -> None:
    """A remark that is not data: on stderr, so pipes carry only rows."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(text)


def _message(text: str, table: bool) -> None:
    """A message in place of data: with the table on a terminal, else on stderr."""
    if table:
        _out().print(text)
    else:
        _note(text)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def output_format(args: argparse.Namespace) -> str:
    """The chosen --format; by default a table on a terminal and plain text in a pipe or file."""
    chosen = getattr(args, "format", None)
    if chosen:
        return str(chosen)
    return "table" if sys.stdout.isatty() else "plain"


TABLE_LIMIT = 100


def limit_of(args: argparse.Namespace) -> int:
    """--limit, else 100 for a table on a terminal and everything for pipes and scripts (0: all)."""
    if args.limit is not None:
        return int(args.limit)
    return TABLE_LIMIT if output_format(args) == "table" and not getattr(args, "ids", False) else 0


def _print_plain(header: list[str], rows: list[list[Any]], args: argparse.Namespace) -> None:
    lines = [] if getattr(args, "no_header", False) else ["\t".join(header)]
    lines += ["\t".join(plain_field(value) for value in row) for row in rows]
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")


def _print_ids(rows: list[WorkflowStatus]) -> None:
    if rows:
        sys.stdout.write("".join(f"{row.workflow_id}\n" for row in rows))


def _status(engine: Engine, workflow_id: str) -> WorkflowStatus:
    try:
        return engine.get_workflow_status(workflow_id)
    except WorkflowNotFoundError:
        raise CommandError(f"no workflow with id {workflow_id!r}") from None


def filters_of(args: argparse.Namespace, default_status: list[str] | None = None) -> dict[str, Any]:
    return {
        "status": args.status or default_status,
        "name": args.name,
        "queue_name": args.queue,
        "created_after": args.since,
        "created_before": args.until,
        "waiting": True if args.waiting else None,
    }


def _has_filter(args: argparse.Namespace) -> bool:
    return any((args.status, args.name, args.queue, args.since, args.until, args.waiting))


# -- workflows ---------------------------------------------------------------------------


WORKFLOW_COLUMNS = ["ID", "NAME", "STATUS", "CREATED", "QUEUE", "WAITING_FOR_OR_ERROR", "TOKENS", "COST_USD"]


def _workflow_row(row: WorkflowStatus) -> list[Any]:
    detail = describe_wait(row.waiting) if row.waiting else preview(error_line(row.error), 200)
    return [
        row.workflow_id,
        row.name,
        row.status,
        plain_time(row.created_at),
        row.queue_name,
        detail,
        tokens_text(row.usage),
        cost_text(row.usage),
    ]


def _print_workflows(rows: list[WorkflowStatus], args: argparse.Namespace) -> None:
    fmt = output_format(args)
    if getattr(args, "ids", False):
        _print_ids(rows)
    elif fmt == "json":
        _print_json([workflow_dict(row) for row in rows])
    elif fmt == "plain":
        _print_plain(WORKFLOW_COLUMNS, [_workflow_row(row) for row in rows], args)
    else:
        console = _out()
        console.print(_render.workflows_table(rows))
        if any(_render.partly_unknown(row.usage) for row in rows):
            console.print(f"[dim]{_render.UNKNOWN_NOTE}[/dim]")


def workflows_list(engine: Engine, args: argparse.Namespace) -> int:
    limit = limit_of(args)
    rows = engine.list_workflows(
        **filters_of(args), limit=limit or None, offset=args.offset, newest_first=args.newest_first
    )
    table = output_format(args) == "table" and not args.ids
    if not rows and output_format(args) != "json":
        message = "no workflows match" + (
            " these filters" if _has_filter(args) else " (the database is empty)"
        )
        _message(message, table)
        return 0
    _print_workflows(rows, args)
    if limit and len(rows) == limit and output_format(args) != "json":
        more = (
            f"showing {len(rows)} from offset {args.offset}: more may exist "
            f"(--offset {args.offset + len(rows)}, or --limit 0 for all)"
        )
        _message(f"[dim]{more}[/dim]", table)
    return 0


STEP_COLUMNS = ["STEP", "NAME", "STATUS", "DURATION", "CHILD", "OUTPUT_OR_ERROR"]


def workflows_show(engine: Engine, args: argparse.Namespace) -> int:
    wf = _status(engine, args.workflow_id)
    steps = engine.list_steps(args.workflow_id)
    fmt = output_format(args)
    if args.step is not None:
        chosen = [s for s in steps if s.step_id == args.step]
        if not chosen:
            recorded = f"1..{steps[-1].step_id}" if steps else "none"
            raise CommandError(
                f"workflow {args.workflow_id!r} has no recorded step {args.step} (recorded: {recorded})"
            )
        if fmt == "json":
            _print_json(step_dict(chosen[0]))
        elif fmt == "plain":
            sys.stdout.write(_render.step_plain(chosen[0]) + "\n")
        else:
            _out().print(_render.step_detail(chosen[0]))
        return 0
    if fmt == "json":
        _print_json({"workflow": workflow_dict(wf), "steps": [step_dict(s) for s in steps]})
        return 0
    hint = (
        f"full step: durable workflows show {wf.workflow_id} --step N; everything: --json; rerun from a "
        f"step: durable workflows fork {wf.workflow_id} --from-step N"
    )
    if fmt == "plain":
        sys.stdout.write(
            "".join(f"{key}\t{plain_field(value)}\n" for key, value in _render.workflow_fields(wf))
        )
        sys.stdout.write("\n")
        _print_plain(STEP_COLUMNS, [_render.step_row(s) for s in steps], args)
        return 0
    console = _out()
    console.print(_render.workflow_panel(wf))
    console.print(_render.steps_table(steps))
    if steps:
        console.print(f"[dim]{hint}[/dim]")
    return 0


def check_usage(args: argparse.Namespace) -> None:
    """Usage errors found before any database is opened (exit status 2)."""
    if args.command == "send":
        load_message(args.message)
    if args.command == "budget" and (args.cost, args.tokens, args.calls) == (None, None, None):
        raise CommandError("say which limit to raise: --cost USD, --tokens N and/or --calls N", code=2)
    if args.command == "workflows" and args.action in ("cancel", "resume"):
        if args.workflow_ids and _has_filter(args):
            raise CommandError("give workflow ids or filters, not both", code=2)
        if not args.workflow_ids and not _has_filter(args):
            raise CommandError(
                f"say which workflows to {args.action}: one or more ids, or filters such as "
                f"--status PENDING --name NAME (see --help); ids may come from a pipe: durable workflows "
                f"list --status ... -q | xargs -r durable workflows {args.action}",
                code=2,
            )


def _targets(engine: Engine, args: argparse.Namespace, default_status: list[str]) -> list[WorkflowStatus]:
    check_usage(args)
    if args.workflow_ids:
        return [_status(engine, wid) for wid in args.workflow_ids]
    return engine.list_workflows(**filters_of(args, default_status))


def workflows_cancel(engine: Engine, args: argparse.Namespace) -> int:
    targets = _targets(engine, args, ["PENDING", "ENQUEUED"])
    console = _out()
    if args.dry_run:
        _print_workflows(targets, args)
        _note(f"dry run: would cancel {len(targets)} workflow(s)")
        return 0
    cancelled = 0
    for wf in targets:
        if wf.status in TERMINAL_STATES:
            console.print(f"workflow {wf.workflow_id} already finished ({wf.status}): nothing to cancel")
            continue
        engine.cancel_workflow(wf.workflow_id)
        cancelled += 1
        console.print(f"cancelled {wf.workflow_id} ({wf.name}, was {wf.status})")
    if not args.workflow_ids:
        console.print(f"{cancelled} workflow(s) cancelled")
    return 0


def workflows_resume(engine: Engine, args: argparse.Namespace) -> int:
    targets = _targets(engine, args, ["CANCELLED", "RETRIES_EXCEEDED"])
    console = _out()
    if args.dry_run:
        _print_workflows(targets, args)
        _note(f"dry run: would resume {len(targets)} workflow(s)")
        return 0
    failed = resumed = 0
    for wf in targets:
        if wf.status == "SUCCESS":
            failed += 1
            console.print(
                f"workflow {wf.workflow_id} already finished ({wf.status}): it cannot be resumed; "
                f"rerun it with durable workflows fork {wf.workflow_id} --from-step N"
            )
            continue
        if wf.status in ("PENDING", "ENQUEUED") and not args.force:
            # Resuming takes a PENDING run away from the executor running it and queues it again.
            console.print(
                f"workflow {wf.workflow_id} is {wf.status} (running, waiting or queued): nothing to resume; "
                "pass --force to queue a stranded one again (it stops wherever it runs now)"
            )
            continue
        engine.resume_workflow(wf.workflow_id)  # an ERROR one reruns from the step that failed
        resumed += 1
        again = ", again from the step that failed" if wf.status == "ERROR" else ""
        console.print(
            f"resumed {wf.workflow_id} ({wf.name}{again}): "
            f"{_where(engine.get_workflow_status(wf.workflow_id))}"
        )
    if not args.workflow_ids:
        console.print(f"{resumed} workflow(s) resumed")
    return 1 if failed and args.workflow_ids else 0


def _where(wf: WorkflowStatus) -> str:
    if wf.status == "ENQUEUED":
        return (
            f"enqueued; a launched engine that registers workflow {wf.name!r} (app version "
            f"{wf.app_version}) runs it"
        )
    return f"now {wf.status}"


def workflows_fork(engine: Engine, args: argparse.Namespace) -> int:
    source = _status(engine, args.workflow_id)
    steps = engine.list_steps(args.workflow_id)
    last = steps[-1].step_id if steps else 0
    if args.from_step > last + 1:
        raise CommandError(
            f"cannot fork {args.workflow_id!r} from step {args.from_step}: it has recorded steps 1..{last}; "
            f"choose --from-step between 1 and {last + 1}"
        )
    handle = engine.fork_workflow(
        args.workflow_id,
        args.from_step,
        new_workflow_id=args.new_id,
        app_version=args.app_version or source.app_version,
    )
    forked = engine.get_workflow_status(handle.workflow_id)
    if args.json:
        _print_json(workflow_dict(forked))
        return 0
    copied = sum(1 for s in steps if s.step_id < args.from_step)
    _out().print(
        f"forked {args.workflow_id} from step {args.from_step} as {forked.workflow_id} "
        f"({copied} step(s) copied): {_where(forked)}"
    )
    return 0


# -- inbox, send, migrate, dashboard -----------------------------------------------------


INBOX_COLUMNS = ["ID", "NAME", "KIND", "TOPIC", "DEADLINE", "WAITING_FOR", "ANSWER_WITH"]


def _wait_text(row: WorkflowStatus) -> str:
    text = describe_wait(row.waiting)
    if row.waiting is not None and row.waiting.kind == "budget":
        text += f"; this run spent {spent_text(row.usage)}"
    return text


def inbox(engine: Engine, args: argparse.Namespace) -> int:
    rows = waiting_workflows(engine, limit=limit_of(args) or None, everything=args.all)
    fmt = output_format(args)
    # the URL given on this command line (password hidden); none when it came from the environment
    suffix = database_option(getattr(args, "database_url", None))

    def answer(row: WorkflowStatus) -> str:
        return answer_command(row.workflow_id, row.waiting, database_option=suffix) or ""

    def lift(row: WorkflowStatus) -> str:
        return raise_command(row.workflow_id, row.waiting, suffix) or ""

    if args.ids:
        _print_ids(rows)
        return 0
    if fmt == "json":
        _print_json([workflow_dict(row, suffix) for row in rows])
        return 0
    if not rows:
        message = "nothing is waiting for input" + (
            "" if args.all else " (--all also lists timers and events)"
        )
        _message(message, fmt == "table")
        return 0
    if fmt == "plain":
        _print_plain(
            INBOX_COLUMNS,
            [
                [
                    row.workflow_id,
                    row.name,
                    row.waiting.kind if row.waiting else "",
                    row.waiting.topic if row.waiting else "",
                    plain_time(row.waiting.deadline) if row.waiting else "",
                    _wait_text(row),
                    answer(row) or lift(row),  # a budget wait is ended by a raise, not a message
                ]
                for row in rows
            ],
            args,
        )
        return 0
    console = _out()
    console.print(_render.inbox_table(rows, _wait_text))
    # one command per line, never wrapped, so each copies and pastes whole
    commands = [command for command in map(answer, rows) if command]
    if commands:
        console.print("answer with (put the JSON answer in place of <json>):")
        for command in commands:
            console.print(f"  {escape(command)}")
    raises = [command for command in map(lift, rows) if command]
    if raises:
        console.print("raise the budget with (put the new limit in place of <usd>, <tokens> or <calls>):")
        for command in raises:
            console.print(f"  {escape(command)}")
    return 0


# -- usage and budgets ---------------------------------------------------------------------


USAGE_COLUMNS = ["MODEL_CALLS", "REQUESTS", "INPUT_TOKENS", "OUTPUT_TOKENS", "TOKENS", "COST_USD"]
USAGE_HEADERS = ["model calls", "requests", "input tokens", "output tokens", "tokens", "cost (USD)"]


def _usage_row(key: str, usage: ModelUsage) -> list[str]:
    return [
        key,
        str(usage.model_calls),
        str(usage.requests) if usage.requests else "unknown",
        count_text(usage.input_tokens, usage),
        count_text(usage.output_tokens, usage),
        tokens_text(usage),
        cost_text(usage),
    ]


def usage(engine: Engine, args: argparse.Namespace) -> int:
    fmt = output_format(args)
    query: dict[str, Any] = {"workflow_ids": args.workflow, "name": args.name, "since": args.since}
    groups = engine.usage(**query, group_by=args.by)
    # the total of every model call (per model, a call reporting two models would count twice)
    parts = engine.usage(**query, group_by="day") if args.by == "model" else groups
    total = total_usage(parts.values())
    since = f" since {args.since.astimezone().strftime('%Y-%m-%d %H:%M:%S')}" if args.since else ""
    if fmt == "json":
        _print_json(
            {
                "by": args.by,
                "since": args.since.isoformat() if args.since else None,
                "groups": {key: usage_dict(value) for key, value in groups.items()},
                "total": usage_dict(total),
            }
        )
        return 0
    if not groups:
        _message(f"no model call recorded{since}", fmt == "table")
        return 0
    rows = [_usage_row(key, value) for key, value in groups.items()]
    if fmt == "plain":
        _print_plain([args.by.upper(), *USAGE_COLUMNS], rows, args)
        return 0
    # on a terminal: no requests column (it rarely differs from model calls; plain and json have it)
    table_rows = [
        [_render.short_unknown(cell) for cell in row[:2] + row[3:]]
        for row in [*rows, _usage_row("total", total)]
    ]
    headers = [args.by, *(h for h in USAGE_HEADERS if h != "requests")]
    title = f"model usage by {args.by}{since}"
    console = _out()
    console.print(_render.usage_table(headers, title, table_rows[:-1], table_rows[-1]))
    if any(cell.endswith("+?") for row in table_rows for cell in row):
        console.print(f"[dim]{_render.UNKNOWN_NOTE}[/dim]")
    return 0


def budget_raise(engine: Engine, args: argparse.Namespace) -> int:
    try:
        before: WorkflowStatus | None = engine.get_workflow_status(args.workflow_id)
    except WorkflowNotFoundError:
        before = None  # `raise_budget` says so
    budget = engine.raise_budget(
        args.workflow_id, max_cost_usd=args.cost, max_tokens=args.tokens, max_model_calls=args.calls
    )
    if args.json:
        _print_json(dataclasses.asdict(budget))
        return 0
    wf = _status(engine, args.workflow_id)
    console = _out()
    console.print(
        f"budget of {wf.workflow_id} ({wf.name}) is now: {budget_text(budget)} (on_exceeded={budget.on_exceeded})"
    )
    outcome, still = raise_outcome(budget, wf, before=before)
    if outcome:
        console.print(f"[yellow]{escape(outcome)}[/yellow]" if still else escape(outcome))
    return 0


def load_message(text: str) -> Any:
    """The MESSAGE argument as JSON; malformed JSON is a usage error (exit 2)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"MESSAGE is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); quote "
            f"a string as JSON, "
            "e.g. '\"yes\"', or pass an object like '{\"approved\": true}'",
            code=2,
        ) from None


def send(engine: Engine, args: argparse.Namespace) -> int:
    message = load_message(args.message)
    wf = _status(engine, args.workflow_id)
    engine.send(args.workflow_id, message, args.topic, idempotency_key=args.idempotency_key)
    topic = f"topic {args.topic!r}" if args.topic is not None else "the default topic"
    _out().print(f"sent to {wf.workflow_id} ({wf.name}, {wf.status}) on {topic}")
    if wf.status == WorkflowState.SUCCESS:
        _out().print(
            f"[yellow]note: the workflow already finished ({wf.status}); nobody will read it[/yellow]"
        )
    elif wf.status in TERMINAL_STATES:
        _out().print(
            f"[yellow]note: the workflow is {wf.status}; it reads the message only if it is resumed "
            f"(durable workflows resume {wf.workflow_id})[/yellow]"
        )
    return 0


def migrate(engine: Engine, args: argparse.Namespace) -> int:
    _out().print("database schema is up to date")
    return 0


COMMANDS: dict[tuple[str, str | None], Callable[[Engine, argparse.Namespace], int]] = {
    ("workflows", "list"): workflows_list,
    ("workflows", "show"): workflows_show,
    ("workflows", "cancel"): workflows_cancel,
    ("workflows", "resume"): workflows_resume,
    ("workflows", "fork"): workflows_fork,
    ("inbox", None): inbox,
    ("send", None): send,
    ("migrate", None): migrate,
    ("usage", None): usage,
    ("budget", "raise"): budget_raise,
}
