"""A durable research crew: two agents, a tool each, a human review, a crash, and a resume.

Offline by default (a scripted LLM, no network), so it runs anywhere:

    python examples/crewai/research_crew.py

What happens:
  1. A worker process kicks off the crew. The researcher searches (a tool call, one step) and
     reports; the writer drafts, then its fact-check tool crashes the process (`os._exit`).
  2. A second worker runs the very same `crew.kickoff(...)`. The kickoff's workflow id is a hash
     of the crew and its inputs, so it finds the crashed run: the research task is skipped
     outright, the writer's first LLM call is replayed from the database, and only the fact
     check (in flight at the crash) and the calls after it run again.
  3. The writer's task has `human_input=True`: the kickoff waits durably for a reviewer. This
     script plays the reviewer and approves through `engine.send(...)`.
  4. Running the kickoff once more returns the recorded result with no LLM or tool call.

With a real LLM (its API key set in the environment, e.g. OPENAI_API_KEY):

    python examples/crewai/research_crew.py --model gpt-4o-mini

The runs are recorded in `research_crew.db` in the current directory (or `--database-url`, or env
`DURABLE_DATABASE_URL`); `durable workflows list --database-url sqlite:///research_crew.db` shows
them afterwards. Running the demo again starts a new kickoff (the inputs name the demo run, so
the kickoff's id differs) and plays out the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _name in ("CREWAI_DISABLE_TELEMETRY", "OTEL_SDK_DISABLED", "CREWAI_TESTING"):
    os.environ.setdefault(_name, "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from crewai import LLM, Agent, BaseLLM, Crew, CrewOutput, Task  # noqa: E402
from crewai.tools import tool  # noqa: E402
from durable_crewai import HUMAN_INPUT_EVENT, KICKOFF_WORKFLOW, durable_kickoff  # noqa: E402

from durable_core import Engine  # noqa: E402

INPUTS = {"topic": "durable execution"}
DEFAULT_URL = "sqlite:///research_crew.db"  # a file in the current directory
CALLS = Path(os.environ.get("EXAMPLE_CALL_LOG", os.devnull))


def note(entry: str) -> None:
    """Log each LLM/tool call that really runs, so the demo can show what a resume repeats."""
    with CALLS.open("a", encoding="utf-8") as handle:
        handle.write(entry + "\n")


class ScriptedLLM(BaseLLM):
    """Plays the LLM offline with CrewAI's ReAct protocol: one tool call per task, then an answer.

    It answers from the request alone (never from a call counter), like a real model, so a resumed
    process that replays the first calls from the record gets the same answers for the rest.
    """

    model: str = "scripted"

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str:
        chat = [m for m in messages if m.get("role") != "system"] if isinstance(messages, list) else []
        observations = [
            str(m["content"]).split("Observation:", 1)[1].strip()
            for m in chat
            if "Observation:" in str(m["content"])
        ]
        writing = from_task is not None and from_task.description.startswith("Write")
        note(f"llm: {'writer' if writing else 'researcher'} turn {len(observations) + 1}")
        if not observations:
            action = (
                ("fact_check", {"claim": "steps are recorded"})
                if writing
                else ("search", {"query": INPUTS["topic"]})
            )
            return f"Thought: I should use {action[0]}.\nAction: {action[0]}\nAction Input: {json.dumps(action[1])}"
        if writing:
            return f"Thought: Done.\nFinal Answer: Report: durable execution resumes crashed work. ({observations[0]})"
        return f"Thought: Done.\nFinal Answer: Notes: {observations[0]}"

    def get_context_window_size(self) -> int:
        return 200_000

    def get_input_tokens_count(self, *args: Any, **kwargs: Any) -> int:
        return 0


@tool("search")
def search(query: str) -> str:
    """Search the web for a query."""
    note(f"tool: search({query!r})")
    return f"3 articles about {query}"


@tool("fact_check")
def fact_check(claim: str) -> str:
    """Check a claim against trusted sources."""
    note(f"tool: fact_check({claim!r})")
    if os.environ.get("EXAMPLE_CRASH") == "1":
        print("   ... the worker crashes inside the fact_check tool", flush=True)
        os._exit(17)
    return f"confirmed: {claim}"


def build_crew(model: str | None = None, *, durable: bool = True, review: bool = True) -> Crew:
    """The crew; `durable=False` and `review=False` give the plain baseline the benchmark compares."""
    llm: BaseLLM = LLM(model=model) if model else ScriptedLLM(model="scripted")
    researcher = Agent(role="Researcher", goal="Find facts", backstory="Thorough.", llm=llm, tools=[search])
    writer = Agent(role="Writer", goal="Write short reports", backstory="Clear.", llm=llm, tools=[fact_check])
    research = Task(description="Research {topic}", expected_output="Key facts", agent=researcher)
    write = Task(
        description="Write a report on {topic}",
        expected_output="A short report",
        agent=writer,
        context=[research],
        human_input=review,  # a durable wait: answered with engine.send(...)
    )
    callbacks = [durable_kickoff] if durable else []
    return Crew(agents=[researcher, writer], tasks=[research, write], before_kickoff_callbacks=callbacks)


def worker(database_url: str, model: str | None, demo_run: int) -> None:
    """One worker process: launch the engine, kick off (or resume) the crew."""
    crew = build_crew(model)
    with Engine(database_url):
        output = crew.kickoff(inputs={**INPUTS, "demo_run": demo_run})
    assert isinstance(output, CrewOutput)
    print(f"   result: {output.raw}", flush=True)


def run_worker(
    database_url: str, model: str | None, calls: Path, demo_run: int, *, crash: bool
) -> subprocess.Popen[str]:
    env = {**os.environ, "EXAMPLE_CALL_LOG": str(calls), "EXAMPLE_CRASH": "1" if crash else "0"}
    env["TMPDIR"] = str(calls.parent)  # CrewAI's lock files go there, removed with it at the end
    command = [sys.executable, __file__, "--worker", str(demo_run), "--database-url", database_url]
    if model:
        command += ["--model", model]
    return subprocess.Popen(command, env=env, text=True)


def show_calls(calls: Path) -> None:
    lines = calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []
    for line in lines or ["(none: everything came from the record)"]:
        print(f"     {line}")
    calls.write_text("", encoding="utf-8")


def demo(database_url: str, model: str | None) -> None:
    print(f"database: {database_url}")
    with Engine(database_url, app_version="reviewer") as engine:
        demo_run = len(engine.list_workflows(name=KICKOFF_WORKFLOW)) + 1
    if demo_run > 1:
        print(f"(earlier runs of this demo are in the database: this is demo run {demo_run}, a new kickoff)")
    with tempfile.TemporaryDirectory(prefix="crew-example-") as tmp:  # removed at the end
        _demo(database_url, model, Path(tmp) / "calls.log", demo_run)
    print(f"\nsee the runs again: durable workflows list --database-url {database_url}")


def _demo(database_url: str, model: str | None, calls: Path, demo_run: int) -> None:
    print("1. A worker kicks off the crew; a tool in the second task crashes the process.")
    assert run_worker(database_url, model, calls, demo_run, crash=True).wait() == 17
    print("   calls that ran:")
    show_calls(calls)

    print("2. A new worker runs the same kickoff; it resumes where the first one crashed.")
    resumed = run_worker(database_url, model, calls, demo_run, crash=False)
    # The reviewer only reads and sends: another app_version, so its engine never takes work.
    with Engine(database_url, app_version="reviewer") as engine:
        waiting, topic = _wait_for_review(engine)
        review = engine.get_event(waiting, HUMAN_INPUT_EVENT, timeout_seconds=10)
        print(f"3. The crew waits for a human review of: {review['output']!r}")
        print(f"   The reviewer approves with engine.send(workflow_id, '', topic={topic!r}) (waiting.topic).")
        engine.send(waiting, "", topic=topic)
        assert resumed.wait() == 0
        print("   calls that ran on resume (the research task and the first writer call were replayed):")
        show_calls(calls)
        print(f"   steps recorded for {waiting}:")
        for info in engine.list_steps(waiting):
            print(f"     {info.step_id:>2} {info.name}")
    print("4. Running the finished kickoff again returns its result with no LLM or tool call.")
    assert run_worker(database_url, model, calls, demo_run, crash=False).wait() == 0
    show_calls(calls)


def _wait_for_review(engine: Engine, timeout: float = 120.0) -> tuple[str, str | None]:
    """The kickoff waiting for a review, and the topic to answer on (what its wait shows)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for status in engine.list_workflows(waiting=True, name=KICKOFF_WORKFLOW):
            if status.waiting is not None and status.waiting.kind == "recv":
                return status.workflow_id, status.waiting.topic
        time.sleep(0.1)
    raise TimeoutError("the crew never asked for a review")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        help=f"where the runs are recorded (default: env DURABLE_DATABASE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument("--model", help="a real CrewAI model name, e.g. gpt-4o-mini (needs its API key)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    database_url = args.database_url or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_URL
    if args.worker:
        worker(database_url, args.model, args.worker)
    else:
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr] - in order with the workers
        demo(database_url, args.model)


if __name__ == "__main__":
    main()
