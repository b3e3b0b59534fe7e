"""Graphs shared by the LangGraph adapter tests (offline, deterministic)."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
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


# -- scripted chat models that report usage (usage and budget tests) -----------------------------

MODEL_CALLS: list[str] = []  # what scripted chat models were asked, in call order (this process)


class ScriptedChatModel(BaseChatModel):
    """Answers ``re:<last message>``; reports the usage a provider would, unless `silent`.

    Its `AIMessage` carries ``usage_metadata`` (``input_tokens``/``output_tokens``/``total_tokens``,
    ``input_token_details.cache_read``) and ``response_metadata`` naming the model (and the
    provider when `provider` is set), like LangChain's provider integrations.
    """

    model_name: str = "scripted-chat"
    provider: str | None = None
    input_tokens: int = 10
    output_tokens: int = 5
    cache_read: int = 2
    silent: bool = False
    log: Callable[[str], None] | None = None

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prompt = str(messages[-1].content)
        MODEL_CALLS.append(prompt)
        if self.log is not None:
            self.log(f"model:{prompt}")
        return ChatResult(generations=[ChatGeneration(message=self.answer(prompt))])

    def answer(self, prompt: str) -> AIMessage:
        if self.silent:
            return AIMessage(content=f"re:{prompt}")
        meta: dict[str, Any] = {"model_name": self.model_name}
        if self.provider is not None:
            meta["model_provider"] = self.provider
        return AIMessage(
            content=f"re:{prompt}",
            usage_metadata={
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens,
                "input_token_details": {"cache_read": self.cache_read},
            },
            response_metadata=meta,
        )

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"
