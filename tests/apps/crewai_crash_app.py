"""A process that runs the research crew durably; the CrewAI tests crash and restart it.

Usage: python crewai_crash_app.py DATABASE_URL [native|react] [human]
Env: CALL_LOG (file of LLM/tool calls), CRASH_IN_TOOL (a tool that kills the process).
Prints the kickoff's final output on success.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_TESTING", "true")

from crewai_support import research_crew
from durable_crewai import durable_kickoff

from durable_core import Engine


def main() -> None:
    url = sys.argv[1]
    native = "native" in sys.argv[2:]
    human = "human" in sys.argv[2:]
    crew = research_crew(native=native, human_input=human, callbacks=[durable_kickoff])
    with Engine(url, heartbeat_seconds=0.5, lease_seconds=5.0):
        output = crew.kickoff(inputs={"topic": "AI"})
    print("OUTPUT:" + output.raw, flush=True)


if __name__ == "__main__":
    main()
