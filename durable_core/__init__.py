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

from ._context import in_workflow
from ._engine import Engine
from ._handle import WorkflowHandle
from ._options import workflow_options
from ._records import StepInfo, WaitInfo, WorkflowStatus
from ._serialization import JsonSerializer, PickleSerializer, Serializer
from ._workflow import step, workflow
from .errors import (
    AwaitedWorkflowCancelled,
    DatabaseUnavailable,
    DurableError,
    EngineNotLaunched,
    NondeterminismError,
    QueueDeduplicatedError,
    RecordedError,
    RecoveryAttemptsExceeded,
    SerializationError,
    StepRetriesExceeded,
    WorkflowCancelled,
    WorkflowConflictError,
    WorkflowNotFoundError,
)

__all__ = [
    "AwaitedWorkflowCancelled",
    "DatabaseUnavailable",
    "DurableError",
    "Engine",
    "EngineNotLaunched",
    "JsonSerializer",
    "NondeterminismError",
    "PickleSerializer",
    "QueueDeduplicatedError",
    "RecordedError",
    "RecoveryAttemptsExceeded",
    "SerializationError",
    "Serializer",
    "StepInfo",
    "StepRetriesExceeded",
    "WaitInfo",
    "WorkflowCancelled",
    "WorkflowConflictError",
    "WorkflowHandle",
    "WorkflowNotFoundError",
    "WorkflowStatus",
    "in_workflow",
    "step",
    "workflow",
    "workflow_options",
]
