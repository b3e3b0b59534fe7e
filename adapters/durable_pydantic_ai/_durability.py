"""The `Durability` capability: pydantic-ai's durability toolkit bound to `durable_core`."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from contextlib import nullcontext
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic_ai.agent import AbstractAgent, EventStreamHandler
from pydantic_ai.capabilities import AbstractCapability, CapabilityOrdering, RequestInput
from pydantic_ai.capabilities.abstract import WrapModelRequestHandler, WrapRunHandler
from pydantic_ai.durable_exec import (
    BaseDurabilityCapability,
    DurabilityEngineSpec,
    conversation_id_from_run_id,
    external_event_scope,
    replay_scope,
)
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelResponse
from pydantic_ai.models import Model, ModelRequestContext
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT, DeferredToolRequests, DeferredToolResults, RunContext
from pydantic_ai.toolsets import AbstractToolset

from durable_core import current_workflow_id, current_workflow_started_at, execution_state, in_workflow
from durable_core.errors import WorkflowCancelled
from durable_core.extend import in_step_body, workflow_steps_here

from ._codec import FAITHFUL_JSON_CODEC
from ._events import current_run_handler, fan_out
from ._live_stream import LiveStreamModel, current_sink
from ._steps import StepBackend, StepConfig, in_step
from ._toolsets import refuse_executing_toolsets
from ._waits import StepEventWaiter, run_allows_deferred_output, wait_for_deferred_tool_results

__all__ = ["ENGINE_NAME", "REALTIME_REFUSAL", "Durability", "refuse_realtime_here"]

ENGINE_NAME = "durable-agents"

_STEP_KEYS = frozenset(StepConfig.__annotations__)

_RUN_BEGAN_DURABLE: ContextVar[bool] = ContextVar("durable_pydantic_ai_run_began_durable", default=False)
"""Whether the agent run being executed here began in workflow code (set by `Durability.wrap_run`)."""

_RUNS_KEY = "durable_pydantic_ai.runs"
"""Key of the agent-run count in `durable_core.execution_state()`, for replay-stable default run ids."""


REALTIME_REFUSAL = (
    "A realtime session (`agent.realtime(...).session()`, `.answer_webrtc_offer()`, "
    "`.create_client_secret()`) cannot be used inside a durable-agents workflow: it runs a long-lived, "
    "non-deterministic connection that no step can record or replay. Open it outside the workflow, "
    "or inside a step."
)


def refuse_realtime_here() -> None:
    """Raise `UserError` in workflow code (outside any step), where a realtime session cannot run."""
    if in_workflow() and not in_step():
        raise UserError(REALTIME_REFUSAL)


def _begins_durably() -> bool:
    """Whether an agent run that begins here is durable: in workflow code, outside any step body.

    What a run decides as it starts (its default run id, deadline, conversation id, whether its
    runtime toolsets are refused) follows this; its operations follow `Durability.in_durable_context`.
    """
    return in_workflow() and not in_step()


def _serialization_failure(error: Exception) -> BaseException:
    return UserError(
        "A model response or tool result could not be recorded as JSON, so the step cannot be "
        f"checkpointed: {error}. Return JSON-friendly values from tools (str, numbers, lists, dicts, "
        'pydantic models or dataclasses), or mark a tool `metadata={"durable": False}` to run it '
        "inline without a checkpoint."
    )


class Durability(BaseDurabilityCapability[AgentDepsT]):
    """Makes every model request and every tool call of an agent run a `durable_core` step.

    Use it when you write the workflow yourself:

    ```python
    agent = Agent(model, name='support', capabilities=[Durability()])

    @workflow()
    async def handle_ticket(text: str) -> str:
        deps = build_deps()          # deterministic, rebuilt on replay
        return (await agent.run(text, deps=deps)).output
    ```

    Inside a workflow each model request, each tool call (function, MCP and dynamic toolsets)
    and each MCP/dynamic tool discovery is one step, numbered in call order; a replay returns
    recorded outputs without calling the model or the tool again. Parallel tool calls take
    their step ids in the order the model asked for them. Outside a workflow, and inside a
    step (an agent run from a tool), the capability is transparent.

    Event handlers: the capability's `event_stream_handler` runs inside steps and sees live events
    only (model events inside model-request steps, each tool event as an `event_stream_handler`
    step). A per-run `agent.run(event_stream_handler=...)` runs in workflow code, as pydantic-ai
    documents, so a replay after a crash delivers the replayed steps' events to it again. A per-run
    handler that is itself a `@step` is recorded as one; the model requests and tool calls it pulls
    through its stream stay steps of the workflow, each recorded after the handler step that pulled
    it (an agent run the handler starts in its body is plain, part of the handler's step).
    `DurableAgent` runs handle a per-run handler differently; see there.

    Streamed model requests (`run_stream`, `iter` node streams, a per-run handler) reach the run as
    the model produces them: the request's step runs in a task of this process and passes each
    event on live; the response the run keeps is the step's record (see `_live_stream`).

    Per-run toolsets that execute tools (`FunctionToolset`, `MCPToolset`, `DynamicToolset`, passed
    to `run(toolsets=...)` or contributed by a capability passed per run) are refused inside a
    workflow with a `UserError`: their calls would not be steps. Non-executing ones such as
    `ExternalToolset` are fine. Realtime sessions are refused inside a workflow too.

    Human in the loop: a run whose output type includes `DeferredToolRequests` returns them as its
    output, as a plain agent's does. In-run waits are durable `recv` waits (see
    `WorkflowStatus.waiting` for the topic to answer on): `RequestInput` and `wait_for_external_event`,
    and deferred tool calls of a run whose output type lacks `DeferredToolRequests`, which this
    capability waits for (the JSON form of `DeferredToolResults`, on the run's default topic).

    Args:
        models: Extra models a run may switch to with `run(model=...)`, by key.
        event_stream_handler: Handler that runs inside model-request steps (live events only).
        name: Name used in step names; defaults to the agent's `name`.
        model_step_config: Retry settings for model-request steps.
        tool_step_config: Retry settings for tool steps (tool metadata `durable` overrides it).
        deferred_tool_timeout_seconds: How long a run waits for deferred tool results it cannot
            return (None: no limit); after it, approvals are denied and external calls fail.
    """

    engine_spec = DurabilityEngineSpec(
        engine_name=ENGINE_NAME,
        durable_unit_noun="step",
        durable_unit_plural="steps",
        durable_container_noun="workflow",
        codec=FAITHFUL_JSON_CODEC,
        serialization_failure=_serialization_failure,
        wrapped_toolset_kinds=frozenset({"function", "mcp", "dynamic"}),
        toolset_lifecycles={
            "function": "enter-always",
            "mcp": "enter-in-durable-unit",
            "dynamic": "enter-never",
        },
        tool_call_result_upgrade_lenient=False,
        journal_discovery=True,
        # Step ids are taken synchronously when a step is called, and pydantic-ai starts parallel
        # tool calls in the model's order, so parallel tools number deterministically.
        sequential_tools_in_durable_context=False,
        tool_config_key="durable",
        cancellation_error_types=(WorkflowCancelled,),
    )

    def __init__(
        self,
        *,
        models: Mapping[str, Model] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        name: str | None = None,
        model_step_config: StepConfig | None = None,
        tool_step_config: StepConfig | None = None,
        deferred_tool_timeout_seconds: float | None = None,
    ) -> None:
        super().__init__(models=models, event_stream_handler=event_stream_handler, name=name)
        self._model_step_config: StepConfig = model_step_config or {}
        self._tool_step_config: StepConfig = tool_step_config or {}
        self._deferred_timeout = deferred_tool_timeout_seconds
        self._backend: StepBackend | None = None
        self._bound_for: (
            tuple[
                weakref.ReferenceType[AbstractAgent[AgentDepsT, Any]],
                tuple[Any, ...],
                AbstractCapability[AgentDepsT],
            ]
            | None
        ) = None

    def for_agent(self, agent: AbstractAgent[AgentDepsT, Any]) -> AbstractCapability[AgentDepsT]:
        """The copy bound to `agent`, built once per agent (and again if its toolsets or model change).

        Pydantic AI binds a per-run capability on every run (copying it, wrapping the agent's
        toolsets, collecting durable operations); a bound copy holds no per-run state (it is what
        an agent-level `capabilities=[Durability()]` shares across runs), so it is reused.
        """
        key = (id(agent), agent.model, tuple(id(toolset) for toolset in agent.toolsets))
        cached = self._bound_for
        if cached is not None and cached[0]() is agent and cached[1] == key:
            return cached[2]
        bound = super().for_agent(agent)
        try:
            self._bound_for = (weakref.ref(agent), key, bound)
        except TypeError:  # an agent type without weak references: bind every time
            self._bound_for = None
        return bound

    def get_wrapper_toolset(self, toolset: AbstractToolset[AgentDepsT]) -> AbstractToolset[AgentDepsT] | None:
        """Make the bound toolsets' calls steps; refuse toolsets that execute tools and came per run."""
        if _begins_durably():
            registered = {id(wrapper.wrapped) for wrapper in self._toolsets_by_id.values()}
            refuse_executing_toolsets([toolset], registered=registered)
        return super().get_wrapper_toolset(toolset)

    async def for_run(self, ctx: RunContext[AgentDepsT]) -> AbstractCapability[AgentDepsT]:
        if not isinstance(ctx.model, Model):  # only realtime sessions run on a model that is not a `Model`
            refuse_realtime_here()
        return await super().for_run(ctx)

    @property
    def in_durable_context(self) -> bool:
        # Inside one of this capability's steps (a sub-agent run from a tool) the enclosing step
        # already records the outcome, so the nested run is plain. A run that began in workflow code
        # stays durable when a step of the user's drives it from its body: pydantic-ai hands a
        # per-run `event_stream_handler` the node's stream, and a handler that is a `@step` pulls
        # the run's model request and tool calls through it. A run begun inside a step body is plain.
        if in_step():
            return False
        return in_workflow() or (_RUN_BEGAN_DURABLE.get() and in_step_body())

    def get_durable_operation_backend(self) -> StepBackend:
        if self._backend is None or self._backend_name != self.name:
            self._backend = StepBackend(
                agent_name=self.name, model=self._model_step_config, tool=self._tool_step_config
            )
            self._backend_name = self.name
        return self._backend

    def _normalize_unit_config(self, config: Any) -> Any:
        if config is False or config is None:
            return config
        unknown = set(config) - _STEP_KEYS
        if unknown:
            raise UserError(
                f"Unknown durable step settings {sorted(unknown)!r} in tool metadata; "
                f"use only {sorted(_STEP_KEYS)!r}, or `False` to run the tool without a step."
            )
        return config

    def get_default_run_id(self) -> str | None:
        """`{workflow_id}` for the first agent run of a workflow execution, then `{workflow_id}:1`, ...

        The count belongs to the workflow execution (shared by all its tasks and threads, e.g. two
        `run_sync` calls of a sync workflow), so a replay numbers the runs as the first execution did.
        """
        if not _begins_durably():
            return None
        workflow_id = current_workflow_id()
        state = execution_state()
        index: int = state.get(_RUNS_KEY, 0)
        state[_RUNS_KEY] = index + 1
        return workflow_id if index == 0 else f"{workflow_id}:{index}"

    async def get_run_start_time(self, run_id: str) -> datetime | None:
        # Only asked for when `timeout=` is used: count it from when the workflow was created, so a
        # recovered run keeps the deadline it started with.
        if not _begins_durably():
            return None
        return current_workflow_started_at()

    def get_default_conversation_id(self, run_id: str) -> str | None:
        return conversation_id_from_run_id(run_id) if _begins_durably() else None

    def get_ordering(self) -> CapabilityOrdering:
        """Innermost, as pydantic-ai's durability capabilities are, and inside `RequestInput`: a
        run's deferred tool calls reach every other handler before this one waits for them."""
        base = super().get_ordering()
        return replace(base, wrapped_by=(*base.wrapped_by, RequestInput))

    def _model_stream_event_handler(self) -> EventStreamHandler[AgentDepsT] | None:
        # Inside a model-request step: the capability's own handler, the durable run's per-run
        # handler (see `_events`) and the run's own stream (see `_live_stream`) all see the model's
        # events live, while it streams.
        sink = current_sink()
        handlers = [
            handler
            for handler in (
                super()._model_stream_event_handler(),
                current_run_handler(),
                sink.handle if sink is not None else None,
            )
            if handler is not None
        ]
        if len(handlers) <= 1:
            return handlers[0] if handlers else None
        return fan_out(handlers)

    async def wrap_model_request(
        self,
        ctx: RunContext[AgentDepsT],
        *,
        request_context: ModelRequestContext,
        handler: WrapModelRequestHandler,
    ) -> ModelResponse:
        """The toolkit's durable model, with streamed requests that reach the run as they stream."""
        if not self.in_durable_context:
            return await handler(request_context)

        async def live(request: ModelRequestContext) -> ModelResponse:
            request.model = LiveStreamModel(request.model)
            return await handler(request)

        return await super().wrap_model_request(ctx, request_context=request_context, handler=live)

    async def handle_deferred_tool_calls(
        self, ctx: RunContext[AgentDepsT], *, requests: DeferredToolRequests
    ) -> DeferredToolResults | None:
        """Wait durably for deferred tool results, for runs whose output type cannot carry them.

        A run whose output type includes `DeferredToolRequests` ends with them instead, as a plain
        agent's does; and every other handler (`RequestInput`, `HandleDeferredToolCalls`, ...) is
        asked first.
        """
        if not self.in_durable_context:
            return None
        agent_output = ctx.agent.output_type if ctx.agent is not None else None
        if run_allows_deferred_output(agent_output):
            return None
        with workflow_steps_here() if in_step_body() else nullcontext():  # see `in_durable_context`
            return await wait_for_deferred_tool_results(requests, timeout_seconds=self._deferred_timeout)

    async def wrap_run(self, ctx: RunContext[AgentDepsT], *, handler: WrapRunHandler) -> AgentRunResult[Any]:
        """Install the durable waiter for in-run waits and keep replayed steps out of traces."""
        durable = _begins_durably()  # where the run begins decides, for all of it
        token = _RUN_BEGAN_DURABLE.set(durable)
        try:
            if not durable:
                return await handler()
            with replay_scope(), external_event_scope(StepEventWaiter(self.name)):
                return await super().wrap_run(ctx, handler=handler)
        finally:
            _RUN_BEGAN_DURABLE.reset(token)
