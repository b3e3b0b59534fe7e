"""A process running a 3-node DurableGraph whose nodes call a scripted chat model that reports usage.

argv: database_url log_path phase

crash:   invoke on thread "u"; node n2 calls the model directly, then through `durable_runnable`
         (a memoized model-call step), then the process dies (os._exit), like kill -9.
pause:   invoke on thread "b" under Budget(max_model_calls=2): the run pauses before n3's call
         and this process blocks in invoke until the test kills it.
recover: build the same graph and DurableGraph, launch the engine (which resumes the unfinished
         run by itself), wait for it and print {"workflow_id", "state", "usage"} as JSON.
Every model call is appended to log_path as "<phase>:model:<prompt>".
"""

from __future__ import annotations

import json
import operator
import os
import sys
from pathlib import Path
from typing import Annotated, Any

from durable_langgraph import DurableCheckpointer, DurableGraph, durable_runnable
from langgraph.graph import END, START, StateGraph
from lg_support import ScriptedChatModel, cfg
from typing_extensions import TypedDict

from durable_core import Budget, Engine

CRASH_EXIT_CODE = 17


class ItemsState(TypedDict):
    items: Annotated[list[str], operator.add]


def build(engine: Engine, log: Path, phase: str) -> DurableGraph:
    def note(entry: str) -> None:
        with log.open("a") as f:
            f.write(f"{phase}:{entry}\n")
            f.flush()
            os.fsync(f.fileno())

    model = ScriptedChatModel(log=note)
    memoized = durable_runnable(model, name="n2.model")

    def n1(state: ItemsState) -> dict[str, Any]:
        return {"items": [str(model.invoke("n1").content)]}

    def n2(state: ItemsState) -> dict[str, Any]:
        direct = str(model.invoke("n2-direct").content)
        remembered = str(memoized.invoke("n2-memo").content)
        if phase == "crash":
            os._exit(CRASH_EXIT_CODE)
        return {"items": [direct, remembered]}

    def n3(state: ItemsState) -> dict[str, Any]:
        return {"items": [str(model.invoke("n3").content)]}

    builder: StateGraph[Any] = StateGraph(ItemsState)
    builder.add_node("n1", n1)
    builder.add_node("n2", n2)
    builder.add_node("n3", n3)
    builder.add_edge(START, "n1")
    builder.add_edge("n1", "n2")
    builder.add_edge("n2", "n3")
    builder.add_edge("n3", END)
    graph = builder.compile(checkpointer=DurableCheckpointer(engine))
    budget = Budget(max_model_calls=3) if phase == "pause" else None
    return DurableGraph(graph, name="usage", budget=budget)  # registered before launch


def main() -> None:
    database_url, log_path, phase = sys.argv[1:4]
    engine = Engine(database_url, executor_id="lg-usage-test", heartbeat_seconds=0.5, lease_seconds=5.0)
    durable = build(engine, Path(log_path), phase)
    engine.launch()
    try:
        if phase == "crash":
            durable.invoke({"items": []}, cfg("u"))
            raise SystemExit("the crash did not happen")
        if phase == "pause":
            durable.invoke({"items": []}, cfg("b"))
            raise SystemExit("the run was not paused")
        [run] = engine.list_workflows(name=[durable.workflow_name])
        engine.retrieve_workflow(run.workflow_id).get_result(timeout_seconds=60)
        status = engine.get_workflow_status(run.workflow_id)
        usage = status.usage
        assert usage is not None
        print(
            json.dumps(
                {
                    "workflow_id": run.workflow_id,
                    "state": durable.get_state(cfg(str(run.inputs["args"][0]))).values,
                    "usage": {"model_calls": usage.model_calls, "tokens": usage.tokens},
                }
            ),
            flush=True,
        )
    finally:
        engine.shutdown()


if __name__ == "__main__":
    main()
