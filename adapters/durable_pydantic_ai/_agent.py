"""`DurableAgent`: a pydantic-ai agent whose runs are `durable_core` workflows."""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, Literal, overload

from pydantic_ai import AgentSpec, CancellationToken, Conversation
from pydantic_ai.agent import (
    AbstractAgent,
    AgentModelSettings,
    AgentRetries,
    AgentRun,
    EventStreamHandler,
    WrapperAgent,
)
from pydantic_ai.agent.abstract import AgentInstructions, AgentMetadata, RunOutputDataT
from pydantic_ai.capabilities import AbstractCapability, AgentCapability
from pydantic_ai.capabilities.abstract import WrapRunHandler
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import AgentStreamEvent, ModelMessage, UserContent
from pydantic_ai.models import KnownModelName, Model
from pydantic_ai.output import OutputDataT, OutputSpec
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT, DeferredToolRequests, DeferredToolResults, RunContext
from pydantic_ai.toolsets import AbstractToolset
from pydantic_ai.usage import RunUsage, UsageLimits
from pydantic_ai.workspaces import WorkspaceBackend, WorkspaceRef

from durable_core import in_workflow, tracing_enabled, workflow

from ._backend import StepConfig
from ._core_compat import current_workflow_id, workflow_id_scope
from ._durability import Durability
from ._inputs import decode_request, decode_result, encode_request, encode_result, output_data_type
from ._logging import logger
from ._spans import StepSpans
from ._waits import FOREVER_SECONDS, wait_for_deferred_tool_results

__all__ = ["DurableAgent"]


_agents_by_name: dict[str, Callable[[], AbstractAgent[Any, Any] | None]] = {}
"""The agent each DurableAgent name belongs to in this process. A name names the workflow and the
steps of every run, so it belongs to one agent for as long as that agent lives, whatever the engine's
state (DurableAgents are usually built at import time, before `engine.launch()`)."""

_names_lock = threading.Lock()


def _reference(agent: AbstractAgent[Any, Any]) -> Callable[[], AbstractAgent[Any, Any] | None]:
    try:
        return weakref.ref(agent)
    except TypeError:  # an agent type without weak references: held for the life of the process
        return lambda: agent


def _check_name(name: str, wrapped: AbstractAgent[Any, Any], *, claim: bool = False) -> None:
    """Refuse `name` if another live agent holds it; with `claim`, take it for `wrapped`.

    Re-wrapping the same agent is allowed (same workflow, same steps).
    """
    with _names_lock:
        existing = _agents_by_name.get(name)
        other = existing() if existing is not None else None
        if other is None and claim:
            _agents_by_name[name] = _reference(wrapped)
    if other is not None and other is not wrapped:
        raise UserError(
            f"Another DurableAgent is already named {name!r}. Names identify the workflow and "
            "step records of each agent, so two agents must not share one: pass a different `name=`."
        )


@dataclass
class _LiveCall:
    """The caller's original run arguments, handed to the workflow body it starts in-process."""

    kwargs: dict[str, Any]
    result: AgentRunResult[Any] | None = None
    claimed: bool = False


_live_call: ContextVar[_LiveCall | None] = ContextVar("durable_pydantic_ai_live_call", default=None)


def _safe_handler(handler: EventStreamHandler[Any]) -> EventStreamHandler[Any]:
    """Keep a per-run event handler from failing the durable run it observes."""

    async def handle(ctx: RunContext[Any], events: AsyncIterable[AgentStreamEvent]) -> None:
        try:
            await handler(ctx, events)
        except Exception:
            logger.exception("event_stream_handler of a durable run raised; the run continues")
        async for _ in events:
            pass

    return handle


class DurableAgent(WrapperAgent[AgentDepsT, OutputDataT], Generic[AgentDepsT, OutputDataT]):
    """Wraps an `Agent` so each run is a durable workflow and each model request and tool call a step.

    ```python
    agent = Agent(model, name='support', deps_type=Ticket)
    durable_agent = DurableAgent(agent)

    result = await durable_agent.run('Refund order 42', deps=ticket, run_id='order-42')
    ```

    The run's workflow id is the one set with `workflow_options(workflow_id=...)`, else `run_id`,
    else a new UUID. Calling again with the id of a finished run returns its recorded result
    (same output and messages, typed by the output type) without calling the model or any tool.
    After a crash, any launched engine resumes the run from its last completed step; the workflow
    is registered under `f'{name}.run'` when the `DurableAgent` is created, so create it (at
    import time, like other workflows) before `engine.launch()`.

    Inside an enclosing `@workflow`, a run does not start a workflow of its own: its steps join
    the enclosing one.

    Recorded inputs: the prompt, message history, deferred tool results, model name, settings,
    limits, usage, metadata, and deps (through the agent's `deps_type`). Callables, toolsets,
    capabilities and `output_type` given per run are used live but cannot be recorded; such a run
    resumes only in the process that started it. The per-run `event_stream_handler` sees live
    events only, and an exception it raises is logged instead of failing the run.

    A run that ends with `DeferredToolRequests` output (tools needing approval or external
    execution) waits durably, up to `deferred_tool_timeout_seconds`, for the JSON form of
    `DeferredToolResults` sent with `engine.send(workflow_id, payload)`, then continues in the
    same workflow. Its pending requests are published as the workflow event
    `'deferred_tool_requests'`. Pass `deferred_tool_timeout_seconds=None` to return the requests
    as output instead, as a plain agent does.

    Outside a workflow, `iter()` and `run_stream()` run the whole workflow first and then hand
    back the finished run (the stream replays the final output at once); use them inside your
    own `@workflow`, or `event_stream_handler=`, for live streaming.

    Args:
        wrapped: The agent to make durable. It needs a `model` and a `name` (or pass `name=`).
        name: Unique name, used in workflow and step names; defaults to `wrapped.name`. Two
            different agents cannot share one in a process (wrapping the same agent again is fine).
        models: Extra models a run may select with `run(model=key)` or the registered instance
            (also the way to use `override(model=instance)`: register the instance here).
        event_stream_handler: Handler run inside the durable boundary: model events live inside the
            model-request steps (streamed, `model.request_stream`), each tool event in its own
            `{name}.event_stream_handler` step. For steps that are exactly model requests and tool
            calls, pass a per-run `event_stream_handler=` to `run()` instead.
        model_step_config: Retry settings for model-request steps.
        tool_step_config: Retry settings for tool steps.
        deferred_tool_timeout_seconds: How long a run waits for deferred tool results.
    """

    def __init__(
        self,
        wrapped: AbstractAgent[AgentDepsT, OutputDataT],
        *,
        name: str | None = None,
        models: Mapping[str, Model] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        model_step_config: StepConfig | None = None,
        tool_step_config: StepConfig | None = None,
        deferred_tool_timeout_seconds: float | None = FOREVER_SECONDS,
    ) -> None:
        super().__init__(wrapped)
        durable_name = name or wrapped.name
        if not durable_name:
            raise UserError(
                "DurableAgent needs a unique name: it names the workflow and the steps of every run. "
                "Pass `Agent(..., name='support')` or `DurableAgent(agent, name='support')`."
            )
        if wrapped.model is None:
            raise UserError(
                f"DurableAgent {durable_name!r} wraps an agent without a `model`. A durable run records "
                'which model served it, so set the model on the agent (e.g. `Agent("openai:gpt-5", ...)`).'
            )
        _check_name(durable_name, wrapped)
        self._durable_name = durable_name
        self._deferred_timeout = deferred_tool_timeout_seconds
        attached = Durability.from_agent(wrapped)
        self._durability: Durability[AgentDepsT] | None = None
        if attached is None:
            self._durability = Durability(
                models=models,
                event_stream_handler=event_stream_handler,
                name=durable_name,
                model_step_config=model_step_config,
                tool_step_config=tool_step_config,
            )
            # Bind once now so a toolset without an `id` (or a missing model) fails here, not mid-run.
            self._durability.for_agent(wrapped)
        self._step_spans = StepSpans[AgentDepsT]()
        self._registry: dict[str, Model] = dict(models or {})
        self._workflow = workflow(name=f"{durable_name}.run")(self._make_workflow())
        # Only a DurableAgent that was built holds its name: a failed construction leaves it free.
        _check_name(durable_name, wrapped, claim=True)

    @property
    def name(self) -> str | None:
        return self._durable_name

    @name.setter
    def name(self, value: str | None) -> None:  # pragma: no cover - names are fixed for durability
        raise UserError("The name of a DurableAgent is fixed: it names its workflows and steps.")

    @property
    def workflow_name(self) -> str:
        """The `durable_core` workflow name runs of this agent are recorded under."""
        return f"{self._durable_name}.run"

    # --- helpers -------------------------------------------------------------------------------

    def _capabilities(
        self, capabilities: Sequence[AgentCapability[AgentDepsT]] | None
    ) -> list[AgentCapability[AgentDepsT]]:
        extra: list[AgentCapability[AgentDepsT]] = list(capabilities or [])
        if self._durability is not None:
            extra.append(self._durability)
        if tracing_enabled() and not any(isinstance(capability, StepSpans) for capability in extra):
            # Only while tracing: every capability in the chain costs each hook call a context copy.
            extra.append(self._step_spans)
        return extra

    def _model_key(self, model: Model) -> str | None:
        if model is self.wrapped.model:
            return None
        for key, registered in self._registry.items():
            if registered is model:
                return key
        raise UserError(
            f"The model instance {model.model_id!r} passed to a durable run is not registered, so a "
            "recovering process could not rebuild it. Register it with "
            '`DurableAgent(agent, models={"alt": model})` and pass `model="alt"`, or pass a model name '
            'string such as `"openai:gpt-5"`.'
        )

    def _make_workflow(self):
        async def run_agent(request: dict[str, Any]) -> dict[str, Any]:
            live = _live_call.get()
            if live is not None and not live.claimed:
                live.claimed = True
                _live_call.set(None)  # nested workflows started by tools are not this call
                kwargs = dict(live.kwargs)
            else:
                live = None
                kwargs = decode_request(request, deps_type=self.wrapped.deps_type)
            if kwargs.get("run_id") is None:
                kwargs["run_id"] = current_workflow_id()
            result = await self._run_in_workflow(kwargs)
            if live is not None:
                live.result = result
            return encode_result(
                result, output_data_type(kwargs.get("output_type") or self.wrapped.output_type)
            )

        run_agent.__qualname__ = f"DurableAgent[{self._durable_name}].run"
        return run_agent

    async def _run_in_workflow(self, kwargs: dict[str, Any]) -> AgentRunResult[Any]:
        """The body of the workflow: the agent run, plus durable waits for deferred tool results."""
        base_run_id = kwargs["run_id"]
        handler = kwargs.get("event_stream_handler")
        if handler is not None:
            kwargs["event_stream_handler"] = _safe_handler(handler)
        kwargs["capabilities"] = self._capabilities(kwargs.get("capabilities"))
        kwargs.setdefault("infer_name", False)
        result = await self.wrapped.run(**kwargs)
        continuation = 0
        while self._deferred_timeout is not None and isinstance(result.output, DeferredToolRequests):
            answer = await wait_for_deferred_tool_results(
                result.output, timeout_seconds=self._deferred_timeout
            )
            if answer is None:
                break
            continuation += 1
            kwargs.update(
                user_prompt=None,
                message_history=result.all_messages(),
                deferred_tool_results=answer,
                run_id=f"{base_run_id}:{continuation}",
                usage=result.usage,
            )
            result = await self.wrapped.run(**kwargs)
        return result

    async def _run_durably(self, kwargs: dict[str, Any]) -> AgentRunResult[Any]:
        """Start (or rejoin) the run's workflow from outside any workflow."""
        if kwargs.get("cancellation_token") is not None:
            raise UserError(
                "A `cancellation_token` cannot cross into a durable run; cancel it with "
                "`engine.cancel_workflow(workflow_id)` instead."
            )
        record = encode_request(kwargs, deps_type=self.wrapped.deps_type, model_key=self._model_key)
        live = _LiveCall(kwargs)
        token = _live_call.set(live)
        try:
            with workflow_id_scope(kwargs.get("run_id") or str(uuid.uuid4())):
                data = await self._workflow(record)
        finally:
            _live_call.reset(token)
        if live.result is not None:
            return live.result
        return decode_result(data, output_data_type(kwargs.get("output_type") or self.wrapped.output_type))

    # --- the Agent surface ---------------------------------------------------------------------

    @overload
    async def run(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AgentRunResult[OutputDataT]: ...

    @overload
    async def run(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT],
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AgentRunResult[RunOutputDataT]: ...

    async def run(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT] | None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AgentRunResult[Any]:
        """Run the agent as a durable workflow (see the class docstring); arguments as `Agent.run`."""
        kwargs: dict[str, Any] = dict(
            user_prompt=user_prompt,
            output_type=output_type,
            conversation=conversation,
            message_history=message_history,
            deferred_tool_results=deferred_tool_results,
            conversation_id=conversation_id,
            run_id=run_id,
            model=model,
            instructions=instructions,
            deps=deps,
            model_settings=model_settings,
            usage_limits=usage_limits,
            cancellation_token=cancellation_token,
            timeout=timeout,
            usage=usage,
            metadata=metadata,
            retries=retries,
            infer_name=False,
            toolsets=toolsets,
            event_stream_handler=event_stream_handler,
            capabilities=capabilities,
            workspace=workspace,
            spec=spec,
        )
        if in_workflow():
            kwargs["capabilities"] = self._capabilities(capabilities)
            return await self.wrapped.run(**kwargs)
        return await self._run_durably(kwargs)

    @overload
    def iter(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[AgentRun[AgentDepsT, OutputDataT]]: ...

    @overload
    def iter(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT],
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[AgentRun[AgentDepsT, RunOutputDataT]]: ...

    @asynccontextmanager
    async def iter(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT] | None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AsyncGenerator[AgentRun[AgentDepsT, Any]]:
        """Iterate over the run's nodes; arguments as `Agent.iter`.

        Inside a `@workflow` the nodes run live, each model request and tool call a step of it.
        Outside one, the durable run completes first and the `AgentRun` yielded holds its result.
        """
        kwargs: dict[str, Any] = dict(
            user_prompt=user_prompt,
            output_type=output_type,
            conversation=conversation,
            message_history=message_history,
            deferred_tool_results=deferred_tool_results,
            conversation_id=conversation_id,
            run_id=run_id,
            model=model,
            instructions=instructions,
            deps=deps,
            model_settings=model_settings,
            usage_limits=usage_limits,
            cancellation_token=cancellation_token,
            timeout=timeout,
            usage=usage,
            metadata=metadata,
            retries=retries,
            infer_name=False,
            toolsets=toolsets,
            workspace=workspace,
            spec=spec,
        )
        if in_workflow():
            async with self.wrapped.iter(
                **kwargs, capabilities=self._capabilities(capabilities)
            ) as agent_run:
                yield agent_run
            return
        shell = _CompletedRun[AgentDepsT](self, {**kwargs, "capabilities": capabilities})
        shell_kwargs: dict[str, Any] = {
            **kwargs,
            "cancellation_token": None,
            "capabilities": [*(capabilities or []), shell],
        }
        async with self.wrapped.iter(**shell_kwargs) as agent_run:
            yield agent_run


class _CompletedRun(AbstractCapability[AgentDepsT]):
    """Short-circuits a non-durable `iter()` with the result of the durable run (`wrap_run` protocol)."""

    def __init__(self, agent: DurableAgent[AgentDepsT, Any], kwargs: dict[str, Any]) -> None:
        self._agent = agent
        self._kwargs = kwargs

    async def wrap_run(self, ctx: RunContext[AgentDepsT], *, handler: WrapRunHandler) -> AgentRunResult[Any]:
        result = await self._agent._run_durably(dict(self._kwargs))  # pyright: ignore[reportPrivateUsage]
        # `run_stream()` reads a short-circuited run's messages from the run's own history list.
        ctx.messages[:] = result.all_messages()
        return result
