"""The only package of durable-agents that issues SQL.

`Database` holds the connections; the stores (`WorkflowStore`, `StepStore`, `ExecutorStore`,
...) hold the statements of one concern each.
"""

from ._database import Database, Dialect, WriteWouldWait, redact_url
from ._migrations import LATEST_VERSION, migrate
from ._results import ReceiveResult, SendResult
from ._rows import StepRow, WorkflowRow
from .executors import ClaimedWorkflow, ExecutorRow, ExecutorStore
from .messages import MessageStore, StepWrite
from .queues import ClaimRequest, QueueStore
from .steps import StepStore
from .usage import UsageRow, UsageStore
from .workflows import TERMINAL_STATUSES, ParentStep, WorkflowStore

__all__ = [
    "LATEST_VERSION",
    "TERMINAL_STATUSES",
    "ClaimRequest",
    "ClaimedWorkflow",
    "Database",
    "Dialect",
    "ExecutorRow",
    "ExecutorStore",
    "MessageStore",
    "ParentStep",
    "QueueStore",
    "ReceiveResult",
    "SendResult",
    "StepRow",
    "StepStore",
    "StepWrite",
    "UsageRow",
    "UsageStore",
    "WorkflowRow",
    "WorkflowStore",
    "WriteWouldWait",
    "migrate",
    "redact_url",
]
