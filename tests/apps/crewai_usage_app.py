"""A process running the research crew on a `MeteredLLM`; the usage tests crash, kill and rerun it.

Usage: python crewai_usage_app.py DATABASE_URL [budget]
Env: CALL_LOG (file of LLM/tool calls), CRASH_IN_TOOL (a tool that kills the process).
``budget``: the crew is instrumented with Budget(max_model_calls=2), so the kickoff pauses
before its third LLM call (and blocks there until the budget is raised).
Prints ``RESULT:{json}`` (workflow id, output, usage totals) once the kickoff returns.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_TESTING", "true")

from crewai_support import INPUTS, metered_crew
from durable_crewai import crew_workflow_id, durable_kickoff, instrument

from durable_core import Budget, Engine


def main() -> None:
    url = sys.argv[1]
    crew, _llm = metered_crew(callbacks=[durable_kickoff])
    if "budget" in sys.argv[2:]:
        instrument(crew, budget=Budget(max_model_calls=2))
    with Engine(url, executor_id="crewai-usage-app", heartbeat_seconds=0.5, lease_seconds=5.0) as engine:
        output = crew.kickoff(inputs=INPUTS)
        workflow_id = crew_workflow_id(crew, INPUTS)
        usage = engine.get_workflow_status(workflow_id).usage
        assert usage is not None
        result = {
            "workflow_id": workflow_id,
            "raw": output.raw,
            "usage": {
                "model_calls": usage.model_calls,
                "input": usage.input_tokens,
                "output": usage.output_tokens,
            },
        }
    print("RESULT:" + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
