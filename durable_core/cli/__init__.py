"""The `durable` command: inspect and repair workflows from a terminal.

Example:
    ```console
    $ export DURABLE_DATABASE_URL=sqlite:///agents.db
    $ durable workflows list --status ERROR --since 2h
    $ durable workflows show 7f3c...            # steps, outputs cut; --json for everything
    $ durable workflows list --status ERROR -q | xargs durable workflows resume
    $ durable workflows fork 7f3c... --from-step 4
    $ durable inbox                             # runs waiting for a human
    $ durable send 7f3c... '{"approved": true}' --topic approval
    $ durable usage --since 1d --by name          # tokens and cost of model calls
    $ durable budget raise 7f3c... --cost 5       # a run paused by its budget continues
    $ durable dashboard                         # http://127.0.0.1:8790
    ```

Options go before or after the command (``durable inbox --database-url URL``). On a terminal,
listings are tables; piped or redirected they are plain tab-separated lines (``--format plain``)
in which no id, name or command is ever wrapped or cut; ``--format json`` gives complete records
and ``-q`` ids only.

`resume` runs a failed (ERROR) workflow again from the step that failed, once its cause is
fixed (the steps before it are not re-run), and continues a CANCELLED or parked
(RETRIES_EXCEEDED) one; a SUCCESS is final (`fork` runs it again from a chosen step).

Exit status: 0 done, 1 not found or the operation failed, 2 usage error. The CLI has no
workflow code: a fork or resume it asks for is queued and run by a launched engine that
registers the workflow.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from .. import DatabaseUnavailable, DurableError, WorkflowNotFoundError
from .._inspection import NoDatabase, client_engine
from ._commands import COMMANDS, CommandError, check_usage
from ._parser import build_parser

__all__ = ["main"]


READ_ONLY = {("workflows", "list"), ("workflows", "show"), ("inbox", None), ("usage", None)}


def _fail(message: str, code: int) -> int:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/bold red] {escape(message)}"
    )
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script passes it to `sys.exit`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in ("workflows", "wf"):
            args.command = "workflows"
        check_usage(args)  # a usage error needs no database
        if args.command == "dashboard":
            return _dashboard(args)
        key = (args.command, getattr(args, "action", None))
        handler = COMMANDS[key]
        with client_engine(
            args.database_url,
            create=args.command == "migrate",
            writes=key not in READ_ONLY and not getattr(args, "dry_run", False),
        ) as engine:
            return handler(engine, args)
    except CommandError as exc:
        if exc.code == 2:
            parser.print_usage(sys.stderr)
        return _fail(str(exc), exc.code)
    except WorkflowNotFoundError as exc:
        return _fail(f"no workflow with id {exc.workflow_id!r}", 1)
    except NoDatabase as exc:
        return _fail(exc.message, 1)
    except DatabaseUnavailable as exc:
        return _fail(f"{exc.message}\n(durable reads the URL from --database-url or DURABLE_DATABASE_URL)", 1)
    except DurableError as exc:
        return _fail(exc.message, 1)
    except SQLAlchemyError as exc:  # never a raw traceback: the driver's own message, on one line
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return _fail(f"database error: {detail}", 1)
    except BrokenPipeError:  # `durable workflows list | head`: the reader stopped, nothing is wrong
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    # Python flushes stdout at exit; on a closed pipe that would print a second error.
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _dashboard(args: argparse.Namespace) -> int:
    from ..dashboard import DashboardConfigError, serve

    token = args.token or os.environ.get("DURABLE_DASHBOARD_TOKEN") or None
    try:
        serve(database_url=args.database_url, host=args.host, port=args.port, token=token)
    except DashboardConfigError as exc:
        return _fail(str(exc), 2)
    return 0
