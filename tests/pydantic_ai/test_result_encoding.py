"""A run's recorded result replays exactly what the live run returned, values JSON loses included."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from durable_pydantic_ai import DurableAgent
from durable_pydantic_ai._codec import FIDELITY
from durable_pydantic_ai._inputs import decode_result, encode_result
from pai_support import responses_so_far, unique_name
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.run import AgentRunResult

from durable_core import Engine

AT = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


class Receipt(BaseModel):
    number: int
    issued: dt.datetime


class Report(BaseModel):
    title: str
    extra: dict[str, Any]


def _agent(
    *,
    response_details: dict[str, Any] | None = None,
    text_details: dict[str, Any] | None = None,
    call_details: dict[str, Any] | None = None,
    tool_value: Any = "plain",
    final: str = "done",
) -> Agent[None, str]:
    """One tool call, then a text answer; each argument puts a value into one position of the result."""

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if responses_so_far(messages) == 0:
            call = ToolCallPart(
                "lookup", {"q": [1, 2.5, None, True]}, tool_call_id="c1", provider_details=call_details
            )
            return ModelResponse(parts=[call], provider_details=response_details)
        return ModelResponse(parts=[TextPart(final, provider_details=text_details)])

    agent = Agent(FunctionModel(model), name=unique_name("enc"))

    @agent.tool_plain
    def lookup(q: list[Any]) -> Any:  # pyright: ignore[reportUnusedFunction]
        return tool_value

    return agent


def _run(agent: Agent[None, Any], output_type: object = str) -> tuple[AgentRunResult[Any], dict[str, Any]]:
    result = agent.run_sync("go")
    return result, json.loads(json.dumps(encode_result(result, output_type)))


def _assert_replayed_exactly(
    result: AgentRunResult[Any], recorded: dict[str, Any], output_type: object
) -> None:
    replayed = decode_result(recorded, output_type)
    assert replayed.output == result.output
    assert type(replayed.output) is type(result.output)
    assert replayed.all_messages() == result.all_messages()


NEEDS_FIX: dict[str, Callable[[], Agent[None, str]]] = {
    "datetime in a response's provider_details, in a list in a dict": lambda: _agent(
        response_details={"meta": [{"created": AT}]}
    ),
    "datetime in a text part's provider_details": lambda: _agent(text_details={"at": AT}),
    "tuple in a tool call's provider_details": lambda: _agent(call_details={"ids": ("a", "b")}),
    "pydantic model returned by a tool": lambda: _agent(tool_value=Receipt(number=7, issued=AT)),
    "tuple returned by a tool": lambda: _agent(tool_value=(1, "two")),
    "datetime in a dict in a list returned by a tool": lambda: _agent(tool_value={"rows": [{"at": AT}]}),
    "plain JSON a tool returned that reads back as a file item": lambda: _agent(
        tool_value=[{"kind": "binary", "data": "aGk=", "media_type": "text/plain"}]
    ),
}


@pytest.mark.parametrize("case", list(NEEDS_FIX))
def test_a_value_json_loses_is_recorded_and_replayed_exactly(case: str) -> None:
    result, recorded = _run(NEEDS_FIX[case]())

    assert recorded.get(FIDELITY), "the read-back was skipped for a value JSON does not give back"
    _assert_replayed_exactly(result, recorded, str)


def test_the_returned_file_lookalike_is_replayed_as_the_list_the_tool_returned() -> None:
    value = [{"kind": "binary", "data": "aGk=", "media_type": "text/plain"}]
    _, recorded = _run(_agent(tool_value=value))

    replayed = decode_result(recorded, str)
    part = replayed.all_messages()[2].parts[0]
    assert isinstance(part, ToolReturnPart)
    assert part.content == value


def _report_agent(report: Report, tool_value: Any = "plain") -> Agent[None, Report]:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if responses_so_far(messages) == 0:
            return ModelResponse(parts=[ToolCallPart("lookup", {}, tool_call_id="c1")])
        tool = info.output_tools[0]
        return ModelResponse(
            parts=[ToolCallPart(tool.name, report.model_dump(mode="json"), tool_call_id="o1")]
        )

    agent = Agent(FunctionModel(model), name=unique_name("report"), output_type=Report)

    @agent.tool_plain
    def lookup() -> Any:  # pyright: ignore[reportUnusedFunction]
        return tool_value

    @agent.output_validator
    def keep_the_live_values(output: Report) -> Report:  # pyright: ignore[reportUnusedFunction]
        return report  # the live output holds what its JSON may not (a datetime where it holds a string)

    return agent


@pytest.mark.parametrize(
    "tool_value", ["plain", ("a", "tuple")], ids=["plain messages", "messages with a fix"]
)
def test_a_datetime_inside_a_structured_output_is_recorded_and_replayed_exactly(tool_value: Any) -> None:
    report = Report(title="t", extra={"when": [{"at": AT}], "n": 1})
    result = _report_agent(report, tool_value).run_sync("go")
    recorded = json.loads(json.dumps(encode_result(result, Report)))

    assert recorded.get(FIDELITY)
    _assert_replayed_exactly(result, recorded, Report)
    assert decode_result(recorded, Report).output.extra["when"][0]["at"] == AT


def test_a_run_of_plain_values_records_no_fixes_and_replays_exactly() -> None:
    result, recorded = _run(
        _agent(response_details={"n": [1, {"ok": None}]}, tool_value={"rows": [1, 2.5, "x", None]})
    )

    assert FIDELITY not in recorded
    _assert_replayed_exactly(result, recorded, str)


def test_a_value_with_no_faithful_json_still_fails_the_recording() -> None:
    agent = _agent(response_details={"score": math.nan})
    result = agent.run_sync("go")

    with pytest.raises(UserError, match="cannot be recorded"):
        encode_result(result, str)


async def test_a_durable_run_replays_its_recorded_result_exactly(engine: Engine) -> None:
    durable = DurableAgent(_agent(response_details={"meta": [{"created": AT}]}, tool_value=(1, "two")))

    live = await durable.run("go", run_id="enc-fix-run")
    again = await durable.run("go", run_id="enc-fix-run")  # the recorded result

    assert again.output == live.output
    assert again.all_messages() == live.all_messages()
    response = again.all_messages()[1]
    assert isinstance(response, ModelResponse)
    assert response.provider_details == {"meta": [{"created": AT}]}
