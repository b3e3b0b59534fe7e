"""A durable run hands pydantic-ai the same typed values a plain run does, live and replayed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from durable_pydantic_ai import DurableAgent
from pai_support import responses_so_far, unique_name
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from durable_core import Engine

CREATED = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


class Order(BaseModel):
    id: str
    placed: dt.datetime
    total: Decimal


@dataclasses.dataclass
class Stock:
    sku: str
    count: int


def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    # Providers put what they like in `provider_details` (a dict of Any), datetimes included.
    details: dict[str, Any] = {"created": CREATED, "ids": ("a", "b"), "request": responses_so_far(messages)}
    if responses_so_far(messages) == 0:
        calls = [
            ToolCallPart("get_order", {}, tool_call_id="c1"),
            ToolCallPart("get_stock", {}, tool_call_id="c2"),
            ToolCallPart("next_delivery", {}, tool_call_id="c3"),
            ToolCallPart("tracking", {}, tool_call_id="c4"),
        ]
        return ModelResponse(parts=calls, provider_details=details)
    return ModelResponse(parts=[TextPart("done")], provider_details=details)


def typed_agent(name: str) -> Agent[None, str]:
    agent = Agent(FunctionModel(model), name=name)

    @agent.tool_plain
    def get_order() -> Order:  # pyright: ignore[reportUnusedFunction]
        return Order(id="o-1", placed=dt.datetime(2023, 5, 6, 7, 8), total=Decimal("12.50"))

    @agent.tool_plain
    def get_stock() -> Stock:  # pyright: ignore[reportUnusedFunction]
        return Stock("sku-9", 3)

    @agent.tool_plain
    def next_delivery() -> dt.date:  # pyright: ignore[reportUnusedFunction]
        return dt.date(2024, 2, 29)

    @agent.tool_plain
    def tracking() -> tuple[uuid.UUID, bytes]:  # pyright: ignore[reportUnusedFunction]
        return uuid.UUID(int=7), b"parcel"

    return agent


def _normalized(messages: list[ModelMessage]) -> list[ModelMessage]:
    """Messages with what differs between any two runs (ids, clocks) blanked out."""
    out: list[ModelMessage] = []
    for message in messages:
        parts = [
            dataclasses.replace(part, timestamp=CREATED) if hasattr(part, "timestamp") else part
            for part in message.parts
        ]
        out.append(
            dataclasses.replace(
                message,
                parts=parts,  # pyright: ignore[reportArgumentType]
                timestamp=CREATED,
                run_id="run",
                conversation_id="conversation",
            )
        )
    return out


async def test_live_and_replayed_messages_equal_a_plain_runs(engine: Engine) -> None:
    name = unique_name("typed")
    plain = await typed_agent(f"{name}-plain").run("order status")
    durable_agent = DurableAgent(typed_agent(name))

    live = await durable_agent.run("order status", run_id="typed-run")
    again = await durable_agent.run("order status", run_id="typed-run")  # the recorded result
    fork = await engine.fork_workflow_async("typed-run", 3)  # replays both model requests' records
    await fork.get_result_async(timeout_seconds=30)
    forked = await durable_agent.run("order status", run_id=fork.workflow_id)

    response = live.all_messages()[1]
    assert isinstance(response, ModelResponse)
    assert response.provider_details == {"created": CREATED, "ids": ("a", "b"), "request": 0}
    returns = {part.tool_name: part.content for part in live.all_messages()[2].parts}  # type: ignore[union-attr]
    assert returns == {
        "get_order": Order(id="o-1", placed=dt.datetime(2023, 5, 6, 7, 8), total=Decimal("12.50")),
        "get_stock": Stock("sku-9", 3),
        "next_delivery": dt.date(2024, 2, 29),
        "tracking": (uuid.UUID(int=7), b"parcel"),
    }
    assert _normalized(live.all_messages()) == _normalized(plain.all_messages())
    assert again.all_messages() == live.all_messages()
    assert _normalized(forked.all_messages()) == _normalized(live.all_messages())


async def test_replay_in_a_fresh_decode_is_exact(engine: Engine) -> None:
    """The recorded step outputs alone (what a recovering process reads) rebuild the typed values."""
    name = unique_name("exact")
    durable_agent = DurableAgent(typed_agent(name))
    live = await durable_agent.run("order status", run_id="exact-run")

    steps = engine.list_steps("exact-run")
    assert [s.name.split(".", 1)[1] for s in steps][:2] == ["model.request", "tool.get_order"]
    # A fork from the last step replays every tool step and the first model request from the record.
    fork = await engine.fork_workflow_async("exact-run", len(steps))
    data = await fork.get_result_async(timeout_seconds=30)
    assert data["output"] == "done"
    forked = await durable_agent.run("order status", run_id=fork.workflow_id)
    assert _normalized(forked.all_messages()) == _normalized(live.all_messages())


async def test_a_tool_result_that_cannot_be_recorded_fails_its_first_run(engine: Engine) -> None:
    class Opaque:
        pass

    def call_once(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if responses_so_far(messages) == 0:
            return ModelResponse(parts=[ToolCallPart("opaque", {}, tool_call_id="o1")])
        return ModelResponse(parts=[TextPart("done")])

    agent = Agent(FunctionModel(call_once), name=unique_name("opaque"))

    @agent.tool_plain
    def opaque() -> Any:  # pyright: ignore[reportUnusedFunction]
        return Opaque()

    with pytest.raises(UserError, match="recorded"):
        await DurableAgent(agent).run("go", run_id="opaque-run")
