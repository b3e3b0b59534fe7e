"""A process that runs the 3-tool DurableAgent; run twice by test_pai_crash.py.

argv: database_url agent_name call_log_path phase ('crash' or 'resume') [stream]

With `stream`, the crashing phase streams the run (`run_stream`, streamed model requests) and
prints each text chunk as it arrives.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from durable_pydantic_ai import DurableAgent
from pai_support import CallLog, three_tool_agent

from durable_core import Engine


def main() -> None:
    database_url, name, log_path, phase = sys.argv[1:5]
    log = CallLog(Path(log_path))
    agent = three_tool_agent(name, log, crash_in="tool_c" if phase == "crash" else None)
    durable_agent = DurableAgent(agent)  # registered before launch, like any workflow
    engine = Engine(database_url, executor_id=f"crash-test-{phase}")
    engine.launch()
    try:
        if sys.argv[5:] == ["stream"] and phase == "crash":
            asyncio.run(_stream(durable_agent))
        result = asyncio.run(durable_agent.run("go", run_id="crash-run"))
        print(json.dumps({"output": result.output, "messages": len(result.all_messages())}))
    finally:
        engine.shutdown()


async def _stream(durable_agent: DurableAgent[None, str]) -> None:
    async with durable_agent.run_stream("go", run_id="crash-run") as stream:
        async for chunk in stream.stream_text(delta=True, debounce_by=None):
            print(json.dumps({"chunk": chunk}), flush=True)


if __name__ == "__main__":
    main()
