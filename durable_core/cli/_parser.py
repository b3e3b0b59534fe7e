"""The argument grammar of `durable`. Usage errors exit with status 2 (argparse's convention)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from .._inspection import DASHBOARD_PORT, STATUSES, parse_time

__all__ = ["FORMATS", "USAGE_GROUPS", "build_parser"]

FORMATS = ("table", "plain", "json")
USAGE_GROUPS = ("workflow", "name", "model", "day")


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:  # argparse shows the message of this type only
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, got {text}")
    return value


def _status(text: str) -> list[str]:
    values = [part.strip().upper() for part in text.split(",") if part.strip()]
    for value in values:
        if value not in STATUSES:
            raise argparse.ArgumentTypeError(f"unknown status {value!r}; choose from {', '.join(STATUSES)}")
    return values


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--status",
        type=_status,
        action="extend",
        metavar="STATUS",
        help=f"workflow status, repeatable or comma-separated: {', '.join(STATUSES)}",
    )
    group.add_argument("--name", action="append", metavar="NAME", help="workflow name (repeatable)")
    group.add_argument("--queue", action="append", metavar="QUEUE", help="queue name (repeatable)")
    group.add_argument(
        "--since",
        type=_time,
        metavar="TIME",
        help="created at or after TIME (ISO time, or a duration ago: 30m, 2h, 1d)",
    )
    group.add_argument("--until", type=_time, metavar="TIME", help="created before TIME")
    group.add_argument(
        "--waiting", action="store_true", help="only workflows blocked in recv, sleep or get_event now"
    )


DATABASE_HELP = "database URL (default: env DURABLE_DATABASE_URL, else sqlite:///durable.db)"


def _database_option(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # After a subcommand the option defaults to SUPPRESS, so it never hides one given before it.
    parser.add_argument(
        "--database-url", metavar="URL", help=DATABASE_HELP, default=None if top else argparse.SUPPRESS
    )


def _output_options(parser: argparse.ArgumentParser, *, ids: bool) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--format",
        choices=FORMATS,
        help="table (default on a terminal), plain (tab-separated, nothing wrapped or cut; the default "
        "when piped) or json (complete records)",
    )
    group.add_argument(
        "--json", dest="format", action="store_const", const="json", help="same as --format json"
    )
    if ids:
        group.add_argument(
            "-q", "--ids", action="store_true", help="print workflow ids only, one per line (for xargs)"
        )
    group.add_argument("--no-header", action="store_true", help="plain format: no header line")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="durable",
        description="Inspect and repair durable workflows: list, show, cancel, resume, fork, answer waits, "
        "see what model calls cost and raise budgets. Options go before or after the command.",
    )
    _database_option(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        parent: argparse._SubParsersAction[argparse.ArgumentParser], name: str, **kwargs: Any
    ) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, **kwargs)
        _database_option(sub, top=False)
        return sub

    wf = commands.add_parser(
        "workflows", aliases=["wf"], help="list, show, cancel, resume and fork workflows"
    )
    _database_option(wf, top=False)
    wf_commands = wf.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = command(wf_commands, "list", help="list workflows")
    _add_filters(listing)
    listing.add_argument(
        "--limit",
        type=_non_negative_int,
        help="at most this many (0: all; default: 100 in a table on a terminal, all otherwise)",
    )
    listing.add_argument("--offset", type=_non_negative_int, default=0, help="skip this many")
    listing.add_argument("--newest-first", action="store_true", help="newest first (default: oldest first)")
    _output_options(listing, ids=True)

    show = command(wf_commands, "show", help="a workflow and its steps")
    show.add_argument("workflow_id", metavar="ID")
    show.add_argument("--step", type=_positive_int, metavar="N", help="print step N completely")
    _output_options(show, ids=False)

    for action, verb in (("cancel", "cancel"), ("resume", "resume")):
        sub = command(
            wf_commands,
            action,
            help=f"{verb} workflows by id or by filter",
            description=f"{verb.capitalize()} the given workflows, or every workflow matching the filters "
            + (
                "(default --status PENDING,ENQUEUED)."
                if action == "cancel"
                else "(default --status CANCELLED,RETRIES_EXCEEDED). A failed (ERROR) workflow, once its "
                "cause is fixed, runs again from the step that failed: earlier steps are not re-run "
                "(--status ERROR). A SUCCESS is final: fork it to run it again."
            )
            + f" Ids may come from a pipe: durable workflows list --status ... -q | xargs durable workflows {action}",
        )
        sub.add_argument("workflow_ids", nargs="*", metavar="ID")
        _add_filters(sub)
        sub.add_argument("--dry-run", action="store_true", help="only list the workflows the filters match")
        if action == "resume":
            sub.add_argument(
                "--force",
                action="store_true",
                help="also resume PENDING/ENQUEUED workflows (stranded ones: an executor running one loses it)",
            )

    fork = command(
        wf_commands,
        "fork",
        help="rerun a workflow from a step",
        description="Start a new workflow with the same inputs; steps before N are copied, steps "
        "from N run live (with the code deployed now). Forking a running workflow is allowed: the copy "
        "is taken as recorded now.",
    )
    fork.add_argument("workflow_id", metavar="ID")
    fork.add_argument(
        "--from-step", type=_positive_int, required=True, metavar="N", help="first step to run live"
    )
    fork.add_argument("--new-id", metavar="ID", help="id of the new workflow (default: a new UUID)")
    fork.add_argument(
        "--app-version", metavar="V", help="application version to run it (default: the original's)"
    )
    fork.add_argument("--json", action="store_true", help="print the new workflow record as JSON")

    inbox = command(commands, "inbox", help="workflows waiting now: for what, until when, how to answer")
    inbox.add_argument("--all", action="store_true", help="also list timers (sleep) and other waits")
    inbox.add_argument(
        "--limit",
        type=_non_negative_int,
        help="at most this many (0: all; default: 100 in a table on a terminal, all otherwise)",
    )
    _output_options(inbox, ids=True)

    send = command(commands, "send", help="send a JSON message to a workflow (answer an inbox item)")
    send.add_argument("workflow_id", metavar="ID")
    send.add_argument(
        "message", metavar="MESSAGE", help="a JSON value, e.g. '{\"approved\": true}' or '\"yes\"'"
    )
    send.add_argument("--topic", metavar="T", help="message topic (default: the default topic)")
    send.add_argument("--idempotency-key", metavar="KEY", help="sending the same key again is a no-op")

    usage = command(
        commands,
        "usage",
        help="what model calls consumed: tokens and cost per workflow, name, model or day",
        description="Tokens and cost of recorded model calls (a replay never counts twice), per top-level "
        "workflow with its children, per workflow name, per model or per day (UTC). 'unknown': model calls "
        "that reported no tokens or no cost; '-': no model call.",
    )
    usage.add_argument(
        "--by",
        choices=USAGE_GROUPS,
        default="name",
        help="group by top-level workflow, workflow name (default), model, or UTC day",
    )
    usage.add_argument(
        "--since",
        type=_time,
        metavar="TIME",
        help="model calls completed at or after TIME (ISO time, or a duration ago: 30m, 12h, 1d)",
    )
    usage.add_argument("--name", action="append", metavar="NAME", help="top-level workflow name (repeatable)")
    usage.add_argument(
        "--workflow", action="append", metavar="ID", help="a workflow with its children (repeatable)"
    )
    _output_options(usage, ids=False)

    budget = commands.add_parser("budget", help="raise the budget of a workflow paused by it")
    _database_option(budget, top=False)
    budget_commands = budget.add_subparsers(dest="action", metavar="ACTION", required=True)
    lift = command(
        budget_commands,
        "raise",
        help="set new limits on the budget governing a workflow",
        description="Set new limits on the budget that governs workflow ID (set on it or inherited from "
        "an ancestor): engine.raise_budget. A run paused by that budget continues once it allows a model "
        "call again. Each limit given replaces the old one; the others stay.",
    )
    lift.add_argument("workflow_id", metavar="ID")
    lift.add_argument("--cost", type=_non_negative_float, metavar="USD", help="new max_cost_usd")
    lift.add_argument("--tokens", type=_non_negative_int, metavar="N", help="new max_tokens (input + output)")
    lift.add_argument("--calls", type=_non_negative_int, metavar="N", help="new max_model_calls")
    lift.add_argument("--json", action="store_true", help="print the new budget as JSON")

    command(commands, "migrate", help="create or upgrade the database schema (creates a SQLite file)")

    dash = command(commands, "dashboard", help="serve the local web dashboard")
    dash.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    dash.add_argument(
        "--port", type=_non_negative_int, default=DASHBOARD_PORT, help=f"port (default {DASHBOARD_PORT})"
    )
    dash.add_argument(
        "--token",
        help="require this token (header or ?token=); mandatory off loopback. "
        "Default: env DURABLE_DASHBOARD_TOKEN",
    )
    return parser
