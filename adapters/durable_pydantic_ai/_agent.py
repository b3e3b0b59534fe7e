"""`DurableAgent`: a pydantic-ai agent whose runs are `durable_core` workflows."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import uuid
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
    suppress,
)
from typing import TYPE_CHECKING, Any, Generic, Literal, overload

from pydantic_ai import AgentSpec, CancellationToken, Conversation
from pydantic_ai.agent import (
    AbstractAgent,
    AgentModelSettings,
    AgentRetries,
    AgentRun,
    EventStreamHandler,
    WrapperAgent,
)
from pydantic_ai.agent.abstract import (
    AgentInstructions,
    AgentMetadata,
    RunOutputDataT,
    _RealtimeSessionResolution,  # pyright: ignore[reportPrivateUsage]
)
from pydantic_ai.capabilities import AgentCapability
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelMessage, UserContent
from pydantic_ai.models import KnownModelName, Model
from pydantic_ai.output import OutputDataT, OutputSpec
from pydantic_ai.result import StreamedRunResult
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT, DeferredToolResults
from pydantic_ai.toolsets import AbstractToolset
from pydantic_ai.usage import RunUsage, UsageLimits
from pydantic_ai.workspaces import WorkspaceBackend, WorkspaceRef

from durable_core import Budget, current_engine, current_workflow_id, in_workflow, tracing_enabled, workflow
from durable_core.errors import WorkflowCancelled
from durable_core.extend import workflow_id_scope

from ._durability import Durability, refuse_realtime_here
from ._events import guarded, ignore_events, run_handler_scope, workflow_side
from ._inputs import decode_request, decode_result, encode_request, encode_result, output_data_type
from ._run import (
    LIVE_CALLS,
    CallerRun,
    CompletedRun,
    LiveCall,
    adopt_context,
    recorded_streaming,
    restore_context,
    retrieve_exception,
)
from ._spans import StepSpans
from ._steps import StepConfig
from ._toolsets import refuse_executing_toolsets, toolsets_of_capabilities
from ._waits import allows_deferred_output, deferred_output_scope

if TYPE_CHECKING:
    from pydantic_ai.realtime import (
        AudioRetention,
        KnownRealtimeModelName,
        RealtimeModel,
        RealtimeModelSettings,
        RealtimeProviderSession,
        RealtimeSession,
    )

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


class DurableAgent(WrapperAgent[AgentDepsT, OutputDataT], Generic[AgentDepsT, OutputDataT]):
    """Wraps an `Agent` so each run is a durable workflow and each model request and tool call a step.

    ```python
    agent = Agent(model, name='support', deps_type=Ticket)
    durable_agent = DurableAgent(agent)

    result = await durable_agent.run('Refund order 42', deps=ticket, run_id='order-42')
    ```

    The run's workflow id is the one set with `workflow_options(workflow_id=...)`, else `run_id`,
    else a new UUID. Calling again with the id of a finished run returns its recorded result
    (same output and messages, typed as the live run returned them) without calling the model or
    any tool. After a crash, any launched engine resumes the run from its last completed step; the
    workflow is registered under `f'{name}.run'` when the `DurableAgent` is created, so create it
    (at import time, like other workflows) before `engine.launch()`.

    Inside an enclosing `@workflow`, a run does not start a workflow of its own: its steps join
    the enclosing one, and its run id is derived from the workflow's (`wf`, then `wf:1`, ...).

    `run_stream()` and `iter()` run live everywhere: outside a workflow, the block of
    `async with durable_agent.iter(...)` (or `run_stream`) is the body of the run's workflow,
    each node running as it is iterated, each model request and tool call a step (streamed model
    requests are `model.request_stream` steps). Leaving `iter()` before the run ends cancels its
    workflow (a plain agent's run is abandoned there too); an exception ends it in error.

    Recorded inputs: the prompt, message history, deferred tool results, model name, settings,
    limits, usage, metadata, and deps (through the agent's `deps_type`). Callables, toolsets,
    capabilities and `output_type` given per run are used live but cannot be recorded; such a run
    resumes only in the process that started it. Toolsets that execute tools cannot be given per
    run at all (`run(toolsets=...)` or a per-run capability's toolset): their calls would not be
    steps. A `UserError` names them; pass them to the agent instead.

    A per-run `event_stream_handler` is live-only and never fails the run (its errors are logged).
    It sees model events live, inside the model-request step, and the other events (tool calls and
    results) once their node has finished; it never runs around a step, so a handler that calls
    steps, or is one, cannot take a model request's place in the run's step sequence.

    Human in the loop follows pydantic-ai: when the output type includes `DeferredToolRequests`, a
    run that defers tool calls returns them as its output, and you continue with another run,
    `run(message_history=result.all_messages(), deferred_tool_results=...)`. Runs that wait inside
    (`RequestInput`, a capability's `handle_deferred_tool_calls`, or an output type without
    `DeferredToolRequests`) wait durably; `WorkflowStatus.waiting.topic` is the topic to answer on,
    with the JSON form of `DeferredToolResults`.

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
        deferred_tool_timeout_seconds: How long a run waits inside for deferred tool results it
            cannot return (None, the default: no limit); after it, approvals are denied and
            external calls fail, with a message to the model.
        budget: Limits over each run started outside any workflow (cost, tokens, model calls;
            `durable_core.Budget`), checked before every model request: a run that reached one
            pauses durably until `engine.raise_budget(run_id, ...)` (or fails with
            `BudgetExceeded` when `on_exceeded="fail"`). A run inside a workflow is governed by
            that workflow's budget, and `workflow_options(budget=...)` around one run replaces
            this one for that run (as for the other adapters, `durable_core.extend.workflow_id_scope`).
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
        deferred_tool_timeout_seconds: float | None = None,
        budget: Budget | None = None,
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
        self._event_stream_handler = event_stream_handler
        self._budget = budget
        attached = Durability.from_agent(wrapped)
        self._durability: Durability[AgentDepsT] | None = None
        if attached is None:
            self._durability = Durability(
                models=models,
                event_stream_handler=event_stream_handler,
                name=durable_name,
                model_step_config=model_step_config,
                tool_step_config=tool_step_config,
                deferred_tool_timeout_seconds=deferred_tool_timeout_seconds,
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

    @property
    def event_stream_handler(self) -> EventStreamHandler[AgentDepsT] | None:
        """The handler given to `DurableAgent(event_stream_handler=...)`, else the wrapped agent's."""
        return self._event_stream_handler or self.wrapped.event_stream_handler

    # --- helpers -------------------------------------------------------------------------------

    def _workflow_id_scope(self, kwargs: dict[str, Any]) -> AbstractContextManager[str]:
        """Name the run's workflow: `workflow_options(workflow_id=...)` > `run_id` > a new id.

        The agent's `budget` governs it unless the caller's `workflow_options(budget=...)` does.
        """
        return workflow_id_scope(kwargs.get("run_id") or str(uuid.uuid4()), budget=self._budget)

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

    def _output_type(self, output_type: object) -> object:
        return output_type if output_type is not None else self.wrapped.output_type

    @staticmethod
    def _refuse_runtime_toolsets(
        toolsets: Sequence[AbstractToolset[Any]] | None, capabilities: Sequence[Any] | None
    ) -> None:
        """Refuse, before any workflow starts, per-run toolsets whose tool calls could not be steps."""
        refuse_executing_toolsets([*(toolsets or ()), *toolsets_of_capabilities(capabilities)])

    @contextmanager
    def _run_scope(self, output_type: object) -> Generator[None]:
        """What the durability capability needs to know about the run being executed here."""
        with deferred_output_scope(allows_deferred_output(self._output_type(output_type))):
            yield

    def _make_workflow(self):
        # `Any`, not `dict[str, Any]`: the request and the result are plain JSON already, which the
        # engine records (and checks) without decoding them again by a type.
        async def run_agent(request: Any) -> Any:
            live = LIVE_CALLS.claim()  # None unless this process's call started the run
            streamed = False
            if live is not None:
                kwargs = dict(live.kwargs)
            else:
                kwargs = decode_request(request, deps_type=self.wrapped.deps_type)
                streamed = recorded_streaming()
            if live is not None and live.caller_run is not None:
                result = await self._run_in_caller(live.caller_run)
            else:
                if kwargs.get("run_id") is None:
                    kwargs["run_id"] = current_workflow_id()
                result = await self._run_in_workflow(kwargs, streamed=streamed)
            if live is not None:
                live.result = result
            return encode_result(result, output_data_type(self._output_type(kwargs.get("output_type"))))

        run_agent.__qualname__ = f"DurableAgent[{self._durable_name}].run"
        return run_agent

    async def _run_in_workflow(
        self, kwargs: dict[str, Any], *, streamed: bool = False
    ) -> AgentRunResult[Any]:
        """Run the agent in workflow code: each model request and tool call a step of the workflow.

        `streamed`: make every model request streamed (a recovered run whose record says so).
        """
        handler = kwargs.pop("event_stream_handler", None)
        kwargs["capabilities"] = self._capabilities(kwargs.get("capabilities"))
        kwargs.setdefault("infer_name", False)
        live_handler = guarded(handler) if handler is not None else None
        if live_handler is not None:
            kwargs["event_stream_handler"] = workflow_side(live_handler)
        elif streamed:
            kwargs["event_stream_handler"] = ignore_events
        with self._run_scope(kwargs.get("output_type")), run_handler_scope(live_handler):
            return await self.wrapped.run(**kwargs)

    async def _run_in_caller(self, caller_run: CallerRun) -> AgentRunResult[Any]:
        """The body of a workflow whose caller runs the agent (`iter()` outside a workflow)."""
        caller_run.started.set_result(contextvars.copy_context())
        result = await caller_run.finished
        if result is None:
            workflow_id = current_workflow_id()
            await current_engine().cancel_workflow_async(workflow_id)
            raise WorkflowCancelled(workflow_id, "cancelled: iter() was left before the run ended")
        return result

    async def _run_durably(self, kwargs: dict[str, Any]) -> AgentRunResult[Any]:
        """Start (or rejoin) the run's workflow from outside any workflow."""
        self._refuse_cancellation_token(kwargs)
        record = encode_request(kwargs, deps_type=self.wrapped.deps_type, model_key=self._model_key)
        live = LiveCall(kwargs)
        with LIVE_CALLS.offer(live), self._workflow_id_scope(kwargs):
            data = await self._workflow(record)
        if live.result is not None:
            return live.result
        return decode_result(data, output_data_type(self._output_type(kwargs.get("output_type"))))

    @staticmethod
    def _refuse_cancellation_token(kwargs: dict[str, Any]) -> None:
        if kwargs.get("cancellation_token") is not None:
            raise UserError(
                "A `cancellation_token` cannot cross into a durable run; cancel it with "
                "`engine.cancel_workflow(workflow_id)` instead."
            )

    @asynccontextmanager
    async def _iter_durably(
        self, kwargs: dict[str, Any], capabilities: Sequence[AgentCapability[AgentDepsT]] | None
    ) -> AsyncGenerator[AgentRun[AgentDepsT, Any]]:
        """`iter()` outside a workflow: start the run's workflow and run its body in this block."""
        self._refuse_cancellation_token(kwargs)
        call_kwargs = {**kwargs, "capabilities": capabilities}
        record = encode_request(call_kwargs, deps_type=self.wrapped.deps_type, model_key=self._model_key)
        caller_run = CallerRun()
        live = LiveCall(call_kwargs, caller_run=caller_run)
        with LIVE_CALLS.offer(live):
            with self._workflow_id_scope(kwargs):
                call = self._workflow(record)  # the workflow id is taken now
            task: asyncio.Future[Any] = asyncio.ensure_future(call)  # in the offer's context
        task.add_done_callback(retrieve_exception)
        try:
            await asyncio.wait({task, caller_run.started}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        if not caller_run.started.done():
            # A finished run (or one another process is running, awaited): hand back its result.
            data = await task
            result = live.result or decode_result(
                data, output_data_type(self._output_type(kwargs.get("output_type")))
            )
            shell: dict[str, Any] = {
                **kwargs,
                "cancellation_token": None,
                "capabilities": [*(capabilities or []), CompletedRun[AgentDepsT](result)],
            }
            async with self.wrapped.iter(**shell) as agent_run:
                yield agent_run
            return
        tokens = adopt_context(caller_run.started.result())
        result: AgentRunResult[Any] | None = None
        try:
            run_kwargs: dict[str, Any] = {**kwargs, "run_id": kwargs.get("run_id") or current_workflow_id()}
            with self._run_scope(kwargs.get("output_type")):
                async with self.wrapped.iter(
                    **run_kwargs, capabilities=self._capabilities(capabilities)
                ) as run:
                    yield run
                result = run.result
        except (asyncio.CancelledError, GeneratorExit):
            restore_context(tokens)
            task.cancel()  # the workflow stays PENDING, and is recovered like any interrupted run
            raise
        except BaseException as error:
            restore_context(tokens)
            caller_run.finished.set_exception(error)
            with suppress(BaseException):
                await task  # records the error as the run's outcome
            raise
        restore_context(tokens)
        caller_run.finished.set_result(result)
        if result is None:
            with suppress(BaseException):
                await task  # cancels the workflow: the run was abandoned
            return
        await task

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
        self._refuse_runtime_toolsets(toolsets, capabilities)
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
            return await self._run_in_workflow(kwargs)
        return await self._run_durably(kwargs)

    @overload
    def run_stream(
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
    ) -> AbstractAsyncContextManager[StreamedRunResult[AgentDepsT, OutputDataT]]: ...

    @overload
    def run_stream(
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
    ) -> AbstractAsyncContextManager[StreamedRunResult[AgentDepsT, RunOutputDataT]]: ...

    @asynccontextmanager
    async def run_stream(
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
    ) -> AsyncGenerator[StreamedRunResult[AgentDepsT, Any]]:
        """Stream the run live (see the class docstring); arguments as `Agent.run_stream`.

        Model requests are streamed (`model.request_stream` steps) and their text reaches the
        stream as the run goes; outside a workflow the run is a durable workflow all the same.
        """
        self._refuse_runtime_toolsets(toolsets, capabilities)
        live_handler = guarded(event_stream_handler) if event_stream_handler is not None else None
        # pydantic-ai calls this one in workflow code, per node; `ignore_events` rather than None,
        # which would fall back to `self.event_stream_handler`, the one already run inside steps.
        node_handler = workflow_side(live_handler) if live_handler is not None else ignore_events
        with run_handler_scope(live_handler) if live_handler is not None else nullcontext():
            async with super().run_stream(
                user_prompt,
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
                event_stream_handler=node_handler,
                capabilities=capabilities,
                workspace=workspace,
                spec=spec,
            ) as stream:
                yield stream

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
        """Iterate over the run's nodes, live; arguments as `Agent.iter`.

        Each node runs as it is iterated, its model requests and tool calls steps: of the enclosing
        workflow inside one; outside one, of the run's own workflow, whose body is this block.
        """
        self._refuse_runtime_toolsets(toolsets, capabilities)
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
            with self._run_scope(output_type):
                async with self.wrapped.iter(**kwargs, capabilities=self._capabilities(capabilities)) as run:
                    yield run
            return
        async with self._iter_durably(kwargs, capabilities) as run:
            yield run

    def _check_realtime_signaling(self) -> None:
        refuse_realtime_here()
        super()._check_realtime_signaling()

    @asynccontextmanager
    async def _resolve_realtime_session(
        self,
        model: RealtimeModel | KnownRealtimeModelName | str,
        *,
        deps: AgentDepsT = None,
        model_settings: RealtimeModelSettings | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        usage: RunUsage | None = None,
        usage_limits: UsageLimits | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        run_lifecycle: bool = False,
    ) -> AsyncGenerator[_RealtimeSessionResolution[AgentDepsT]]:
        """Realtime signaling (`answer_webrtc_offer()`, `create_client_secret()`): refused in workflow code."""
        refuse_realtime_here()
        async with super()._resolve_realtime_session(
            model,
            deps=deps,
            model_settings=model_settings,
            instructions=instructions,
            toolsets=toolsets,
            capabilities=capabilities,
            usage=usage,
            usage_limits=usage_limits,
            metadata=metadata,
            conversation_id=conversation_id,
            run_id=run_id,
            message_history=message_history,
            run_lifecycle=run_lifecycle,
        ) as resolved:
            yield resolved

    @asynccontextmanager
    async def _open_realtime_session(
        self,
        model: RealtimeModel | KnownRealtimeModelName | str,
        *,
        deps: AgentDepsT = None,
        model_settings: RealtimeModelSettings | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        usage: RunUsage | None = None,
        usage_limits: UsageLimits | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        audio_retention: AudioRetention = "transcript_only",
        handle_barge_in: bool = False,
        retain_images_every_n: int = 1,
        retain_images_max: int | None = 100,
        retain_audio_max_seconds: float | None = 1800,
        provider_session: RealtimeProviderSession | None = None,
    ) -> AsyncGenerator[RealtimeSession]:
        """A realtime session of the wrapped agent: live and unrecorded, so refused in workflow code."""
        refuse_realtime_here()
        async with super()._open_realtime_session(
            model,
            deps=deps,
            model_settings=model_settings,
            instructions=instructions,
            toolsets=toolsets,
            capabilities=capabilities,
            usage=usage,
            usage_limits=usage_limits,
            metadata=metadata,
            conversation_id=conversation_id,
            run_id=run_id,
            message_history=message_history,
            audio_retention=audio_retention,
            handle_barge_in=handle_barge_in,
            retain_images_every_n=retain_images_every_n,
            retain_images_max=retain_images_max,
            retain_audio_max_seconds=retain_audio_max_seconds,
            provider_session=provider_session,
        ) as session:
            yield session
