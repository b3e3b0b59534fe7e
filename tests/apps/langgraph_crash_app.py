"""A process running a 5-node DurableGraph; run twice by test_langgraph_crash.py.

argv: database_url log_path phase ('crash' or 'resume') flavour ('sync' or 'async')

crash:  invoke the graph; node n3 calls a durable step (the "model"), then the process dies (os._exit).
resume: build the same graph and DurableGraph, launch the engine (which resumes the thread by itself),
        wait for the run to finish and print the thread's final state as JSON. No invoke.
Env LEASE_SECONDS shortens the executor lease (for the takeover test).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

from durable_langgraph import DurableCheckpointer, DurableGraph
from langgraph.graph import END, START, StateGraph
from lg_support import FRESH, ChainState, cfg

import durable_core
from durable_core import Engine

CRASH_EXIT_CODE = 17
NAMES = ["n1", "n2", "n3", "n4", "n5"]


def build(engine: Engine, log: Path, phase: str) -> DurableGraph:
    """The graph of every phase: each node logs itself; n3 calls the model step, then crashes in 'crash'."""

    def note(entry: str) -> None:
        with log.open("a") as f:
            f.write(f"{phase}:{entry}\n")
            f.flush()
            os.fsync(f.fileno())

    @durable_core.step(name="model")
    def call_model(prompt: str) -> str:
        note(f"model:{prompt}")
        return f"answer to {prompt}"

    def make(name: str) -> Any:
        def node(state: ChainState) -> dict[str, Any]:
            note(f"node:{name}")
            items = [name]
            if name == "n3":
                items.append(call_model(name))
                if phase == "crash":
                    os._exit(CRASH_EXIT_CODE)  # like kill -9: nothing flushed, nothing cleaned up
            return {"count": state["count"] + 1, "items": items}

        return node

    builder: StateGraph[Any] = StateGraph(ChainState)
    for name in NAMES:
        builder.add_node(name, make(name))
    builder.add_edge(START, "n1")
    for a, b in itertools.pairwise(NAMES):
        builder.add_edge(a, b)
    builder.add_edge("n5", END)
    graph = builder.compile(checkpointer=DurableCheckpointer(engine))
    return DurableGraph(graph, name="crashy")  # registered before launch, like any workflow


def finish(engine: Engine, durable: DurableGraph) -> dict[str, Any]:
    """Wait for the (resumed) run of thread-1 and report it."""
    runs = engine.list_workflows(name=[durable.workflow_name, durable.workflow_name + ":async"])
    assert len(runs) == 1, runs
    outcome = engine.retrieve_workflow(runs[0].workflow_id).get_result(timeout_seconds=60)
    state = durable.get_state(cfg("thread-1")).values
    return {"outcome": outcome, "state": state, "workflow_id": runs[0].workflow_id}


def main() -> None:
    database_url, log_path, phase, flavour = sys.argv[1:5]
    lease = float(os.environ.get("LEASE_SECONDS", "30"))
    engine = Engine(
        database_url,
        executor_id="langgraph-crash-test",
        lease_seconds=lease,
        heartbeat_seconds=min(5.0, lease / 4),
    )
    durable = build(engine, Path(log_path), phase)
    engine.launch()
    try:
        if phase == "crash":
            if flavour == "async":
                asyncio.run(durable.ainvoke(FRESH, cfg("thread-1")))
            else:
                durable.invoke(FRESH, cfg("thread-1"))
            raise SystemExit("the crash did not happen")
        print(json.dumps(finish(engine, durable)))
    finally:
        engine.shutdown()


if __name__ == "__main__":
    main()
