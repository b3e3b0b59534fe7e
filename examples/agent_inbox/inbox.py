"""An inbox for agents that wait for human approval: a local web page over durable waits.

    python examples/agent_inbox/inbox.py            # starts the demo agents and the page
    # open http://127.0.0.1:8765/ , approve or reject; stop the process (Ctrl-C, kill -9) while
    # agents wait, start it again: they are still waiting, for the same thing, with the same deadline.

The agents (`agents.py`) run in this process's engine and block in a durable `recv`; the page
(`page.py`) lists `engine.list_workflows(waiting=True)` and answers with `engine.send`. With
`--page-only` the process only serves the page (the agents run in other processes, for example
on Postgres via `DURABLE_DATABASE_URL`); any number of such pages can run at once.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import sys
import threading
from typing import Any

from agents import APPROVAL_TOPIC, DEMO_AGENTS
from page import APPROVAL_WAIT, InboxServer, Kinds

from durable_core import Engine, workflow_options

DEFAULT_URL = "sqlite:///inbox.db"  # a file in the current directory


def start_demo_agents(engine: Engine, suffix: str = "") -> list[str]:
    """Start the demo agents that do not exist yet (fixed ids: a restart never starts them twice)."""
    started: list[str] = []
    for base_id, agent, argument in DEMO_AGENTS:
        workflow_id = base_id + suffix
        if engine.list_workflows(workflow_ids=[workflow_id]):
            continue
        with workflow_options(workflow_id=workflow_id):
            engine.start_workflow(agent, argument)
        started.append(workflow_id)
    return started


def _frameworks(engine: Engine) -> list[Any]:
    """The Pydantic AI and LangGraph agents (`framework_agents.py`), where those packages are installed."""
    try:
        import framework_agents
    except ImportError as exc:  # pragma: no cover - the module itself only needs durable_core
        print(f"(framework agents skipped: {exc})", flush=True)
        return []
    agents, notes = framework_agents.build(engine)
    for note in notes:
        print(f"({note})", flush=True)
    return agents


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_URL,
        help=f"where the agents are recorded (default: env DURABLE_DATABASE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--page-only", action="store_true", help="serve the page; start no agents here")
    parser.add_argument("--no-frameworks", action="store_true", help="only the plain durable_core agents")
    args = parser.parse_args()

    print(f"database: {args.database_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    counter = itertools.count(2)
    engine = Engine(args.database_url)
    kinds: Kinds = {APPROVAL_TOPIC: APPROVAL_WAIT}  # by status.waiting.topic
    names = sorted({agent.__name__ for _, agent, _ in DEMO_AGENTS})
    summaries: dict[str, Any] = {}
    frameworks = [] if args.no_frameworks else _frameworks(engine)  # built before launch(): resumable
    for framework in frameworks:
        kinds.update(framework.kinds)
        names += framework.workflow_names
        summaries.update(framework.summaries)
    with engine:  # launch() resumes the agents a previous process left waiting
        if not args.page_only:
            started = start_demo_agents(engine)
            for framework in frameworks:
                started += framework.start(engine)
            print(
                f"started {len(started)} agents: {', '.join(started) or 'none (all exist already)'}",
                flush=True,
            )
        server = InboxServer(
            engine,
            agent_names=names,
            kinds=kinds,
            summaries=summaries,
            start_demo=None if args.page_only else lambda: start_demo_agents(engine, f"-{next(counter)}"),
            port=args.port,
        )
        print(f"inbox at {server.url}", flush=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        server.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
