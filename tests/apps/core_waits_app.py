"""A durable app that waits (recv or sleep); tests SIGKILL it mid-wait and restart it.

Usage: python core_waits_app.py DATABASE_URL MODE WORKFLOW_ID KIND SECONDS
MODE: run (start and wait for the result) or wait (launch: recovery resumes it; wait for the result).
KIND: recv or sleep.
"""

from __future__ import annotations

import json
import sys
import time

from durable_core import Engine, recv, sleep, step, workflow, workflow_options

URL, MODE, WORKFLOW_ID, KIND, SECONDS = sys.argv[1:6]


@step()
def started_at() -> float:
    return time.time()


@workflow(name="waiting_flow")
def waiting_flow(kind: str, seconds: float) -> dict[str, object]:
    begin = started_at()
    if kind == "recv":
        got = recv("approval", timeout_seconds=seconds)
    else:
        sleep(seconds)
        got = None
    return {"message": got, "began": begin, "ended": time.time()}


if __name__ == "__main__":
    with Engine(URL, heartbeat_seconds=0.2, lease_seconds=2.0) as engine:
        if MODE == "run":
            with workflow_options(workflow_id=WORKFLOW_ID):
                result = waiting_flow(KIND, float(SECONDS))
        else:
            result = engine.retrieve_workflow(WORKFLOW_ID).get_result(timeout_seconds=60)
        print(json.dumps(result))
