"""Graphs shared by the LangGraph adapter tests (offline, deterministic)."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class ChainState(TypedDict):
    count: int
    items: Annotated[list[str], operator.add]


def chain_builder(n: int = 5, on_node: Callable[[str], None] | None = None) -> StateGraph[Any]:
    """n chained nodes n1..nN, each adding 1 to `count` and its name to `items`."""

    def make(name: str) -> Callable[[ChainState], dict[str, Any]]:
        def node(state: ChainState) -> dict[str, Any]:
            if on_node is not None:
                on_node(name)
            return {"count": state["count"] + 1, "items": [name]}

        node.__name__ = name
        return node

    builder: StateGraph[Any] = StateGraph(ChainState)
    names = [f"n{i}" for i in range(1, n + 1)]
    for name in names:
        builder.add_node(name, make(name))
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder


def approval_builder() -> StateGraph[Any]:
    """draft -> approve (interrupt) -> publish."""

    def draft(state: ChainState) -> dict[str, Any]:
        return {"count": state["count"] + 1, "items": ["draft"]}

    def approve(state: ChainState) -> dict[str, Any]:
        answer = interrupt({"question": "publish?", "count": state["count"]})
        return {"items": [f"approved:{answer}"]}

    def publish(state: ChainState) -> dict[str, Any]:
        return {"count": state["count"] + 1, "items": ["publish"]}

    builder: StateGraph[Any] = StateGraph(ChainState)
    builder.add_node("draft", draft)
    builder.add_node("approve", approve)
    builder.add_node("publish", publish)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "approve")
    builder.add_edge("approve", "publish")
    builder.add_edge("publish", END)
    return builder


FRESH: ChainState = {"count": 0, "items": []}


def cfg(thread_id: str, **configurable: Any) -> Any:
    return {"configurable": {"thread_id": thread_id, **configurable}}
