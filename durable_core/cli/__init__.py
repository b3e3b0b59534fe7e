"""The `durable` command: inspect and repair workflows from a terminal.

Example:
    ```console
    $ export DURABLE_DATABASE_URL=sqlite:///agents.db
    $ durable workflows list --status ERROR --since 2h
    $ durable workflows show 7f3c...            # steps, outputs cut; --json for everything
    $ durable workflows fork 7f3c... --from-step 4
    $ durable inbox                             # runs waiting for a human
    $ durable send 7f3c... '{"approved": true}' --topic approval
    $ durable dashboard                         # http://127.0.0.1:8765
    ```

Exit status: 0 done, 1 not found or the operation failed, 2 usage error. The CLI has no
workflow code: a fork or resume it asks for is queued and run by a launched engine that
registers the workflow.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from ..errors import DatabaseUnavailable, DurableError, WorkflowNotFoundError
from ._client import client_engine
from ._commands import COMMANDS, CommandError, load_message
from ._parser import build_parser

__all__ = ["main"]


def _fail(message: str, code: int) -> int:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/bold red] {message}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script passes it to `sys.exit`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in ("workflows", "wf"):
            args.command = "workflows"
        if args.command == "send":
            load_message(args.message)  # a usage error needs no database
        if args.command == "dashboard":
            return _dashboard(args)
        handler = COMMANDS[(args.command, getattr(args, "action", None))]
        with client_engine(args.database_url) as engine:
            return handler(engine, args)
    except CommandError as exc:
        if exc.code == 2:
            parser.print_usage(sys.stderr)
        return _fail(str(exc), exc.code)
    except WorkflowNotFoundError as exc:
        return _fail(f"no workflow with id {exc.workflow_id!r}", 1)
    except DatabaseUnavailable as exc:
        return _fail(f"{exc.message}\n(durable reads the URL from --database-url or DURABLE_DATABASE_URL)", 1)
    except DurableError as exc:
        return _fail(exc.message, 1)
    except KeyboardInterrupt:
        return 130


def _dashboard(args: argparse.Namespace) -> int:
    from ..dashboard import DashboardConfigError, serve

    token = args.token or os.environ.get("DURABLE_DASHBOARD_TOKEN") or None
    try:
        serve(database_url=args.database_url, host=args.host, port=args.port, token=token)
    except DashboardConfigError as exc:
        return _fail(str(exc), 2)
    return 0
