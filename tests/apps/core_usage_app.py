"""A process for the usage and budget tests: python core_usage_app.py DATABASE_URL run|recover|pause

``run`` starts workflow "crashy" (4 model calls; DURABLE_CRASH_BEFORE_STEP kills it for real),
``pause`` starts "paused-run" under Budget(max_model_calls=2) (it pauses before its third call),
``recover`` launches an engine (same DURABLE_EXECUTOR_ID: it resumes its own unfinished
workflows) and prints the result of whichever of the two exists.
"""

from __future__ import annotations

import sys

import durable_core.testing  # noqa: F401  (arms DURABLE_CRASH_BEFORE_STEP)
from durable_core import Budget, Engine, Usage, record_usage, step, workflow, workflow_options


@step(name="app_model", model_call=True)
def app_model(i: int) -> int:
    record_usage(Usage(model="fake-1", input_tokens=10, output_tokens=5))
    return i


@workflow(name="usage_app_flow")
def usage_app_flow(n: int) -> int:
    return sum(1 for i in range(n) if app_model(i) >= 0)


def main() -> None:
    url, mode = sys.argv[1:3]
    with Engine(url, heartbeat_seconds=0.5, lease_seconds=5.0) as engine:
        if mode == "run":
            with workflow_options(workflow_id="crashy"):
                print(f"result {usage_app_flow(4)}", flush=True)
        elif mode == "pause":
            with workflow_options(workflow_id="paused-run", budget=Budget(max_model_calls=2)):
                print(f"result {usage_app_flow(4)}", flush=True)
        else:
            for workflow_id in ("crashy", "paused-run"):
                if engine.workflows.get(workflow_id) is not None:
                    result = engine.retrieve_workflow(workflow_id).get_result(timeout_seconds=60)
                    print(f"result {result}", flush=True)


if __name__ == "__main__":
    main()
