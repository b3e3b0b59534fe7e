"""`durable workflows show` on a LangGraph run prints the graph's values, not base64 msgpack.

`DurableGraph` stores graph inputs and `Command`s as the checkpointer serializer's bytes in an
envelope; the CLI (which has no graph) decodes them with LangGraph's default serializer.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

import pytest
from cli_app import run_cli

from durable_core import Engine, workflow_options

pytest.importorskip("durable_langgraph")


class _State(TypedDict, total=False):
    messages: list[Any]
    verdict: str


def test_show_decodes_langgraph_values(engine: Engine) -> None:
    from durable_langgraph import DurableCheckpointer, DurableGraph
    from langchain_core.messages import HumanMessage
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    def review(state: _State) -> _State:
        return {"verdict": f"answered {interrupt('publish the summary?')}"}

    builder: StateGraph[Any] = StateGraph(_State)
    builder.add_node("review", review)
    builder.add_edge(START, "review")
    builder.add_edge("review", END)
    graph = DurableGraph(builder.compile(checkpointer=DurableCheckpointer(engine)), name="cli-show")
    config: Any = {"configurable": {"thread_id": "thread-7"}}
    with workflow_options(workflow_id="lg-show"):
        graph.invoke({"messages": [HumanMessage("summarize the tides report")]}, config)
    graph.invoke(Command(resume={"approved": True, "by": "ada"}), config)
    assert engine.get_workflow_status("lg-show").status == "SUCCESS"

    plain, as_json, recv_step = (
        run_cli(engine.database_url, "workflows", "show", "lg-show"),
        run_cli(engine.database_url, "workflows", "show", "lg-show", "--json"),
        run_cli(engine.database_url, "workflows", "show", "lg-show", "--step", "4"),
    )
    for result in (plain, as_json, recv_step):
        assert result.returncode == 0, result.stderr
        assert "__durable_langgraph__" not in result.stdout and "msgpack" not in result.stdout
    assert "summarize the tides report" in plain.stdout
    record = json.loads(as_json.stdout)
    graph_input = record["workflow"]["inputs"]["args"][1]["input"]
    assert graph_input["messages"][0]["content"] == "summarize the tides report"
    assert graph_input["messages"][0]["type"] == "human"
    steps = {s["name"]: s for s in record["steps"]}
    assert "durable.recv" in steps
    assert "ada" in json.dumps(steps["durable.recv"]["output"])  # the resume Command, readable
    assert "durable.recv" in recv_step.stdout and "ada" in recv_step.stdout
