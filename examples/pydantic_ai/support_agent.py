"""A durable support agent: tools, a refund that needs human approval, a crash, and a resume.

Offline by default (a scripted `FunctionModel`), so it runs anywhere:

    python examples/pydantic_ai/support_agent.py

What happens:
  1. A worker process starts ticket `ticket-42`: the model looks up the order (a tool, one step),
     then asks to refund it. The refund tool needs approval, so the run waits durably.
  2. The worker is killed while it waits (a crash: nothing is cleaned up).
  3. A support lead approves with `engine.send(...)`; the run is still waiting in the database.
  4. A new worker process launches the engine, which resumes the ticket: recorded model requests and
     tools are replayed, not repeated; the refund runs once, and the model writes the reply.

With a real model (its API key set in the environment):

    python examples/pydantic_ai/support_agent.py --model openai:gpt-5-mini

The runs are recorded in `support_agent.db` in the current directory (or `--database-url`, or env
`DURABLE_DATABASE_URL`): `durable workflows show ticket-42 --database-url sqlite:///support_agent.db`
shows every step afterwards. Running the demo again uses the next free ticket id (ticket-42-2, ...),
so it plays out the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time

from durable_pydantic_ai import DurableAgent
from pydantic import TypeAdapter
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import DeferredToolResults

from durable_core import Engine

TICKET = "ticket-42"
DEFAULT_URL = "sqlite:///support_agent.db"  # a file in the current directory
ORDERS: dict[str, dict[str, object]] = {
    "A-1001": {"item": "noise-cancelling headphones", "total": 199.0, "status": "arrived broken"}
}


def scripted_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Plays the model offline: look up the order, ask for the refund, then answer."""
    returns = [p for m in messages if m.kind == "request" for p in m.parts if isinstance(p, ToolReturnPart)]
    if not returns:
        return ModelResponse(
            parts=[ToolCallPart("lookup_order", {"order_id": "A-1001"}, tool_call_id="lookup")]
        )
    if len(returns) == 1:
        return ModelResponse(
            parts=[ToolCallPart("refund", {"order_id": "A-1001", "amount": 199.0}, tool_call_id="refund")]
        )
    return ModelResponse(parts=[TextPart(f"Sorry about the headphones! {returns[-1].content}.")])


def build_agent(model: str | None) -> DurableAgent[None, str]:
    # A plain `str` output type: a refund that needs approval makes the run wait inside itself,
    # durably (with `DeferredToolRequests` in the output type it would return them instead).
    agent: Agent[None, str] = Agent(
        model or FunctionModel(scripted_model),
        name="support",
        instructions="You are a support agent. Look orders up before refunding them.",
    )

    @agent.tool_plain
    def lookup_order(order_id: str) -> dict[str, object]:
        """Look an order up by id."""
        print(f"    [tool] lookup_order({order_id})", flush=True)
        return ORDERS.get(order_id, {"error": "no such order"})

    @agent.tool_plain(requires_approval=True)
    def refund(order_id: str, amount: float) -> str:
        """Refund an order; a human approves every refund."""
        print(f"    [tool] refund({order_id}, {amount}) -- money moves exactly once", flush=True)
        return f"Refunded {amount:.2f} for order {order_id}"

    return DurableAgent(agent)


def worker(database_url: str, model: str | None, phase: str, ticket: str) -> None:
    """One worker process: register the agent, launch the engine (which resumes unfinished runs), run."""
    durable_agent = build_agent(model)
    with Engine(database_url, executor_id=f"worker-{phase}"):
        print(f"  worker ({phase}, pid {os.getpid()}) running {ticket}", flush=True)
        result = asyncio.run(durable_agent.run("My headphones (order A-1001) arrived broken.", run_id=ticket))
        print(f"  worker ({phase}) finished: {result.output}", flush=True)


def free_ticket(database_url: str) -> str:
    """ticket-42, or the next id no earlier run of this demo used in this database."""
    with Engine(database_url, app_version="support-desk") as desk:
        for n in range(1, 10_000):
            ticket = TICKET if n == 1 else f"{TICKET}-{n}"
            if not desk.list_workflows(workflow_ids=[ticket]):
                return ticket
    raise SystemExit("no free ticket id")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a real model, provider:name (default: offline scripted model)")
    parser.add_argument(
        "--database-url",
        help=f"where the runs are recorded (default: env DURABLE_DATABASE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--ticket", help=argparse.SUPPRESS)
    args = parser.parse_args()
    database_url = args.database_url or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_URL
    if args.worker:
        worker(database_url, args.model, args.worker, args.ticket)
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr] - in order with the workers
    print(f"database: {database_url}")
    ticket = free_ticket(database_url)
    if ticket != TICKET:
        print(f"(earlier runs of this demo are in the database; this one is {ticket})")

    def start(phase: str) -> subprocess.Popen[str]:
        command = [
            sys.executable,
            __file__,
            "--worker",
            phase,
            "--ticket",
            ticket,
            "--database-url",
            database_url,
        ]
        if args.model:
            command += ["--model", args.model]
        return subprocess.Popen(command, text=True)

    print("1. a worker starts the ticket")
    first = start("first")
    with Engine(database_url, app_version="support-desk") as desk:  # reads and sends; never runs tickets
        while True:
            waiting = {w.workflow_id: w for w in desk.list_workflows(waiting=True)}
            if ticket in waiting:
                break
            if first.poll() is not None:
                sys.exit("the worker ended before asking for approval")
            time.sleep(0.1)
        pending = desk.get_event(ticket, "deferred_tool_requests", timeout_seconds=5)
        print(f"   waiting for approval of: {[c['tool_name'] for c in pending['approvals']]}")
        print("2. the worker crashes (SIGKILL) while the ticket waits")
        first.send_signal(signal.SIGKILL)
        first.wait()
        print("3. a support lead approves the refund")
        approval = DeferredToolResults(approvals={c["tool_call_id"]: True for c in pending["approvals"]})
        wait = waiting[ticket].waiting
        assert wait is not None
        # the topic to answer on is the one the run shows it waits on (None: the default topic)
        desk.send(
            ticket, TypeAdapter(DeferredToolResults).dump_python(approval, mode="json"), topic=wait.topic
        )
    print("4. a new worker resumes the ticket")
    second = start("second")
    second.wait()
    with Engine(database_url, app_version="support-desk") as desk:
        print("\nrecorded steps of", ticket)
        for step in desk.list_steps(ticket):
            print(f"  {step.step_id:>2}  {step.name}")
    print(f"\nsee them again: durable workflows show {ticket} --database-url {database_url}")


if __name__ == "__main__":
    main()
