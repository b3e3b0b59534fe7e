"""The argument grammar of `durable`. Usage errors exit with status 2 (argparse's convention)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

__all__ = ["build_parser", "parse_time"]

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
STATUSES = ("PENDING", "ENQUEUED", "SUCCESS", "ERROR", "CANCELLED", "RETRIES_EXCEEDED")


def parse_time(text: str) -> datetime:
    """An ISO date/time (local time when naive) or a duration ago: ``30m``, ``2h``, ``1d``."""
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: amount})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use ISO format (2026-01-31 or 2026-01-31T14:00) or a duration "
            f"ago (30m, 2h, 1d)"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()


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
        type=parse_time,
        metavar="TIME",
        help="created at or after TIME (ISO time, or a duration ago: 30m, 2h, 1d)",
    )
    group.add_argument("--until", type=parse_time, metavar="TIME", help="created before TIME")
    group.add_argument(
        "--waiting", action="store_true", help="only workflows blocked in recv, sleep or get_event now"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="durable",
        description="Inspect and repair durable workflows: list, show, cancel, resume, fork, answer waits.",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="database URL (default: env DURABLE_DATABASE_URL, else sqlite:///durable.db)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    wf = commands.add_parser(
        "workflows", aliases=["wf"], help="list, show, cancel, resume and fork workflows"
    )
    wf_commands = wf.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = wf_commands.add_parser("list", help="list workflows")
    _add_filters(listing)
    listing.add_argument(
        "--limit", type=_non_negative_int, default=100, help="at most this many (0: all; default 100)"
    )
    listing.add_argument("--offset", type=_non_negative_int, default=0, help="skip this many")
    listing.add_argument("--newest-first", action="store_true", help="newest first (default: oldest first)")
    listing.add_argument("--json", action="store_true", help="print complete records as JSON")

    show = wf_commands.add_parser("show", help="a workflow and its steps")
    show.add_argument("workflow_id", metavar="ID")
    show.add_argument("--step", type=_positive_int, metavar="N", help="print step N completely")
    show.add_argument(
        "--json", action="store_true", help="print the workflow and every step completely as JSON"
    )

    for action, verb in (("cancel", "cancel"), ("resume", "resume")):
        sub = wf_commands.add_parser(
            action,
            help=f"{verb} workflows by id or by filter",
            description=f"{verb.capitalize()} the given workflows, or every workflow matching the filters "
            + (
                "(default --status PENDING,ENQUEUED)."
                if action == "cancel"
                else "(default --status CANCELLED,RETRIES_EXCEEDED)."
            ),
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

    fork = wf_commands.add_parser(
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

    inbox = commands.add_parser("inbox", help="workflows waiting now: for what, until when")
    inbox.add_argument("--all", action="store_true", help="also list timers (sleep) and event waits")
    inbox.add_argument("--limit", type=_non_negative_int, default=100, help="at most this many (0: all)")
    inbox.add_argument("--json", action="store_true", help="print complete records as JSON")

    send = commands.add_parser("send", help="send a JSON message to a workflow (answer an inbox item)")
    send.add_argument("workflow_id", metavar="ID")
    send.add_argument(
        "message", metavar="MESSAGE", help="a JSON value, e.g. '{\"approved\": true}' or '\"yes\"'"
    )
    send.add_argument("--topic", metavar="T", help="message topic (default: the default topic)")
    send.add_argument("--idempotency-key", metavar="KEY", help="sending the same key again is a no-op")

    commands.add_parser("migrate", help="create or upgrade the database schema")

    dash = commands.add_parser("dashboard", help="serve the local web dashboard")
    dash.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    dash.add_argument("--port", type=_non_negative_int, default=8765, help="port (default 8765)")
    dash.add_argument(
        "--token",
        help="require this token (header or ?token=); mandatory off loopback. "
        "Default: env DURABLE_DASHBOARD_TOKEN",
    )
    return parser
