"""Streamed text reaches the caller as the model produces it, token by token, not when its step ends.

Each test's model streams its answer in chunks and, after the first chunk, waits until the caller
has seen that chunk (a gate the caller opens). If text only reached the caller once the model
request's step had ended, the model would wait for a caller that cannot see anything yet: the gate
times out and the request fails. The response the run keeps is still the step's record, so a replay
returns the same text and messages without calling the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from durable_pydantic_ai import Durability, DurableAgent
from pai_support import unique_name
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, PartDeltaEvent, TextPart, TextPartDelta
from pydantic_ai.models.function import AgentInfo, FunctionModel

from durable_core import Engine, workflow

CHUNKS = ["Hel", "lo, ", "wor", "ld"]
GATE_SECONDS = 10.0


class GatedModel:
    """A model that streams `CHUNKS`, pausing after the first until the caller opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls = 0
        self.seen_before_end: list[str] = []

    async def stream(self, messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        self.calls += 1
        yield CHUNKS[0]
        try:
            await asyncio.wait_for(self.gate.wait(), GATE_SECONDS)
        except TimeoutError:
            raise AssertionError("the caller never saw the first chunk while the model streamed") from None
        for chunk in CHUNKS[1:]:
            yield chunk

    def respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.calls += 1
        return ModelResponse(parts=[TextPart("".join(CHUNKS))])

    def agent(self, name: str, **kwargs: object) -> Agent[None, str]:
        return Agent(FunctionModel(self.respond, stream_function=self.stream), name=name, **kwargs)  # type: ignore[arg-type]


async def _stream_text(stream_cm: object, model: GatedModel) -> tuple[list[str], list[ModelMessage]]:
    chunks: list[str] = []
    async with stream_cm as stream:  # type: ignore[attr-defined]
        async for chunk in stream.stream_text(delta=True, debounce_by=None):
            chunks.append(chunk)
            model.gate.set()  # the first chunk arrived while the model was still streaming
        messages = stream.all_messages()
    return chunks, messages


async def test_run_stream_outside_a_workflow_yields_text_as_it_arrives(engine: Engine) -> None:
    model = GatedModel()
    durable_agent = DurableAgent(model.agent(unique_name("tokens")))

    chunks, messages = await _stream_text(durable_agent.run_stream("hi", run_id="tokens"), model)

    assert "".join(chunks) == "Hello, world"
    assert chunks[0] == "Hel" and len(chunks) > 1  # not one chunk per part at the step's end
    assert model.calls == 1
    assert [s.name.split(".", 1)[1] for s in engine.list_steps("tokens")] == ["model.request_stream"]
    assert engine.retrieve_workflow("tokens").get_status().status == "SUCCESS"

    # The record replays what the live run kept, without calling the model.
    replayed = await durable_agent.run("hi", run_id="tokens")
    assert replayed.output == "Hello, world"
    assert replayed.all_messages() == messages
    chunks_again, messages_again = await _stream_text(durable_agent.run_stream("hi", run_id="tokens"), model)
    assert "".join(chunks_again) == "Hello, world" and messages_again == messages
    assert model.calls == 1


async def test_iter_node_stream_yields_model_events_as_they_arrive(engine: Engine) -> None:
    model = GatedModel()
    durable_agent = DurableAgent(model.agent(unique_name("iternode")))
    deltas: list[str] = []

    async with durable_agent.iter("hi", run_id="iter-tokens") as run:
        async for node in run:
            if Agent.is_model_request_node(node):
                async with node.stream(run.ctx) as events:
                    async for event in events:
                        if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                            deltas.append(event.delta.content_delta)
                        model.gate.set()

    assert run.result is not None and run.result.output == "Hello, world"
    assert deltas == CHUNKS[1:]  # the first chunk starts the part; each later one arrives as a delta
    assert model.calls == 1


async def test_run_stream_in_a_workflow_with_the_capability_yields_text_as_it_arrives(engine: Engine) -> None:
    model = GatedModel()
    name = unique_name("captokens")
    agent = model.agent(name, capabilities=[Durability()])

    chunk_counts: list[int] = []

    @workflow(name=f"{name}.wf")
    async def streaming() -> str:
        chunks, _ = await _stream_text(agent.run_stream("hi"), model)
        chunk_counts.append(len(chunks))
        return "".join(chunks)

    handle = await engine.start_workflow_async(streaming)
    assert await handle.get_result_async() == "Hello, world"
    assert chunk_counts[0] > 1  # live, chunk by chunk
    assert [s.name.split(".", 1)[1] for s in engine.list_steps(handle.workflow_id)] == [
        "model.request_stream"
    ]

    # A fork from the request replays the recorded answer; the model is not called again.
    fork = await engine.fork_workflow_async(handle.workflow_id, 2)
    assert await fork.get_result_async(timeout_seconds=30) == "Hello, world"
    assert model.calls == 1
    assert chunk_counts[1] == 1  # a replayed request streams its recorded part in one chunk


async def test_a_failing_stream_reaches_the_caller_after_the_text_it_produced(engine: Engine) -> None:
    name = unique_name("failing")

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        yield "partial "
        raise RuntimeError("provider dropped the stream")

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise AssertionError("run_stream makes streamed requests")

    durable_agent = DurableAgent(Agent(FunctionModel(respond, stream_function=stream), name=name))
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="provider dropped the stream"):
        async with durable_agent.run_stream("hi", run_id="failing") as result:
            async for chunk in result.stream_text(delta=True, debounce_by=None):
                seen.append(chunk)
    assert seen == ["partial "]
    assert engine.retrieve_workflow("failing").get_status().status == "ERROR"


async def test_cancelling_a_stream_ends_the_run_as_a_plain_agents_and_cancels_its_workflow(
    engine: Engine,
) -> None:
    model = GatedModel()
    durable_agent = DurableAgent(model.agent(unique_name("cancel")))
    async with durable_agent.run_stream("hi", run_id="cancelled-stream") as stream:
        async for chunk in stream.stream_text(delta=True, debounce_by=None):
            assert chunk == "Hel"
            await stream.cancel()
            model.gate.set()
            break
        assert stream.cancelled
        last = stream.all_messages()[-1]
    # As with a plain agent: the response ends with the text received so far, marked interrupted.
    assert isinstance(last, ModelResponse) and last.state == "interrupted"
    assert [part.content for part in last.parts if isinstance(part, TextPart)] == ["Hel"]
    # The run did not finish, so its workflow is cancelled (as when iter() is left early).
    assert engine.retrieve_workflow("cancelled-stream").get_status().status == "CANCELLED"
