"""Pydantic AI's own spans (`chat ...`, `execute_tool ...`) keep working beside durable spans, without
duplicates, in the workflow's trace.

Nesting: pydantic-ai's instrumentation wraps the model and tool calls from the outside, and the
durability capability runs inside them, so each framework span contains exactly one durable step
span (`chat` > `step <agent>.model.request`), the reverse of the order issue 10 asked for.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from durable_pydantic_ai import DurableAgent
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from pai_support import CallLog, three_tool_agent, unique_name
from pydantic_ai.models.instrumented import InstrumentationSettings

from durable_core import Engine, workflow_options

pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = trace._TRACER_PROVIDER
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace.set_tracer_provider(tracer_provider)
    try:
        yield tracer_provider, exporter
    finally:
        trace._TRACER_PROVIDER = previous
        trace._TRACER_PROVIDER_SET_ONCE = Once()


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        node = by_id[parent.span_id]
        names.append(node.name)
        parent = node.parent
    return names


def test_framework_spans_nest_under_step_spans(
    engine: Engine, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    tracer_provider, exporter = provider
    log = CallLog()
    name = unique_name("traced")
    agent = three_tool_agent(name, log)
    agent.instrument = InstrumentationSettings(tracer_provider=tracer_provider)
    durable = DurableAgent(agent)
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
    assert sorted(by_id[s.parent.span_id].name for s in model_steps if s.parent) == [chats[0].name] * 4
    for step_span in tool_steps:
        assert step_span.parent is not None
        assert by_id[step_span.parent.span_id].name == "execute_tool " + step_span.name.rsplit(".", 1)[1]
    workflow_spans = [s for s in spans if s.name.startswith("workflow ")]
    assert len(workflow_spans) == 1
    assert all(s.context.trace_id == workflow_spans[0].context.trace_id for s in spans)
    assert all("workflow " + f"{name}.run" in _ancestors(s, by_id) for s in chats + tools)
