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
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from durable_pydantic_ai import DurableAgent
from pydantic import TypeAdapter
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults

from durable_core import Engine

TICKET = "ticket-42"
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


def build_agent(model: str | None) -> DurableAgent[None, object]:
    agent: Agent[None, object] = Agent(
        model or FunctionModel(scripted_model),
        name="support",
        instructions="You are a support agent. Look orders up before refunding them.",
        output_type=[str, DeferredToolRequests],
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


def worker(database_url: str, model: str | None, phase: str) -> None:
    """One worker process: register the agent, launch the engine (which resumes unfinished runs), run."""
    durable_agent = build_agent(model)
    with Engine(database_url, executor_id=f"worker-{phase}"):
        print(f"  worker ({phase}, pid {os.getpid()}) running {TICKET}", flush=True)
        result = asyncio.run(durable_agent.run("My headphones (order A-1001) arrived broken.", run_id=TICKET))
        print(f"  worker ({phase}) finished: {result.output}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a real model, provider:name (default: offline scripted model)")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    database_url = args.db or f"sqlite:///{Path(tempfile.mkdtemp()) / 'support.db'}"
    if args.worker:
        worker(database_url, args.model, args.worker)
        return

    def start(phase: str) -> subprocess.Popen[str]:
        command = [sys.executable, __file__, "--worker", phase, "--db", database_url]
        if args.model:
            command += ["--model", args.model]
        return subprocess.Popen(command, text=True)

    print(f"database: {database_url}\n1. a worker starts the ticket")
    first = start("first")
    with Engine(database_url, app_version="support-desk") as desk:  # reads and sends; never runs tickets
        while not any(w.workflow_id == TICKET for w in desk.list_workflows(waiting=True)):
            if first.poll() is not None:
                sys.exit("the worker ended before asking for approval")
            time.sleep(0.1)
        pending = desk.get_event(TICKET, "deferred_tool_requests", timeout_seconds=5)
        print(f"   waiting for approval of: {[c['tool_name'] for c in pending['approvals']]}")
        print("2. the worker crashes (SIGKILL) while the ticket waits")
        first.send_signal(signal.SIGKILL)
        first.wait()
        print("3. a support lead approves the refund")
        approval = DeferredToolResults(approvals={c["tool_call_id"]: True for c in pending["approvals"]})
        desk.send(TICKET, TypeAdapter(DeferredToolResults).dump_python(approval, mode="json"))
    print("4. a new worker resumes the ticket")
    second = start("second")
    second.wait()
    with Engine(database_url, app_version="support-desk") as desk:
        print("\nrecorded steps of", TICKET)
        for step in desk.list_steps(TICKET):
            print(f"  {step.step_id:>2}  {step.name}")


if __name__ == "__main__":
    main()
