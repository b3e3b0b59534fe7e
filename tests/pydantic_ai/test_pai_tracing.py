"""Pydantic AI's own spans (`chat ...`, `execute_tool ...`) keep working inside durable step spans,
without duplicates, in the workflow's trace (issue 10).

Nesting: `workflow <agent>.run` > `invoke_agent <agent>` > `step <agent>.model.request` > `chat <model>`,
and `step <agent>.tool.<name>` > `execute_tool <name>`. `StepSpans` (added by `DurableAgent`) opens the
step span before pydantic-ai's outermost `Instrumentation` capability opens its own; the step adopts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from durable_pydantic_ai import Durability, DurableAgent, StepSpans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pai_support import CallLog, three_tool_agent, unique_name
from pydantic_ai.models.instrumented import InstrumentationSettings

from durable_core import Engine, workflow, workflow_options

pytestmark = pytest.mark.backends("sqlite")


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        node = by_id[parent.span_id]
        names.append(node.name)
        parent = node.parent
    return names


def _traced_agent(
    tracer_provider: TracerProvider, log: CallLog, prefix: str
) -> tuple[str, DurableAgent[None, str]]:
    name = unique_name(prefix)
    agent = three_tool_agent(name, log)
    agent.instrument = InstrumentationSettings(tracer_provider=tracer_provider)
    return name, DurableAgent(agent)


def _assert_step_parents(spans: Sequence[ReadableSpan], name: str) -> None:
    """Every pydantic-ai span sits directly under the step span of the operation it traces."""
    by_id = {s.context.span_id: s for s in spans}
    for span in spans:  # no span points at a parent that was dropped (replayed) or never ended
        if span.parent is not None and span.parent.trace_id == span.context.trace_id:
            assert span.parent.span_id in by_id, f"{span.name} has a parent that was not exported"
    for chat in (s for s in spans if s.name.startswith("chat ")):
        assert chat.parent is not None
        assert by_id[chat.parent.span_id].name == f"step {name}.model.request"
    for tool in (s for s in spans if s.name.startswith("execute_tool ")):
        assert tool.parent is not None
        assert by_id[tool.parent.span_id].name == f"step {name}.tool.{tool.name.split(' ', 1)[1]}"
    for step_span in (s for s in spans if s.name.startswith(f"step {name}.")):
        assert step_span.parent is not None
        assert by_id[step_span.parent.span_id].name == f"invoke_agent {name}"
        assert step_span.attributes is not None
        assert isinstance(step_span.attributes["durable.step.id"], int)
        assert step_span.attributes["durable.step.status"] == "SUCCESS"


def test_framework_spans_nest_under_step_spans(
    engine: Engine, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    tracer_provider, exporter = traced
    log = CallLog()
    name, durable = _traced_agent(tracer_provider, log, "traced")
    with workflow_options(workflow_id="traced-run"):
        durable.run_sync("go")
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    chats = [s for s in spans if s.name.startswith("chat ")]
    tools = [s for s in spans if s.name.startswith("execute_tool ")]
    model_steps = [s for s in spans if s.name == f"step {name}.model.request"]
    tool_steps = [s for s in spans if s.name.startswith(f"step {name}.tool.")]
    assert len(chats) == len(model_steps) == 4  # one of each per model request: no duplicates
    assert len(tools) == len(tool_steps) == 3
    assert [s.attributes["durable.step.id"] for s in sorted(model_steps + tool_steps, key=lambda s: s.start_time or 0)] == [
        1, 2, 3, 4, 5, 6, 7
    ]  # fmt: skip
    _assert_step_parents(spans, name)
    workflow_spans = [s for s in spans if s.name.startswith("workflow ")]
    assert len(workflow_spans) == 1
    assert all(s.context.trace_id == workflow_spans[0].context.trace_id for s in spans)
    assert all("workflow " + f"{name}.run" in _ancestors(s, by_id) for s in chats + tools)


def test_replayed_steps_leave_no_spans(
    engine: Engine, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """A fork from step 5 replays steps 1-4 (2 model requests, 2 tools) and runs 5-7 live: only
    those get step, chat and execute_tool spans, and no exported span has a missing parent."""
    tracer_provider, exporter = traced
    log = CallLog()
    name, durable = _traced_agent(tracer_provider, log, "forked")
    with workflow_options(workflow_id="to-fork"):
        durable.run_sync("go")
    exporter.clear()
    log.calls.clear()
    engine.fork_workflow("to-fork", 5, new_workflow_id="forked-run").get_result()
    assert log.calls == ["model", "tool_c", "model"]  # steps 5, 6, 7 ran; 1-4 came from the record
    spans = exporter.get_finished_spans()
    step_ids = sorted(
        s.attributes["durable.step.id"] for s in spans if s.name.startswith(f"step {name}.") and s.attributes
    )
    assert step_ids == [5, 6, 7]
    assert len([s for s in spans if s.name.startswith("chat ")]) == 2
    assert [s.name for s in spans if s.name.startswith("execute_tool ")] == ["execute_tool tool_c"]
    _assert_step_parents(spans, name)
    workflow_span = next(s for s in spans if s.name.startswith("workflow "))
    replayed = [e for e in workflow_span.events if e.name == "durable.step.replayed"]
    assert len(replayed) == 4


def test_capability_form_with_step_spans(
    engine: Engine, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """`capabilities=[Durability(), StepSpans()]` in the user's own workflow nests the same way."""
    tracer_provider, exporter = traced
    name = unique_name("capform")
    agent = three_tool_agent(name, CallLog())
    agent.instrument = InstrumentationSettings(tracer_provider=tracer_provider)

    @workflow(name=f"{name}.handle")
    async def handle(prompt: str) -> str:
        return (await agent.run(prompt, capabilities=[Durability(), StepSpans()])).output

    with workflow_options(workflow_id="capform-run"):
        asyncio.run(handle("go"))
    spans = exporter.get_finished_spans()
    assert len([s for s in spans if s.name.startswith(f"step {name}.")]) == 7
    assert len([s for s in spans if s.name.startswith("chat ")]) == 4
    _assert_step_parents(spans, name)


def test_a_streamed_model_request_is_one_step_span(
    engine: Engine, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """`run_stream` (streamed requests): one `step <agent>.model.request_stream` span per request,
    recorded, tied to its `chat` span (its child: pydantic-ai consumes the stream in another task
    than the one `chat` is opened in), and no second, unrecorded `model.request` span around it."""
    tracer_provider, exporter = traced
    log = CallLog()
    name, durable = _traced_agent(tracer_provider, log, "streamspans")

    async def stream() -> str:
        async with durable.run_stream("go", run_id="stream-spans") as result:
            return await result.get_output()

    assert asyncio.run(stream()).startswith("done")
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    step_spans = [s for s in spans if s.name.startswith(f"step {name}.")]
    assert sorted(s.name for s in step_spans) == sorted(
        [f"step {name}.model.request_stream"] * 4 + [f"step {name}.tool.tool_{x}" for x in "abc"]
    )
    assert all(
        s.attributes is not None and s.attributes.get("durable.step.recorded") is not False
        for s in step_spans
    )
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == 4
    model_steps = [s for s in step_spans if s.name.endswith(".model.request_stream")]
    assert sorted(id(by_id[s.parent.span_id]) for s in model_steps if s.parent) == sorted(
        id(c) for c in chats
    )
    assert sorted(s.attributes["durable.step.id"] for s in step_spans if s.attributes) == list(range(1, 8))
