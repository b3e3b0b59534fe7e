# pyright: reportOptionalMemberAccess=false, reportOptionalCall=false
# (opentelemetry is optional: every use below is guarded by tracing_enabled() / _HAVE_OTEL)
"""OpenTelemetry spans for workflows and steps, and workflow/step ids on log records.

Optional: with `opentelemetry-api` absent, or present but with no tracer provider set, every
hook here is a cheap no-op. With a provider set:

- one span per workflow execution (``workflow <name>``), parented by the caller's span, or,
  for work picked up later (a queue worker, a recovery after a crash), by the trace context
  recorded in the workflow's row when it was started;
- one span per live step (``step <name>``), a child of its workflow's span; a step whose
  outcome is replayed from the record gets only an event on the workflow span;
- errors recorded on the span that raised them;
- `early_step_span(name)`: an integration opens the span of the step it is about to run before
  its framework opens spans of its own around that step (so `step` > framework span > ...).

Logging: ``logging.getLogger().addFilter(durable_core.WorkflowLogFilter())`` (or on a handler)
adds ``workflow_id`` and ``step_id`` attributes (None outside workflows) to every record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._status import WorkflowState

if TYPE_CHECKING:
    from ._run import WorkflowRun

__all__ = [
    "WorkflowLogFilter",
    "capture_context",
    "early_step_span",
    "step_span",
    "tracing_enabled",
    "workflow_span",
]

try:  # optional dependency
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import ProxyTracerProvider, Status, StatusCode
except ImportError:  # pragma: no cover - exercised when the extra is not installed
    otel_context = propagate = trace = None  # type: ignore[assignment]
    ProxyTracerProvider = Status = StatusCode = None  # type: ignore[assignment,misc]
_HAVE_OTEL = trace is not None

_current_step: ContextVar[int | None] = ContextVar("durable_step_id", default=None)
_workflow_span: ContextVar[Any] = ContextVar("durable_workflow_span", default=None)


class _EarlySpan:
    """A step span opened before its step starts, waiting for the step to adopt it."""

    __slots__ = ("adopted", "replayed", "span")

    def __init__(self, span: Any) -> None:
        self.span = span
        self.adopted = False
        self.replayed = False


_early_span: ContextVar[_EarlySpan | None] = ContextVar("durable_early_step_span", default=None)
_INSTRUMENTATION = "durable_core"
# (provider, its tracer for durable_core): the SDK builds a new Tracer on every get_tracer()
# call, so one is kept per provider; a new provider gets a new tracer.
_tracer_cache: tuple[Any, Any] = (None, None)


def tracing_enabled() -> bool:
    """True when OpenTelemetry is installed and a real tracer provider has been set: the
    condition under which workflows and steps get spans."""
    if not _HAVE_OTEL:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, ProxyTracerProvider | trace.NoOpTracerProvider)


def _tracer() -> Any:
    global _tracer_cache
    provider = trace.get_tracer_provider()
    cached_provider, tracer = _tracer_cache
    if cached_provider is not provider:
        tracer = provider.get_tracer(_INSTRUMENTATION)
        _tracer_cache = (provider, tracer)
    return tracer


def capture_context() -> str | None:
    """The caller's trace context (W3C headers as JSON) to record with a workflow it starts."""
    if not tracing_enabled():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier) if carrier else None


@contextmanager
def workflow_span(
    ctx: WorkflowRun, trace_context: str | None, *, queue_name: str | None, recovery_attempts: int
) -> Generator[Any, None, None]:
    if not tracing_enabled():
        yield None
        return
    parent = otel_context.get_current()
    if trace_context and trace.get_current_span(parent).get_span_context().is_valid is False:
        parent = propagate.extract(json.loads(trace_context))
    tracer = _tracer()
    attributes: dict[str, Any] = {
        "durable.workflow.id": ctx.workflow_id,
        "durable.workflow.name": ctx.name,
        "durable.executor.id": ctx.executor_id,
        "durable.recovery_attempt": recovery_attempts,
        "durable.replaying": bool(ctx.recorded),
    }
    if queue_name:
        attributes["durable.queue.name"] = queue_name
    with tracer.start_as_current_span(
        f"workflow {ctx.name}",
        context=parent,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        token = _workflow_span.set(span)
        try:
            yield span
        finally:
            _workflow_span.reset(token)


def end_workflow_span(span: Any, status: str, error: BaseException | None) -> None:
    if span is None:
        return
    span.set_attribute("durable.workflow.status", str(status))  # a plain str, not the StrEnum
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


@contextmanager
def early_step_span(name: str) -> Generator[None, None, None]:
    """Open the span of the next step started inside this block now, before the step itself.

    For integrations whose framework wraps an operation in spans of its own before the operation
    reaches a step (Pydantic AI's `chat ...` and `execute_tool ...` spans): with the step span
    open first, those spans become its children instead of its parents. The first step started
    inside the block adopts the span (its id, attempts, status and error). If that step's outcome
    is replayed from the record, the span is dropped (never ended, so never exported), as the
    frameworks do with their own spans of replayed work. If no step starts, the span still ends,
    marked `durable.step.recorded = False`, so the spans opened under it keep their parent.

    Outside a traced workflow it does nothing.

    Example:
        ```python
        with early_step_span("support.model.request"):
            with tracer.start_as_current_span("chat gpt-5"):   # the framework's span
                response = await call_model_step(...)          # a durable step
        ```
    """
    workflow_span = _workflow_span.get()
    if not _HAVE_OTEL or workflow_span is None:
        yield
        return
    tracer = _tracer()
    span = tracer.start_span(
        f"step {name}",
        attributes={"durable.step.name": name, "durable.replayed": False},
        record_exception=False,
        set_status_on_exception=False,
    )
    early = _EarlySpan(span)
    token = _early_span.set(early)
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            yield
    except BaseException as exc:
        if not early.adopted:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        _early_span.reset(token)
        if not early.replayed:
            if not early.adopted:
                span.set_attribute("durable.step.recorded", False)
            span.end()


def _adopt_early_span(name: str, attributes: dict[str, Any]) -> Any:
    early = _early_span.get()
    if early is None or early.adopted:
        return None
    early.adopted = True
    span = early.span
    span.update_name(f"step {name}")
    span.set_attributes(attributes)
    return span


class _StepIdScope:
    """An untraced step's scope: only its id, for the log filter (a class: steps run it every time)."""

    __slots__ = ("step_id", "token")

    def __init__(self, step_id: int) -> None:
        self.step_id = step_id

    def __enter__(self) -> None:
        self.token = _current_step.set(self.step_id)

    def __exit__(self, *_exc: object) -> None:
        _current_step.reset(self.token)


def step_span(ctx: WorkflowRun, step_id: int, name: str) -> AbstractContextManager[Any]:
    """The span of a live step (None when untraced); also makes the step id visible to the log filter."""
    if not _HAVE_OTEL or _workflow_span.get() is None:
        return _StepIdScope(step_id)
    return _traced_step_span(ctx, step_id, name)


@contextmanager
def _traced_step_span(ctx: WorkflowRun, step_id: int, name: str) -> Generator[Any, None, None]:
    token = _current_step.set(step_id)
    try:
        attributes: dict[str, Any] = {
            "durable.workflow.id": ctx.workflow_id,
            "durable.workflow.name": ctx.name,
            "durable.executor.id": ctx.executor_id,
            "durable.step.id": step_id,
            "durable.step.name": name,
            "durable.replayed": False,
        }
        early = _adopt_early_span(name, attributes)
        if early is not None:
            # Steps nested in this one open spans of their own.
            inner = _early_span.set(None)
            try:
                yield early
            finally:
                _early_span.reset(inner)
            return
        tracer = _tracer()
        with tracer.start_as_current_span(
            f"step {name}",
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span
    finally:
        _current_step.reset(token)


def end_step_span(span: Any, attempts: int, error: BaseException | None) -> None:
    if span is None:
        return
    span.set_attribute("durable.step.attempts", attempts)
    span.set_attribute(
        "durable.step.status", (WorkflowState.ERROR if error is not None else WorkflowState.SUCCESS).value
    )
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def replayed_step(step_id: int, name: str) -> None:
    """A step answered from the record: an event on the workflow span, not a span of its own."""
    early = _early_span.get()
    if early is not None and not early.adopted:
        early.adopted = early.replayed = True
    span = _workflow_span.get()
    if span is not None:
        span.add_event(
            "durable.step.replayed",
            {"durable.step.id": step_id, "durable.step.name": name, "durable.replayed": True},
        )


class WorkflowLogFilter(logging.Filter):
    """Adds `workflow_id` and `step_id` to log records (None outside workflows and steps).

    Example:
        ```python
        handler = logging.StreamHandler()
        handler.addFilter(WorkflowLogFilter())
        handler.setFormatter(logging.Formatter("%(workflow_id)s/%(step_id)s %(message)s"))
        ```
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from ._context import _current

        ctx = _current.get()
        record.workflow_id = ctx.workflow_id if ctx is not None else None
        record.step_id = _current_step.get()
        return True
