"""A traced durable app that crashes inside step 2, then recovers in a new process.

Usage: python core_tracing_app.py DATABASE_URL MODE SPANS_FILE   (MODE: run | recover)
Spans are appended to SPANS_FILE as JSON lines (name, trace_id, span_id, parent_id, attributes).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

os.environ.pop("OTEL_SDK_DISABLED", None)

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from durable_core import Engine, step, workflow, workflow_options

URL, MODE, SPANS = sys.argv[1:4]


class FileExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(SPANS, "a") as f:
            for s in spans:
                ctx = s.get_span_context()
                f.write(
                    json.dumps(
                        {
                            "name": s.name,
                            "trace_id": f"{ctx.trace_id:032x}",
                            "span_id": f"{ctx.span_id:016x}",
                            "parent_id": f"{s.parent.span_id:016x}" if s.parent else None,
                            "attributes": dict(s.attributes or {}),
                        }
                    )
                    + "\n"
                )
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
trace.set_tracer_provider(provider)


@step()
def work(i: int) -> int:
    if i == 2 and MODE == "run":
        os._exit(1)
    return i


@workflow(name="traced_flow")
def traced_flow() -> int:
    return work(1) + work(2) + work(3)


if __name__ == "__main__":
    with Engine(URL) as engine:
        if MODE == "run":
            with (
                trace.get_tracer("app").start_as_current_span("web request"),
                workflow_options(workflow_id="traced"),
            ):
                traced_flow()
        else:
            print(engine.retrieve_workflow("traced").get_result(timeout_seconds=30))
