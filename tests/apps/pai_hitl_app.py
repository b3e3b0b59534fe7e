"""A process whose durable agent waits for a human; run by test_hitl.py, killed while it waits.

argv: database_url agent_name call_log_path phase form
  form: 'request_input' (RequestInput waits in the run) or 'in_run' (output type without DeferredToolRequests)
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from durable_pydantic_ai import DurableAgent
from pai_support import CallLog, approval_agent

from durable_core import Engine


def main() -> None:
    database_url, name, log_path, phase, form = sys.argv[1:6]
    durable_agent = DurableAgent(approval_agent(name, CallLog(Path(log_path)), form=form))
    engine = Engine(database_url, executor_id=f"hitl-{phase}")
    engine.launch()
    try:
        result = asyncio.run(durable_agent.run("delete the report", run_id="approval-run"))
        print(json.dumps({"output": str(result.output)}))
    finally:
        engine.shutdown()


if __name__ == "__main__":
    main()
