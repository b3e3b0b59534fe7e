"""durable_core: durable workflows and steps checkpointed to SQLite or PostgreSQL.

Example:
    ```python
    from durable_core import Engine, step, workflow

    @step()
    def fetch(url: str) -> str: ...

    @workflow()
    def crawl(urls: list[str]) -> int:
        return sum(len(fetch(u)) for u in urls)

    with Engine("sqlite:///crawl.db"):
        crawl(["https://example.com"])
    ```
"""

from ._comms import (
    close_stream,
    close_stream_async,
    current_workflow_id,
    get_event,
    get_event_async,
    recv,
    recv_async,
    send,
    send_async,
    set_event,
    set_event_async,
    sleep,
    sleep_async,
    write_stream,
    write_stream_async,
)
from ._context import in_workflow
from ._current import (
    current_workflow_started_at,
    execution_state,
    pending_workflow_id,
    recorded_steps,
)
from ._engine import Engine, current_engine
from ._handle import WorkflowHandle
from ._options import workflow_options
from ._queues import Queue, RateLimit
from ._records import StepInfo, WaitInfo, WorkflowStatus
from ._serialization import JsonSerializer, PickleSerializer, Serializer
from ._status import TERMINAL_STATES, WorkflowState
from ._tracing import WorkflowLogFilter, early_step_span, tracing_enabled
from ._usage import Budget, ModelUsage, Usage, UsageTotals, price_usd, record_usage
from ._workflow import step, workflow
from .errors import (
    AwaitedWorkflowCancelled,
    BudgetExceeded,
    DatabaseUnavailable,
    DurableError,
    EngineNotLaunched,
    NondeterminismError,
    OwnershipLost,
    QueueDeduplicatedError,
    RecordedError,
    RecoveryAttemptsExceeded,
    SerializationError,
    StepOutsideWorkflow,
    StepRetriesExceeded,
    WorkflowCancelled,
    WorkflowConflictError,
    WorkflowNotFoundError,
)

__all__ = [
    "TERMINAL_STATES",
    "AwaitedWorkflowCancelled",
    "Budget",
    "BudgetExceeded",
    "DatabaseUnavailable",
    "DurableError",
    "Engine",
    "EngineNotLaunched",
    "JsonSerializer",
    "ModelUsage",
    "NondeterminismError",
    "OwnershipLost",
    "PickleSerializer",
    "Queue",
    "QueueDeduplicatedError",
    "RateLimit",
    "RecordedError",
    "RecoveryAttemptsExceeded",
    "SerializationError",
    "Serializer",
    "StepInfo",
    "StepOutsideWorkflow",
    "StepRetriesExceeded",
    "Usage",
    "UsageTotals",
    "WaitInfo",
    "WorkflowCancelled",
    "WorkflowConflictError",
    "WorkflowHandle",
    "WorkflowLogFilter",
    "WorkflowNotFoundError",
    "WorkflowState",
    "WorkflowStatus",
    "close_stream",
    "close_stream_async",
    "current_engine",
    "current_workflow_id",
    "current_workflow_started_at",
    "early_step_span",
    "execution_state",
    "get_event",
    "get_event_async",
    "in_workflow",
    "pending_workflow_id",
    "price_usd",
    "record_usage",
    "recorded_steps",
    "recv",
    "recv_async",
    "send",
    "send_async",
    "set_event",
    "set_event_async",
    "sleep",
    "sleep_async",
    "step",
    "tracing_enabled",
    "workflow",
    "workflow_options",
    "write_stream",
    "write_stream_async",
]
