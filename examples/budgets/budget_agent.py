"""A runaway agent stopped by its budget, listed in the inbox, and resumed after a raise.

    python examples/budgets/budget_agent.py

Offline: a scripted model plays a research agent that keeps searching (each request's prompt
grows with the conversation, as a looping agent's does) and reports its token usage the way a
provider does, under the name of a priced model (gpt-4o), so pydantic-ai prices each request
with genai-prices. What happens:

  1. The agent runs under `DurableAgent(agent, budget=Budget(max_cost_usd=0.03))`. Before every
     model request the budget is checked against the run's recorded usage; once the run has spent
     $0.03 it makes no further request and pauses durably, in a wait of kind "budget".
  2. The paused run is in the inbox: `engine.list_workflows(waiting=True)` (and `durable inbox`)
     list it with what it spent and the limit it reached.
  3. `engine.raise_budget(run_id, max_cost_usd=0.10)` (or `durable budget raise RUN --cost 0.10`)
     lifts the limit; the run continues where it stopped and answers. Nothing is repeated: the
     requests made before the pause are in the record.

To do the raise yourself:

    python examples/budgets/budget_agent.py --leave-paused
    durable inbox --database-url sqlite:///budget_agent.db
    durable budget raise research-1 --cost 0.10 --database-url sqlite:///budget_agent.db
    python examples/budgets/budget_agent.py       # resumes research-1 (it is still paused, or raised)

The runs are recorded in `budget_agent.db` in the current directory (or `--database-url`, or env
`DURABLE_DATABASE_URL`). Running the demo again resumes an unfinished run of an earlier invocation,
else starts the next run (research-2, ...); `durable usage --by name` shows what they all cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from typing import Any

from durable_pydantic_ai import DurableAgent
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from durable_core import Budget, Engine, WorkflowStatus

DEFAULT_URL = "sqlite:///budget_agent.db"  # a file in the current directory
AGENT = "researcher"
QUESTION = "When was the first transatlantic telegraph message sent, and how long did it take?"
SEARCHES = 8  # the runaway part: the scripted agent searches this many times before it answers
RESUME_GRACE_SECONDS = 5.0  # how long a resumed run may take to finish before it counts as paused
MODEL = "gpt-4o"  # the name the scripted model reports, so genai-prices can price its usage


def scripted_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Plays a model that keeps searching, then answers; reports usage like a provider does."""
    done = sum(1 for m in messages if m.kind == "response")
    usage = RequestUsage(input_tokens=1200 + 400 * done, output_tokens=150)  # the prompt grows
    if done < SEARCHES:
        query = f"transatlantic telegraph 1858 source {done + 1}"
        return ModelResponse(
            parts=[ToolCallPart("search", {"query": query}, tool_call_id=f"search-{done}")], usage=usage
        )
    answer = (
        "On 16 August 1858 Queen Victoria's 98-word message to President Buchanan crossed the "
        "first transatlantic cable; it took about 16 hours to transmit."
    )
    return ModelResponse(parts=[TextPart(answer)], usage=usage)


def build_agent(max_cost_usd: float) -> DurableAgent[None, str]:
    agent: Agent[None, str] = Agent(
        FunctionModel(scripted_model, model_name=MODEL),
        name=AGENT,
        instructions="Research the question with the search tool, then answer in two sentences.",
    )

    @agent.tool_plain
    def search(query: str) -> str:
        """Search the archive."""
        return f"3 archive results for {query!r}"

    return DurableAgent(agent, budget=Budget(max_cost_usd=max_cost_usd))


def spent(status: WorkflowStatus) -> str:
    usage = status.usage
    if usage is None or not usage.model_calls:
        return "nothing yet"
    cost = f"${usage.cost_usd:.4f}" + (" + unpriced calls" if usage.unpriced else "")
    return f"{usage.model_calls} model requests, {usage.tokens} tokens, {cost}"


def wait_for_pause_or_end(engine: Engine, run_id: str, timeout: float = 60.0) -> WorkflowStatus:
    deadline = time.monotonic() + timeout
    while True:
        found = engine.list_workflows(workflow_ids=[run_id])  # empty until the run has started
        status = found[0] if found else None
        paused = status is not None and status.waiting is not None and status.waiting.kind == "budget"
        if status is not None and (paused or status.status not in ("PENDING", "ENQUEUED")):
            return status
        if time.monotonic() > deadline:
            raise SystemExit(f"{run_id} neither paused nor finished within {timeout:.0f} s")
        time.sleep(0.05)


def resumed(engine: Engine, run_id: str) -> WorkflowStatus:
    """A run of an earlier invocation, resumed by this engine's launch: it continues by itself when its
    budget was raised meanwhile (`durable budget raise`), else it pauses again at the same place."""
    try:
        engine.retrieve_workflow(run_id).get_result(timeout_seconds=RESUME_GRACE_SECONDS)
    except TimeoutError:
        return wait_for_pause_or_end(engine, run_id)  # still paused: nobody raised its budget
    print("   its budget had been raised: it continued where it stopped, without repeating a request")
    return engine.get_workflow_status(run_id)


def next_run_id(engine: Engine) -> str:
    taken = {status.workflow_id for status in engine.list_workflows(name=f"{AGENT}.run")}
    return next(f"research-{n}" for n in range(1, 10_000) if f"research-{n}" not in taken)


def show_inbox(engine: Engine) -> None:
    print("2) the inbox: engine.list_workflows(waiting=True)")
    for status in engine.list_workflows(waiting=True):
        wait = status.waiting
        assert wait is not None
        if wait.kind == "budget":
            print(f"   {status.workflow_id}  kind={wait.kind!r}  paused by its budget: reached {wait.detail}")
            print(f"   {'':{len(status.workflow_id)}}  spent: {spent(status)}")
        else:
            print(f"   {status.workflow_id}  kind={wait.kind!r}  (waiting for something else)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        help=f"where the runs are recorded (default: env DURABLE_DATABASE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument("--budget", type=float, default=0.03, help="max_cost_usd of a new run (default 0.03)")
    parser.add_argument("--raise-to", type=float, default=0.10, help="the raised max_cost_usd (default 0.10)")
    parser.add_argument(
        "--leave-paused",
        action="store_true",
        help="stop once the run is paused: raise it yourself with `durable budget raise`",
    )
    args = parser.parse_args()
    database_url = args.database_url or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_URL
    print(f"database: {database_url}")
    durable_agent = build_agent(args.budget)  # registered before launch: launch resumes its runs
    outcome: dict[str, Any] = {}

    with Engine(database_url) as engine:
        unfinished = engine.list_workflows(name=f"{AGENT}.run", status=["PENDING", "ENQUEUED"])
        runner = None
        if unfinished:
            run_id = unfinished[0].workflow_id
            print(f"run {run_id} of an earlier invocation is unfinished: this engine resumed it")
            status = resumed(engine, run_id)
        else:
            run_id = next_run_id(engine)
            if run_id != "research-1":
                print(f"(earlier runs of this demo are in the database; this one is {run_id})")
            print(f"1) {run_id}: the agent researches under a budget of max_cost_usd=${args.budget}")

            def run() -> None:
                result = asyncio.run(durable_agent.run(QUESTION, run_id=run_id))
                outcome["answer"] = result.output

            runner = threading.Thread(target=run, daemon=True)
            runner.start()
            status = wait_for_pause_or_end(engine, run_id)
        if status.waiting is not None:
            print(f"   {run_id} paused before its next model request: {status.waiting.detail}")
            show_inbox(engine)
            print(f"   (the same from a shell: durable inbox --database-url {database_url})")
            if args.leave_paused:
                print("\nleft paused. The pause is durable: it survives this process. Raise it yourself:")
                print(f"  durable budget raise {run_id} --cost {args.raise_to} --database-url {database_url}")
                print("then run this demo again: it resumes the run.")
                sys.stdout.flush()
                os._exit(0)  # leave the run paused (as a crash would): the next launch resumes it
            print(f"3) engine.raise_budget({run_id!r}, max_cost_usd={args.raise_to})")
            budget = engine.raise_budget(run_id, max_cost_usd=args.raise_to)
            print(f"   budget now {budget}; the run continues where it stopped")
        if runner is not None:
            runner.join(timeout=60)
        engine.retrieve_workflow(run_id).get_result(timeout_seconds=60)
        status = engine.get_workflow_status(run_id)
        if "answer" not in outcome:  # a resumed run: its answer, replayed from the record
            outcome["answer"] = asyncio.run(durable_agent.run(QUESTION, run_id=run_id)).output
        print(f"   {run_id}: {status.status}; it spent {spent(status)}")
        print(f"   answer: {outcome['answer']}")
        totals = engine.usage(group_by="name").get(f"{AGENT}.run")
        if totals is not None:
            print(f"\nevery run of this demo: {totals.model_calls} model requests, ${totals.cost_usd:.4f}")
    print(f"see them: durable workflows list --database-url {database_url}")
    print(f"          durable usage --by workflow --database-url {database_url}")


if __name__ == "__main__":
    main()
