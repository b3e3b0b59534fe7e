"""An executor that dies for real while it owns several workflows, for the recovery-isolation tests.

Usage: python core_isolation_app.py DATABASE_URL MODE STOP_FILE   (options as env)

MODE ``start``: launch as executor EXECUTOR_ID, start `iso_flow(i)` for each id of ISO_IDS (i = its
position, from 1) and `gone_flow(i)` for each id of GONE_IDS, wait until every one of them has
recorded its first step, then die with os._exit(1) while all are PENDING and mid-run (with HOLD=1
their second step blocks). MODE ``serve``: stay launched (heartbeating, recovering, taking over)
until STOP_FILE exists. ``gone_flow`` is registered only with WITH_GONE=1: without it the process
plays a deploy in which that function was renamed or removed.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from durable_core import Engine, step, workflow, workflow_options


@step(name="iso_first")
def iso_first(i: int) -> int:
    return i


@step(name="iso_hold")
def iso_hold(i: int) -> int:
    if os.environ.get("HOLD") == "1":
        time.sleep(120)  # the process dies while here
    return i * 10


@workflow(name="iso_flow")
def iso_flow(i: int) -> int:
    return iso_first(i) + iso_hold(i)


def register_gone() -> Any:
    @workflow(name="gone_flow")
    def gone_flow(i: int) -> int:
        return iso_first(i) + iso_hold(i)

    return gone_flow


def _ids(variable: str) -> list[str]:
    return [item for item in os.environ.get(variable, "").split(",") if item]


def main() -> None:
    url, mode, stop_file = sys.argv[1:4]
    gone = register_gone() if os.environ.get("WITH_GONE") == "1" else None
    engine = Engine(
        url, heartbeat_seconds=0.2, lease_seconds=2.0, executor_id=os.environ.get("EXECUTOR_ID")
    ).launch()
    if mode == "start":
        started: list[str] = []
        for i, workflow_id in enumerate(_ids("ISO_IDS"), 1):
            with workflow_options(workflow_id=workflow_id):
                engine.start_workflow(iso_flow, i)
            started.append(workflow_id)
        for i, workflow_id in enumerate(_ids("GONE_IDS"), 1):
            assert gone is not None, "GONE_IDS needs WITH_GONE=1"
            with workflow_options(workflow_id=workflow_id):
                engine.start_workflow(gone, i)
            started.append(workflow_id)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(engine.list_steps(workflow_id) for workflow_id in started):
                os._exit(1)  # a crash: every workflow PENDING, mid-run, owned by this executor
            time.sleep(0.02)
        raise SystemExit("the workflows did not record their first step in time")
    if mode == "serve":
        deadline = time.monotonic() + float(os.environ.get("SERVE_SECONDS", "90"))
        while time.monotonic() < deadline and not os.path.exists(stop_file):
            time.sleep(0.05)
        engine.shutdown()
        return
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
