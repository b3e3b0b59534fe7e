"""The only package of durable-agents that issues SQL.

- `Database` (`_database`) is the one connection layer every store uses: SQLAlchemy pools, the
  raw fast paths (`_raw`: `SqliteRaw`, `PostgresRaw`, the SQLite group commit), the one retry
  loop, inline SQLite writes and PostgreSQL writes on the event loop (`_loop_writes`).
- `db.sql_dialect` (`_dialects`: `SqliteDialect`, `PostgresDialect`) holds every difference in
  the stores' SQL; no store branches on the dialect's name.
- The stores (`WorkflowStore`, `StepStore`, `MessageStore`, `QueueStore`, `ExecutorStore`,
  `UsageStore`, and the LangGraph `checkpoints.CheckpointStore`) hold the statements of one
  concern each; multi-outcome results are enums (`_results`), a taken unique key is
  `errors.DuplicateKey`.
- Migrations (`_migrations`): the core's track, run at launch, and one track per storage
  extension (`Extension`; the checkpoint tables), run when the extension's store is first made.
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
from .workflows import ParentStep, WorkflowStore

__all__ = [
    "LATEST_VERSION",
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
