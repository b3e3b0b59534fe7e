"""`DurableGraph`: graph runs as durable workflows keyed by thread, resumed after a crash.

A run is one workflow (id ``lg:<name>:<thread_id>:<token>`` unless `workflow_options` names it).
Its body is a loop of *segments*, each a graph run up to completion or an interrupt:

1. step ``langgraph.base`` records the thread's latest checkpoint id before the segment;
2. step ``langgraph.run`` runs the graph. Re-executed after a crash, it compares the latest
   checkpoint with the recorded base: unchanged means the input never became durable, so it is
   applied again; changed means the run progressed, so the graph resumes from its last
   checkpoint (LangGraph's ``invoke(None, config)``). A finished segment replays from its record;
3. event ``langgraph.segment.<n>`` publishes the outcome (status, interrupts, checkpoint);
4. on an interrupt the workflow waits durably on topic ``langgraph.resume`` (listed by
   ``engine.list_workflows(waiting=True)``); the message becomes ``Command(resume=...)``
   (see `_waits`);
5. when the run's budget refused a model call (segment status ``"budget"``), the core's budget
   check (a ``durable.budget`` step) pauses durably in a ``"budget"`` wait until
   ``engine.raise_budget`` (or fails with ``BudgetExceeded``); the next segment then resumes
   the graph from its last checkpoint, and the caller of ``invoke`` keeps waiting for it.

Step calls inside nodes are memoized per node task (see `_memo`), not numbered in the workflow;
model calls inside nodes are recorded with their usage outside the step sequence (see `_usage`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import queue
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from durable_core import TERMINAL_STATES
from durable_core.extend import (
    LiveHandoff,
    check_budget,
    check_budget_async,
    running_workflow,
    workflow_id_scope,
)

from ._codec import decode_value, encode_value, json_safe, jsonable_items
from ._errors import GraphNotDurable
from ._live import END_OF_STREAM, LiveSegment
from ._memo import MemoScope, memo_scope
from ._saver import DurableCheckpointer, thread_id_of
from ._usage import BudgetReached, node_usage
from ._waits import (
    PAUSED,
    RESUME_TOPIC,
    command_from,
    resume_target,
    segment_event,
    until_waiting,
    wait_for_resume,
    wait_for_resume_async,
)

if TYPE_CHECKING:
    from durable_core import Budget

__all__ = ["DurableGraph"]

_POLL_SECONDS = 0.2
_BUDGET = "budget"  # a segment ended because the run's budget refused a model call
_WAITING_GRACE_SECONDS = 10.0
_RECORDED_CONFIG_KEYS = ("metadata", "tags", "recursion_limit", "run_name", "max_concurrency")


class DurableGraph:
    """Run a compiled LangGraph graph as durable workflows that resume by themselves.

    ```python
    graph = builder.compile(checkpointer=DurableCheckpointer(engine))
    durable = DurableGraph(graph, name="support")   # before engine.launch() in a restarted process
    engine.launch()
    durable.invoke({"messages": [...]}, {"configurable": {"thread_id": "t1"}})
    ```

    `invoke`/`ainvoke`/`stream`/`astream` take LangGraph's arguments. `durability` defaults to
    ``"sync"`` here (LangGraph's default ``"async"`` may lose the last checkpoints at a crash,
    which only costs re-running nodes). After an `interrupt()`, ``invoke(Command(resume=...),
    config)`` resumes the waiting run; so does ``engine.send(run_id, value, topic="langgraph.resume")``.
    Live-only arguments (callbacks, non-JSON `context`) are not recorded: a run resumed by
    another process runs without them. Other attributes (`get_state`, `update_state`, ...)
    are the graph's.

    Usage: every chat-model call a node makes is a model call of the run, recorded once with the
    `usage_metadata` of the `AIMessage` it returned (a memoized model-call step, e.g. a
    `durable_runnable` chat model, counts as one call and replays without counting again), so
    ``engine.get_workflow_status(run_id).usage`` totals a run.

    `budget` (a `durable_core.Budget`) applies to each run (each its own, counted over the run
    and the workflows it starts); a budget set by an enclosing ``workflow_options(budget=...)``
    or inherited from a parent workflow takes precedence. It is checked before every model call
    in a node: a call it refuses is not made. With ``on_exceeded="pause"`` the run pauses
    durably (a wait of kind ``"budget"``, listed by ``engine.list_workflows(waiting=True)``;
    ``invoke`` keeps waiting) until ``engine.raise_budget(run_id, ...)``, then resumes the graph
    from its last checkpoint, re-running the refused node (its memoized calls replay), also
    after a crash; with ``"fail"`` the run ends with `BudgetExceeded`, raised by ``invoke``. A
    node that catches ``Exception`` around its model call swallows the refusal, as it would an
    ``interrupt()``.
    """

    def __init__(self, graph: Any, *, name: str, budget: Budget | None = None) -> None:
        from durable_core import Budget, workflow

        checkpointer = getattr(graph, "checkpointer", None)
        if not isinstance(checkpointer, DurableCheckpointer):
            raise GraphNotDurable(
                f"DurableGraph({name!r}) needs a graph compiled with "
                f"checkpointer=DurableCheckpointer(engine); this graph's checkpointer is "
                f"{type(checkpointer).__name__}."
            )
        if not name:
            raise ValueError(
                "DurableGraph needs a non-empty name= (it names the workflows that run the graph)."
            )
        if budget is not None and not isinstance(budget, Budget):
            raise TypeError(f"budget must be a durable_core.Budget, got {type(budget).__name__}")
        self.budget: Budget | None = budget
        self.graph = graph
        self.name = name
        self.checkpointer: DurableCheckpointer = checkpointer
        self.workflow_name = f"langgraph:{name}"
        # live segments by key: the run token for a first segment, "<workflow id>#<n>" after
        self._live: LiveHandoff[LiveSegment] = LiveHandoff(f"durable_langgraph:{name}")

        def run_graph(thread_id: str, request: dict[str, Any]) -> dict[str, Any]:
            return self._run_sync(thread_id, request)

        async def run_graph_async(thread_id: str, request: dict[str, Any]) -> dict[str, Any]:
            return await self._run_async(thread_id, request)

        self._workflow = workflow(name=self.workflow_name)(run_graph)
        self._workflow_async = workflow(name=self.workflow_name + ":async")(run_graph_async)

    def __getattr__(self, item: str) -> Any:
        return getattr(self.graph, item)

    @property
    def engine(self) -> Any:
        return self.checkpointer.engine

    # -- public API ------------------------------------------------------------------------------

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Run the graph durably and return its output (with ``__interrupt__`` when it paused)."""
        live, workflow_id, segment = self._begin(input, config, kwargs, stream=False, loop=None)
        return self._await(workflow_id, segment, live).output

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Async `invoke`: the run executes on the engine's event loop, never blocking this one."""
        live, workflow_id, segment = await self._abegin(input, config, kwargs, stream=False)
        return (await self._aawait(workflow_id, segment, live)).output

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        """Stream the graph's chunks while the run executes durably (LangGraph's `stream` arguments)."""
        live, workflow_id, segment = self._begin(input, config, kwargs, stream=True, loop=None)
        sink = live.sink
        assert sink is not None
        while True:
            try:
                item = sink.sync_queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not live.claimed.is_set() and self._settled_elsewhere(workflow_id, segment, live):
                    live.future.result()  # the run ended elsewhere (or before): no chunks to relay
                    return
                continue
            if item is END_OF_STREAM:
                self._await(workflow_id, segment, live)  # raise the run's error, if any
                return
            yield item

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Async `stream`."""
        live, workflow_id, segment = await self._abegin(input, config, kwargs, stream=True)
        sink = live.sink
        assert sink is not None and sink.async_queue is not None
        while True:
            try:
                item = await asyncio.wait_for(sink.async_queue.get(), _POLL_SECONDS)
            except TimeoutError:
                if not live.claimed.is_set() and await asyncio.to_thread(
                    self._settled_elsewhere, workflow_id, segment, live
                ):
                    live.future.result()
                    return
                continue
            if item is END_OF_STREAM:
                await self._aawait(workflow_id, segment, live)
                return
            yield item

    def waiting_runs(self, thread_id: str) -> list[str]:
        """Ids of this graph's runs on `thread_id` that wait for a resume (an `interrupt()` answer).

        A run paused by its budget waits for `engine.raise_budget` instead, and is not listed.
        """
        return [
            s.workflow_id
            for s in self._unfinished(thread_id)
            if s.waiting is not None and s.waiting.kind != "budget"
        ]

    # -- caller side -----------------------------------------------------------------------------

    def _prepare(
        self,
        input: Any,
        config: RunnableConfig | None,
        kwargs: dict[str, Any],
        stream: bool,
        loop: asyncio.AbstractEventLoop | None,
    ) -> tuple[LiveSegment, str, tuple[str, int] | None, dict[str, Any]]:
        """Shared by both flavours: deliver a resume to the thread's paused run, or plan a new run.

        Returns (live segment, thread id, (run id, segment) if a paused run got the input, request).
        """
        config = config or {}
        thread_id = thread_id_of(config)
        kwargs = {"durability": "sync", **kwargs}
        live = LiveSegment(config, kwargs, stream=stream, loop=loop)
        if input is None or isinstance(input, Command):
            target = self._resume_target(thread_id)
            if target is not None:
                workflow_id, segment = target
                self._live.offer_at(f"{workflow_id}#{segment}", live)
                message = encode_value(self.checkpointer.serde, input)
                self.engine.send(workflow_id, message, topic=RESUME_TOPIC)
                return live, thread_id, target, {}
        else:
            self._supersede(thread_id)
        request = self._request(input, config, kwargs, uuid.uuid4().hex, stream)
        self._live.offer_at(request["token"], live)
        return live, thread_id, None, request

    def _begin(
        self,
        input: Any,
        config: RunnableConfig | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
        loop: asyncio.AbstractEventLoop | None,
    ) -> tuple[LiveSegment, str, int]:
        live, thread_id, target, request = self._prepare(input, config, kwargs, stream, loop)
        if target is not None:
            return live, target[0], target[1]
        try:
            with self._start_scope(thread_id, request["token"]):
                handle = self.engine.start_workflow(self._workflow, thread_id, request)
        except BaseException:
            self._live.withdraw(request["token"])
            raise
        return live, handle.workflow_id, 0

    async def _abegin(
        self, input: Any, config: RunnableConfig | None, kwargs: dict[str, Any], *, stream: bool
    ) -> tuple[LiveSegment, str, int]:
        loop = asyncio.get_running_loop()
        live, thread_id, target, request = await asyncio.to_thread(
            self._prepare, input, config, kwargs, stream, loop
        )
        if target is not None:
            return live, target[0], target[1]
        try:
            with self._start_scope(thread_id, request["token"]):
                handle = await self.engine.start_workflow_async(self._workflow_async, thread_id, request)
        except BaseException:
            self._live.withdraw(request["token"])
            raise
        return live, handle.workflow_id, 0

    def _start_scope(self, thread_id: str, token: str) -> contextlib.AbstractContextManager[str]:
        """The run's default id unless the caller's `workflow_options` names it, and its budget."""
        return workflow_id_scope(f"lg:{self.name}:{thread_id}:{token}", budget=self.budget)

    def _request(
        self, input: Any, config: RunnableConfig, kwargs: dict[str, Any], token: str, stream: bool
    ) -> dict[str, Any]:
        plain: dict[str, Any] = dict(config)
        recorded_config: dict[str, Any] = {key: plain[key] for key in _RECORDED_CONFIG_KEYS if key in plain}
        recorded_config = jsonable_items(recorded_config)
        recorded_config["configurable"] = jsonable_items(dict(config.get("configurable") or {}))
        return {
            "token": token,
            "input": encode_value(self.checkpointer.serde, input),
            "config": recorded_config,
            "kwargs": jsonable_items(kwargs),
            "mode": "stream" if stream else "invoke",
        }

    def _unfinished(self, thread_id: str) -> list[Any]:
        statuses = self.engine.list_workflows(
            name=[self.workflow_name, self.workflow_name + ":async"], status="PENDING"
        )
        return [s for s in statuses if _thread_of(s) == thread_id]

    def _resume_target(self, thread_id: str) -> tuple[str, int] | None:
        """The unfinished run of the thread whose last segment paused, and the next segment's index.

        Decided from the run's durable segment events, so a run that has not yet entered its wait
        (or that awaits recovery after a crash) still gets the resume: messages are queued.
        """
        return resume_target(self.engine, [status.workflow_id for status in self._unfinished(thread_id)])

    def _supersede(self, thread_id: str) -> None:
        """New input on a thread discards its interrupted runs (LangGraph drops their pending tasks)."""
        while (target := self._resume_target(thread_id)) is not None:
            self.engine.cancel_workflow(target[0])

    def _await(self, workflow_id: str, segment: int, live: LiveSegment) -> LiveSegment:
        """Wait for the segment's end; fill `live.output` (from the live run, else from the checkpoint).

        Returns once the end is recorded: the run is in its durable wait after an interrupt, or
        its final status (SUCCESS, ERROR) is written.
        """
        while True:
            try:
                outcome = live.future.result(timeout=None if live.claimed.is_set() else _POLL_SECONDS)
            except FutureTimeout:
                if not self._settled_elsewhere(workflow_id, segment, live):
                    continue
                continue
            except BaseException:
                self._until_recorded(workflow_id)
                raise
            if outcome.get("status") in PAUSED:
                until_waiting(self.engine, workflow_id)
            else:
                self._until_recorded(workflow_id)
            return live

    async def _aawait(self, workflow_id: str, segment: int, live: LiveSegment) -> LiveSegment:
        wrapped = asyncio.wrap_future(live.future)
        while True:
            done, _ = await asyncio.wait({wrapped}, timeout=None if live.claimed.is_set() else _POLL_SECONDS)
            if not done:
                await asyncio.to_thread(self._settled_elsewhere, workflow_id, segment, live)
                continue
            try:
                outcome = wrapped.result()
            except BaseException:
                await asyncio.to_thread(self._until_recorded, workflow_id)
                raise
            if outcome.get("status") in PAUSED:
                await asyncio.to_thread(until_waiting, self.engine, workflow_id)
            else:
                await asyncio.to_thread(self._until_recorded, workflow_id)
            return live

    def _until_recorded(self, workflow_id: str) -> None:
        """Wait until the run's final status is written (its outcome is already known here)."""
        with contextlib.suppress(BaseException):  # the caller raises or returns what it already holds
            self.engine.retrieve_workflow(workflow_id).get_result(timeout_seconds=_WAITING_GRACE_SECONDS)

    def _settled_elsewhere(self, workflow_id: str, segment: int, live: LiveSegment) -> bool:
        """True (with `live` resolved) if the segment ended in another process or before this call."""
        if live.claimed.is_set():
            return False
        event = self.engine.get_event(workflow_id, segment_event(segment), timeout_seconds=0)
        status = self.engine.get_workflow_status(workflow_id)
        if live.claimed.is_set():  # the body picked it up meanwhile: its result will come
            return False
        if event is None and status.status not in TERMINAL_STATES:
            return False
        if event is None:
            try:
                self.engine.retrieve_workflow(workflow_id).get_result()
            except BaseException as error:
                live.fail(error)
                return True
        thread_id = thread_id_of(live.config)
        live.output = self._output_from_state(thread_id)
        live.finish(dict(event or {}))
        return True

    def _output_from_state(self, thread_id: str) -> Any:
        state = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        if not isinstance(state.values, dict):
            return state.values
        values: dict[str, Any] = dict(cast(dict[str, Any], state.values))
        if state.interrupts:
            values["__interrupt__"] = list(state.interrupts)
        return values

    # -- workflow body ---------------------------------------------------------------------------

    def _segment_inputs(
        self, thread_id: str, request: dict[str, Any], live: LiveSegment | None
    ) -> tuple[RunnableConfig, dict[str, Any]]:
        config: dict[str, Any]
        if live is not None:
            config = dict(live.config)
            kwargs = dict(live.kwargs)
        else:
            config = dict(request["config"])
            kwargs = dict(request["kwargs"])
        configurable: dict[str, Any] = dict(config.get("configurable") or {})
        configurable["thread_id"] = thread_id
        config["configurable"] = configurable
        return cast(RunnableConfig, config), kwargs

    def _prepare_run(
        self, thread_id: str, command: Any, base: str | None, config: RunnableConfig, continuing: bool = False
    ) -> tuple[Any, RunnableConfig]:
        """What to feed the graph: the input if nothing of this segment is durable yet, else None.

        `continuing`: the segment continues a run its budget stopped, from the last checkpoint.
        """
        if not continuing and self.checkpointer.store.latest_id(thread_id) == base:
            return command, config
        configurable = {k: v for k, v in (config.get("configurable") or {}).items() if k != "checkpoint_id"}
        return None, cast(RunnableConfig, {**config, "configurable": configurable})

    def _outcome(self, thread_id: str, segment: int, output: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        status = "done"
        interrupts: list[dict[str, Any]] = []
        next_nodes: list[str] = []
        static = kwargs.get("interrupt_before") or kwargs.get("interrupt_after")
        static = static or getattr(self.graph, "interrupt_before_nodes", None)
        static = static or getattr(self.graph, "interrupt_after_nodes", None)
        if not isinstance(output, dict) or "__interrupt__" in output or static:
            state = self.graph.get_state({"configurable": {"thread_id": thread_id}})
            interrupts = [{"id": i.id, "value": json_safe(i.value)} for i in state.interrupts]
            next_nodes = list(state.next)
            if interrupts:
                status = "interrupted"
            elif next_nodes:
                status = "paused"
        return {
            "status": status,
            "segment": segment,
            "thread_id": thread_id,
            "checkpoint_id": self.checkpointer.store.latest_id(thread_id),
            "interrupts": interrupts,
            "next": next_nodes,
        }

    def _budget_outcome(self, thread_id: str, segment: int, stop: BudgetReached) -> dict[str, Any]:
        state = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        return {
            "status": _BUDGET,
            "segment": segment,
            "thread_id": thread_id,
            "checkpoint_id": self.checkpointer.store.latest_id(thread_id),
            "interrupts": [],
            "next": list(state.next),
            "reason": stop.reason,
        }

    def _claim_live(self, request: dict[str, Any], workflow_id: str, segment: int) -> LiveSegment | None:
        """The caller's live segment waiting here for this segment, if any (else: from the record)."""
        live = self._live.claim_at(request["token"] if segment == 0 else f"{workflow_id}#{segment}")
        if live is not None:
            live.claimed.set()
        return live

    def _scope(self, workflow_id: str) -> MemoScope:
        return MemoScope(self.checkpointer.store, self.checkpointer.serde, workflow_id)

    # The run's body, once: `_segments` decides what each segment does and yields the durable
    # operations it needs (`_Op`), which `_run_sync` and `_run_async` carry out, blocking or awaited.

    def _segments(self, thread_id: str, request: dict[str, Any]) -> Generator[_Op, Any, dict[str, Any]]:
        from durable_core import current_workflow_id

        workflow_id = current_workflow_id()
        command = decode_value(self.checkpointer.serde, request["input"])
        memos = _MemoUse()
        carried: LiveSegment | None = None  # the caller's live segment, across a budget pause
        for segment in itertools.count():
            continuing = segment > 0 and command is _CONTINUE
            if carried is not None:
                live, carried = carried, None
            else:
                live = self._claim_live(request, workflow_id, segment)
            config, kwargs = self._segment_inputs(thread_id, request, live)
            base = yield _Op(_BASE)
            plan = _Segment(
                thread_id, workflow_id, segment, command, base, config, kwargs, continuing, live, memos
            )
            try:
                outcome = yield _Op(_RUN, plan)
                yield _Op(_EVENT, plan, outcome)
                if outcome["status"] == _BUDGET:
                    yield _Op(_CHECK_BUDGET)  # pauses durably until the budget allows a call, or fails
            except GeneratorExit:
                raise
            except BaseException as error:
                if live is not None:
                    live.fail(error)
                raise
            if outcome["status"] == _BUDGET:
                carried, command = live, _CONTINUE
                continue
            if live is not None:
                live.finish(outcome)
            if outcome["status"] == "done":
                if memos.maybe_left:
                    yield _Op(_FORGET_MEMOS, plan)
                return outcome
            command = command_from(self.checkpointer.serde, (yield _Op(_RESUME)), outcome)
        raise AssertionError("unreachable")

    def _run_sync(self, thread_id: str, request: dict[str, Any]) -> dict[str, Any]:
        from durable_core import set_event, step

        run = running_workflow()
        loop = _Driven(self._segments(thread_id, request))
        while (op := loop.next()) is not None:
            try:
                if op.kind == _BASE:
                    loop.reply(step(name="langgraph.base")(_latest_reader(self.checkpointer, thread_id))())
                elif op.kind == _RUN:
                    plan = op.segment

                    def run_segment() -> dict[str, Any]:
                        return self._segment_sync(plan, run)  # noqa: B023

                    loop.reply(step(name="langgraph.run")(run_segment)())
                elif op.kind == _EVENT:
                    set_event(segment_event(op.segment.index), op.outcome)
                elif op.kind == _CHECK_BUDGET:
                    check_budget()
                elif op.kind == _FORGET_MEMOS:
                    self.checkpointer.store.delete_memos(op.segment.workflow_id)
                else:
                    loop.reply(wait_for_resume())
            except BaseException as error:
                loop.fail(error)
        return loop.result

    async def _run_async(self, thread_id: str, request: dict[str, Any]) -> dict[str, Any]:
        from durable_core import set_event_async, step

        run = running_workflow()
        loop = _Driven(self._segments(thread_id, request))
        while (op := loop.next()) is not None:
            try:
                if op.kind == _BASE:
                    reader = _latest_reader(self.checkpointer, thread_id)

                    async def read_base() -> str | None:
                        return await asyncio.to_thread(reader)  # noqa: B023

                    loop.reply(await step(name="langgraph.base")(read_base)())
                elif op.kind == _RUN:
                    plan = op.segment

                    async def run_segment() -> dict[str, Any]:
                        return await self._segment_async(plan, run)  # noqa: B023

                    loop.reply(await step(name="langgraph.run")(run_segment)())
                elif op.kind == _EVENT:
                    await set_event_async(segment_event(op.segment.index), op.outcome)
                elif op.kind == _CHECK_BUDGET:
                    await check_budget_async()
                elif op.kind == _FORGET_MEMOS:
                    await asyncio.to_thread(self.checkpointer.store.delete_memos, op.segment.workflow_id)
                else:
                    loop.reply(await wait_for_resume_async())
            except BaseException as error:
                loop.fail(error)
        return loop.result

    def _segment_sync(self, plan: _Segment, run: Any) -> dict[str, Any]:
        """The body of step ``langgraph.run``: the graph, from the input or its last checkpoint."""
        payload, run_config = self._prepare_run(
            plan.thread_id, plan.command, plan.base, plan.config, plan.continuing
        )
        live = plan.live
        try:
            with plan.memos.track(self._scope(plan.workflow_id)) as scope, memo_scope(scope), node_usage(run):
                if live is not None and live.sink is not None:
                    output = None
                    for chunk in self.graph.stream(payload, run_config, **plan.kwargs):
                        live.sink.put(chunk)
                else:
                    output = self.graph.invoke(payload, run_config, **plan.kwargs)
        except BudgetReached as stop:
            return self._budget_outcome(plan.thread_id, plan.index, stop)
        if live is not None:
            live.output = output
        return self._outcome(plan.thread_id, plan.index, output, plan.kwargs)

    async def _segment_async(self, plan: _Segment, run: Any) -> dict[str, Any]:
        """`_segment_sync` on the graph's async API (database work in threads)."""
        payload, run_config = await asyncio.to_thread(
            self._prepare_run, plan.thread_id, plan.command, plan.base, plan.config, plan.continuing
        )
        scope = await asyncio.to_thread(self._scope, plan.workflow_id)
        live = plan.live
        try:
            with plan.memos.track(scope), memo_scope(scope), node_usage(run):
                if live is not None and live.sink is not None:
                    output = None
                    async for chunk in self.graph.astream(payload, run_config, **plan.kwargs):
                        live.sink.put(chunk)
                else:
                    output = await self.graph.ainvoke(payload, run_config, **plan.kwargs)
        except BudgetReached as stop:
            return await asyncio.to_thread(self._budget_outcome, plan.thread_id, plan.index, stop)
        if live is not None:
            live.output = output
        return await asyncio.to_thread(self._outcome, plan.thread_id, plan.index, output, plan.kwargs)


_BASE, _RUN, _EVENT, _CHECK_BUDGET, _FORGET_MEMOS, _RESUME = range(6)


@dataclasses.dataclass
class _Segment:
    """One segment of a run: what its ``langgraph.run`` step feeds the graph, and with what."""

    thread_id: str
    workflow_id: str
    index: int
    command: Any
    base: str | None  # the thread's latest checkpoint id before the segment (step ``langgraph.base``)
    config: RunnableConfig
    kwargs: dict[str, Any]
    continuing: bool  # continues a run its budget stopped, from the last checkpoint
    live: LiveSegment | None  # the caller's live segment waiting here, if any
    memos: _MemoUse


class _Op:
    """A durable operation the segment loop needs: record the base (`_BASE`), run the segment's
    step (`_RUN`), publish its outcome (`_EVENT`), wait out the budget (`_CHECK_BUDGET`), delete
    the run's memos (`_FORGET_MEMOS`), or wait for the resume message (`_RESUME`, replied with it)."""

    __slots__ = ("_segment", "kind", "outcome")

    def __init__(
        self, kind: int, segment: _Segment | None = None, outcome: dict[str, Any] | None = None
    ) -> None:
        self.kind = kind
        self._segment = segment
        self.outcome = outcome

    @property
    def segment(self) -> _Segment:
        assert self._segment is not None, "this operation concerns no segment"
        return self._segment


class _Driven:
    """The segment loop as a driver sees it: the next operation, and what it gave back or raised."""

    def __init__(self, segments: Generator[_Op, Any, dict[str, Any]]) -> None:
        self._segments = segments
        self._reply: Any = None
        self._error: BaseException | None = None
        self.result: dict[str, Any] = {}

    def next(self) -> _Op | None:
        """The next operation, or None once the loop returned (its outcome in `result`)."""
        reply, error = self._reply, self._error
        self._reply = self._error = None
        try:
            return self._segments.send(reply) if error is None else self._segments.throw(error)
        except StopIteration as stop:
            self.result = stop.value
            return None

    def reply(self, value: Any) -> None:
        self._reply = value

    def fail(self, error: BaseException) -> None:
        self._error = error


def _latest_reader(checkpointer: DurableCheckpointer, thread_id: str) -> Callable[[], str | None]:
    def read_latest_checkpoint_id() -> str | None:
        return checkpointer.store.latest_id(thread_id)

    return read_latest_checkpoint_id


def _thread_of(status: Any) -> str | None:
    inputs = status.inputs
    if isinstance(inputs, dict):
        args = inputs.get("args") or []
        if args:
            return str(args[0])
        kwargs = inputs.get("kwargs") or {}
        if "thread_id" in kwargs:
            return str(kwargs["thread_id"])
    return None


class _MemoUse:
    """Whether a finished run may have left step memos behind (then they are deleted)."""

    def __init__(self) -> None:
        self.ran_live = False
        self.recorded = False

    @property
    def maybe_left(self) -> bool:
        # A run whose last segment replayed from its record never loaded its memos: clean up blindly.
        return self.recorded or not self.ran_live

    @contextlib.contextmanager
    def track(self, scope: MemoScope) -> Generator[MemoScope]:
        self.ran_live = True
        try:
            yield scope
        finally:
            self.recorded = self.recorded or scope.has_memos


_CONTINUE: Any = object()  # the next segment continues a run its budget stopped (no new input)
