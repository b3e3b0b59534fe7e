"""Streamed model requests whose events reach the run while the model streams.

Pydantic AI's durability toolkit runs a streamed model request inside its durable unit, which
consumes the whole stream there, and hands the run the finished response, replayed as one event
per part: the right thing when the unit runs in another process (a Temporal activity). Here a step
runs in the process of the run that called it, so its events can reach that run as they arrive:

- `LiveStreamModel` wraps the toolkit's durable model for one model request. Its `request_stream`
  starts the request's step in a task and hands the run a `LiveStreamedResponse` at once.
- Inside the step, the capability's in-step event handler (`Durability._model_stream_event_handler`)
  includes the step's `StreamSink`, which passes each event of the live model stream to the
  `LiveStreamedResponse` as it arrives; the run's consumer (`run_stream().stream_text()`,
  `node.stream()`, an `event_stream_handler`) iterates it live.
- When the step has ended, the response the run gets (`get()`) is the step's own result: the same
  object it recorded, and what a replay returns. A replayed step streams nothing live; its
  recorded response is replayed as the toolkit does, one event per part.

Only a first attempt streams live: if an attempt fails after its events reached the run and the step
retries (a model step with `max_attempts` > 1), the later attempt's events are not passed on, and
the response the run gets is still the step's result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pydantic_ai.messages import (
    AgentStreamEvent,
    FinalResultEvent,
    ModelMessage,
    ModelResponse,
    ModelResponseStreamEvent,
)
from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import RunContext
from pydantic_ai.usage import RequestUsage

from ._run import retrieve_exception

__all__ = ["LiveStreamModel", "LiveStreamedResponse", "StreamSink", "current_sink"]

_DONE = object()
"""Put on a sink's queue once the step has ended (its response, or its error, is then known)."""

_sink: ContextVar[StreamSink | None] = ContextVar("durable_pydantic_ai_stream_sink", default=None)


def current_sink() -> StreamSink | None:
    """The sink of the streamed model request whose step is running here, if its run streams live."""
    return _sink.get()


class StreamSink:
    """Carries the events of a model stream, inside its step, to the run that iterates it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.forwarded = False
        self._closed = False

    async def handle(self, ctx: RunContext[Any], events: AsyncIterable[AgentStreamEvent]) -> None:
        """The in-step event handler: passes each event on (this attempt's, unless an earlier one did)."""
        if self.forwarded:
            self._closed = True  # a retry after events reached the run: its events would repeat them
        async for event in events:
            if not self._closed:
                self.forwarded = True
                self.queue.put_nowait(event)


class LiveStreamedResponse(StreamedResponse):
    """The stream a run iterates while its model request's step streams (see the module docstring)."""

    def __init__(
        self,
        *,
        model_request_parameters: ModelRequestParameters,
        sink: StreamSink,
        opened: asyncio.Future[StreamedResponse],
        model_name: str,
        provider_name: str | None,
        provider_url: str | None,
    ) -> None:
        super().__init__(model_request_parameters)
        self._sink = sink
        self._opened = opened
        self._completed: StreamedResponse | None = None
        self._model_name = model_name
        self._provider_name = provider_name
        self._provider_url = provider_url
        self._started_at = datetime.now(tz=UTC)

    def __aiter__(self) -> AsyncIterator[ModelResponseStreamEvent]:
        # The live events come from the model's own stream, part ends and final result included,
        # so they are passed on as they are, as pydantic-ai does for events captured in a unit.
        if self._event_iterator is None:
            self._event_iterator = self._events()
        return self._event_iterator

    async def _events(self) -> AsyncIterator[ModelResponseStreamEvent]:
        while (event := await self._sink.queue.get()) is not _DONE:
            if isinstance(event, FinalResultEvent):
                self.final_result_event = event
            else:
                self._parts_manager.apply_event(event)
            self._first_chunk_monotonic = self._first_chunk_monotonic or time.perf_counter()
            yield event
        completed = await self._opened  # the step's error, if it failed, is raised here
        if self._sink.forwarded:
            async for _ in completed:  # what the run gets is the step's result; a partial failure raises
                pass
        else:  # a replayed step (or one whose stream produced nothing): its recorded response, per part
            self._completed = completed  # read while it replays, as pydantic-ai reads a replayed stream
            async for event in completed:
                yield event
        self.final_result_event = self.final_result_event or completed.final_result_event
        self._completed = completed
        self._finished = True

    async def _get_event_iterator(self) -> AsyncIterator[ModelResponseStreamEvent]:  # pragma: no cover
        async for event in self._events():
            yield event

    async def close_stream(self) -> None:
        """Nothing to close here: the step owns the model's stream and ends it as it would have (a
        consumer's `cancel()` reaches this), and the step's record is what a replay returns."""

    def get(self) -> ModelResponse:
        if self._completed is not None:
            return self._completed.get()
        return super().get()  # what has arrived so far

    @property
    def usage(self) -> RequestUsage:
        return self._completed.usage if self._completed is not None else super().usage

    @property
    def model_name(self) -> str:
        return self._completed.model_name if self._completed is not None else self._model_name

    @property
    def provider_name(self) -> str | None:
        return self._completed.provider_name if self._completed is not None else self._provider_name

    @property
    def provider_url(self) -> str | None:
        return self._completed.provider_url if self._completed is not None else self._provider_url

    @property
    def timestamp(self) -> datetime:
        return self._completed.timestamp if self._completed is not None else self._started_at


class LiveStreamModel(WrapperModel):
    """The toolkit's durable model for one request, whose streamed requests stream live."""

    def __init__(self, durable: Model) -> None:
        super().__init__(durable)

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncGenerator[StreamedResponse]:
        sink = StreamSink()
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[StreamedResponse] = loop.create_future()
        release = asyncio.Event()

        async def run_step() -> None:
            # The durable model's `request_stream` runs the request's step to its end, then hands
            # over the step's result as a completed stream: kept open until the run is done with it.
            try:
                async with self.wrapped.request_stream(
                    messages, model_settings, model_request_parameters, run_context
                ) as completed:
                    opened.set_result(completed)
                    sink.queue.put_nowait(_DONE)
                    await release.wait()
            except BaseException as error:
                if not opened.done():
                    opened.set_exception(error)
                    sink.queue.put_nowait(_DONE)
                raise

        token = _sink.set(sink)
        try:
            task = asyncio.ensure_future(run_step())  # the step runs in a copy of this context
        finally:
            _sink.reset(token)
        task.add_done_callback(retrieve_exception)
        opened.add_done_callback(retrieve_exception)
        stream = LiveStreamedResponse(
            model_request_parameters=model_request_parameters,
            sink=sink,
            opened=opened,
            model_name=self.wrapped.model_name,
            provider_name=self.wrapped.system,
            provider_url=self.wrapped.base_url,
        )
        try:
            yield stream
        except BaseException:
            task.cancel()
            raise
        finally:
            release.set()
            await asyncio.wait({task})  # the step ends (and is recorded) before the request does

    def _with_serving_wrapper(self, wrap: Callable[[Model], Model]) -> Model:
        served = self.wrapped._with_serving_wrapper(wrap)  # pyright: ignore[reportPrivateUsage]
        return self if served is self.wrapped else LiveStreamModel(served)
