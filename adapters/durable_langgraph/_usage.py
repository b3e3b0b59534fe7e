"""Model calls inside graph nodes: their usage recorded per call, a run's budget checked before each.

A `DurableGraph` run is one workflow whose graph runs inside ``langgraph.run`` steps (segments).
What a node does is not numbered in the workflow (parallel nodes interleave), so every model
call made in a node is recorded as a step row of its own *outside* the workflow's step sequence
(a negative step id, taken once per call, never replayed by id): its name, where it was made
(``{"node", "task", "call"}``) and, in the step's ``usage`` column, what it consumed. Totals
(`WorkflowStatus.usage`, `engine.usage`) read those rows like any model-call step; a call is
recorded once, when it returns (or fails), before its memo, so a node re-executed after a crash
replays it without counting it again, and a call that was in flight at a crash, whose result
never became durable, is made and counted again (it did reach the provider twice).

Which calls are model calls:

- a memoized step declared one (`durable_langgraph.step(..., model_call=True)`,
  `durable_core.step(..., model_call=True)` called in a node, and `durable_runnable` around a
  chat model): one model call, whatever number of chat-model requests its body makes;
- every other chat-model call a node makes (seen through a LangChain callback handler that
  the run installs for its nodes): recorded as a step named ``langgraph.model``.

Usage comes from the ``usage_metadata`` of the `AIMessage` each chat model returns (LangChain's
callbacks, as `UsageMetadataCallbackHandler` reads it); for a model-call step whose body made no
chat-model call, from the `AIMessage`(s) it returns; what `durable_core.record_usage` reports
inside the step takes precedence. Input tokens include cache reads and writes (LangChain's
convention), cache reads are ``input_token_details["cache_read"]``, cache writes
``["cache_creation"]``. Model and provider are the response's ``model_name`` /
``model_provider`` (else LangChain's ``ls_model_name`` / ``ls_provider``). Cost: priced with
`genai-prices` (when installed) only for a model named by the response itself under a provider
`genai-prices` knows; otherwise unknown. A chat model that reports no usage (a scripted one)
records its model name only; its tokens and cost stay unknown.

Under a budget, each model call is checked before it is made (recorded totals of the budget's
workflow tree plus the calls in flight in this process). A call the budget refuses is never
made: `BudgetReached` (a LangGraph `GraphBubbleUp`, like an `interrupt()`, so sibling nodes
finish and keep their writes) ends the segment, and the workflow body then pauses durably in a
``"budget"`` wait (or fails with `BudgetExceeded`); once `engine.raise_budget` lets it continue,
the graph resumes from its last checkpoint and the refused node runs again (its memoized calls
replay).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Generator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook
from langgraph.errors import GraphBubbleUp

from durable_core import Usage
from durable_core import price_usd as core_price_usd
from durable_core.extend import RunningWorkflow, UnsequencedModelCall, collect_usage, running_workflow

__all__ = [
    "MODEL_STEP",
    "BudgetReached",
    "ModelCall",
    "begin_model_call",
    "node_usage",
    "price_usd",
    "running_workflow",
]

MODEL_STEP = "langgraph.model"  # a chat-model call made in a node outside any model-call step


class BudgetReached(GraphBubbleUp):
    """The run's budget refuses a model call: the segment ends before the call is made (internal).

    A `GraphBubbleUp`, so LangGraph neither retries the node nor records it as failed, and lets
    the node's parallel siblings finish. A node that catches `Exception` around a model call
    would swallow it (as it would swallow `interrupt()`); let it propagate.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- budget check and the record of one model call ------------------------------------------------


def begin_model_call(run: RunningWorkflow) -> ModelCall:
    """Check the budget (raise `BudgetReached`) and count the call in flight until it is recorded."""
    return ModelCall(run.begin_model_call(BudgetReached))


class ModelCall:
    """A model call in flight: recorded (with its usage) once, outside the workflow's step sequence,
    then released from the in-flight count."""

    def __init__(self, call: UnsequencedModelCall) -> None:
        self._call = call

    def record(
        self, name: str, where: dict[str, Any], usages: list[Usage], error: BaseException | None = None
    ) -> None:
        self._call.record(name, value=where, error=error, usages=usages)

    def record_failure(self, name: str, where: dict[str, Any], usage: StepUsage, error: Exception) -> None:
        """The step's body raised. An `interrupt()` or a budget refusal inside it (a `GraphBubbleUp`)
        is no failed model call: recorded only for what reached a model before it, else released."""
        if isinstance(error, GraphBubbleUp):
            usages = usage.usages(None)
            if usage.reported or usage.observed:
                self.record(name, where, usages)
            else:
                self.abandon()
            return
        self.record(name, where, usage.usages(None), error)

    def abandon(self) -> None:
        """The call never completed here (the process is stopping): release it unrecorded."""
        self._call.abandon()


def where_of(task_ns: str, idx: int | None = None) -> dict[str, Any]:
    """The node, task namespace and call index a model-call row names."""
    last = task_ns.rsplit("|", maxsplit=1)[-1]
    node = last.split(":")[0] if last else None
    where: dict[str, Any] = {"node": node, "task": task_ns}
    if idx is not None:
        where["call"] = idx
    return where


# -- usage of chat-model responses --------------------------------------------------------------


def usage_of_message(message: AIMessage, model: str | None = None, provider: str | None = None) -> Usage:
    """One chat-model response's usage, from its `usage_metadata` and `response_metadata`."""
    meta: dict[str, Any] = dict(message.response_metadata or {})
    named_model = meta.get("model_name") or meta.get("model")
    named_provider = meta.get("model_provider")
    model = named_model if isinstance(named_model, str) and named_model else model
    provider = named_provider if isinstance(named_provider, str) and named_provider else provider
    metadata = message.usage_metadata
    if not metadata:
        return Usage(model=model, provider=provider)
    details: dict[str, Any] = dict(metadata.get("input_token_details") or {})
    usage = Usage(
        model=model,
        provider=provider,
        input_tokens=metadata.get("input_tokens"),
        output_tokens=metadata.get("output_tokens"),
        cache_read_tokens=details.get("cache_read"),
        cache_write_tokens=details.get("cache_creation"),
    )
    if not named_model:  # only a model the response itself names is priced
        return usage
    return replace(usage, cost_usd=price_usd(usage))


def _usages_of_result(response: LLMResult, model: str | None, provider: str | None) -> list[Usage]:
    usages: list[Usage] = []
    for generations in response.generations:
        first = generations[0] if generations else None
        if isinstance(first, ChatGeneration) and isinstance(first.message, AIMessage):
            usages.append(usage_of_message(first.message, model, provider))
    return usages or [Usage(model=model, provider=provider)]


def _messages_in(value: Any) -> list[AIMessage]:
    """AIMessages a step returned: itself, in a list, or under a ``"messages"`` key."""
    if isinstance(value, AIMessage):
        return [value]
    if isinstance(value, dict):
        return _messages_in(value.get("messages"))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    if isinstance(value, (list, tuple)):
        return [item for item in value if isinstance(item, AIMessage)]  # pyright: ignore[reportUnknownVariableType]
    return []


@dataclass
class _Call:
    model: str | None
    provider: str | None
    where: dict[str, Any]
    live: ModelCall | None = None


@dataclass
class StepUsage:
    """What one model-call step's body consumed: reported, seen in callbacks, or returned."""

    reported: list[Usage] = field(default_factory=list[Usage])  # durable_core.record_usage
    observed: list[Usage] = field(default_factory=list[Usage])  # chat-model callbacks
    _calls: dict[uuid.UUID, tuple[str | None, str | None]] = field(
        default_factory=dict[uuid.UUID, tuple[str | None, str | None]]
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, run_id: uuid.UUID, model: str | None, provider: str | None) -> None:
        with self._lock:
            self._calls[run_id] = (model, provider)

    def ended(self, run_id: uuid.UUID, response: LLMResult | None) -> None:
        with self._lock:
            model, provider = self._calls.pop(run_id, (None, None))
        usages = (
            _usages_of_result(response, model, provider)
            if response is not None
            else [Usage(model=model, provider=provider)]
        )
        with self._lock:
            self.observed.extend(usages)

    def usages(self, result: Any) -> list[Usage]:
        if self.reported:
            return list(self.reported)
        if self.observed:
            return list(self.observed)
        return [usage_of_message(message) for message in _messages_in(result)]

    @contextlib.contextmanager
    def active(self) -> Generator[StepUsage]:
        token = _step.set(self)
        try:
            with collect_usage(self.reported):  # durable_core.record_usage in the body
                yield self
        finally:
            _step.reset(token)


_step: ContextVar[StepUsage | None] = ContextVar("durable_langgraph_model_step", default=None)


# -- the callback handler of a segment ------------------------------------------------------------


class NodeUsageHandler(BaseCallbackHandler):
    """Sees every chat-model call made while a segment runs (installed for it by `node_usage`).

    Inside a model-call step it feeds that step's usage; elsewhere each call is a model call of
    its own: budget-checked at its start (the refusal propagates: `raise_error`), recorded at its end.
    """

    raise_error = True

    @property
    def ignore_chain(self) -> bool:
        return True

    @property
    def ignore_agent(self) -> bool:
        return True

    @property
    def ignore_retriever(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True

    def __init__(self, run: RunningWorkflow) -> None:
        super().__init__()
        self.run = run
        self._lock = threading.Lock()
        self._calls: dict[uuid.UUID, _Call] = {}

    def _start(self, run_id: uuid.UUID, metadata: dict[str, Any] | None) -> None:
        meta = metadata or {}
        model = meta.get("ls_model_name")
        provider = meta.get("ls_provider")
        model = model if isinstance(model, str) else None
        provider = provider if isinstance(provider, str) else None
        step = _step.get()
        if step is not None:
            step.started(run_id, model, provider)
            return
        task_ns = meta.get("langgraph_checkpoint_ns")
        where = where_of(task_ns) if isinstance(task_ns, str) else {"node": meta.get("langgraph_node")}
        call = _Call(model, provider, where, begin_model_call(self.run))
        with self._lock:
            self._calls[run_id] = call

    def _end(self, run_id: uuid.UUID, response: LLMResult | None, error: BaseException | None) -> None:
        step = _step.get()
        if step is not None:
            step.ended(run_id, response)
            return
        with self._lock:
            call = self._calls.pop(run_id, None)
        if call is None or call.live is None:
            return
        usages = (
            _usages_of_result(response, call.model, call.provider)
            if response is not None
            else [Usage(model=call.model, provider=call.provider)]
        )
        call.live.record(MODEL_STEP, call.where, usages, error)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: uuid.UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, metadata)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: uuid.UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, metadata)

    def on_llm_end(self, response: LLMResult, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        self._end(run_id, response, None)

    def on_llm_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        self._end(run_id, None, error if isinstance(error, Exception) else None)

    def close(self) -> None:
        """The segment ended: release calls that never reported an end."""
        with self._lock:
            calls, self._calls = list(self._calls.values()), {}
        for call in calls:
            if call.live is not None:
                call.live.abandon()


_handler: ContextVar[NodeUsageHandler | None] = ContextVar("durable_langgraph_usage_handler", default=None)
register_configure_hook(_handler, inheritable=True)


class _QuietRefusals(logging.Filter):
    """LangChain logs every exception a callback raises as a warning; a budget refusal is no error."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any("BudgetReached(" in str(arg) for arg in args)


logging.getLogger("langchain_core.callbacks.manager").addFilter(_QuietRefusals())


@contextlib.contextmanager
def node_usage(run: RunningWorkflow | None) -> Generator[None]:
    """Install the usage handler for every LangChain run started in this context (a segment)."""
    if run is None:
        yield
        return
    handler = NodeUsageHandler(run)
    token = _handler.set(handler)
    try:
        yield
    finally:
        _handler.reset(token)
        handler.close()


# -- price -------------------------------------------------------------------------------------

# LangChain's provider names (``model_provider`` / ``ls_provider``) -> genai-prices provider ids
_GENAI_PROVIDERS = {
    "openai": "openai",
    "azure": "azure",
    "azure_openai": "azure",
    "anthropic": "anthropic",
    "google_genai": "google",
    "google_vertexai": "google",
    "google_anthropic_vertex": "anthropic",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "amazon_bedrock": "aws",
    "groq": "groq",
    "mistralai": "mistral",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "cohere": "cohere",
    "fireworks": "fireworks",
    "together": "together",
    "cerebras": "cerebras",
    "openrouter": "openrouter",
    "perplexity": "perplexity",
}


def price_usd(usage: Usage) -> float | None:
    """The cost of one call by `genai-prices`, or None when the provider, model or tokens are unknown."""
    provider = _GENAI_PROVIDERS.get((usage.provider or "").lower())
    if provider is None or not usage.model:
        return None
    return core_price_usd(usage, provider)
