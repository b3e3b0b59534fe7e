"""Every exception durable_core raises, in one hierarchy.

```
BaseException
├── WorkflowCancelled            control flow: the workflow was cancelled, timed out or taken over
│   └── OwnershipLost            control flow: another executor owns the workflow now
├── NondeterminismError          control flow: a replay called another step than the one recorded
└── Exception
    └── DurableError             base of every ordinary durable_core error
        ├── EngineNotLaunched         no launched Engine in this process
        ├── DatabaseUnavailable       the database URL is wrong or the server is unreachable
        ├── WorkflowConflictError     one workflow id, two workflow functions
        ├── WorkflowNotFoundError     unknown workflow id
        ├── StepRetriesExceeded       a step failed max_attempts times (.errors)
        ├── SerializationError        a value the serializer cannot encode or decode
        ├── QueueDeduplicatedError    a deduplication id is held by a queued or running workflow
        ├── DuplicateKey              storage: a row's unique key is taken (raised by durable_core.storage)
        ├── AwaitedWorkflowCancelled  awaiting a workflow that was cancelled
        ├── BudgetExceeded            a workflow tree reached its budget (on_exceeded="fail")
        ├── RecoveryAttemptsExceeded  awaiting a workflow parked after max_recovery_attempts
        ├── StepOutsideWorkflow       a workflow-only operation (recv, sleep...) called outside a workflow
        └── RecordedError             a recorded exception whose class is not importable here
```

Control-flow errors derive from `BaseException` so that `except Exception:` in user or
framework code (CrewAI retries, for one) cannot swallow them.
"""

from __future__ import annotations

__all__ = [
    "AwaitedWorkflowCancelled",
    "BudgetExceeded",
    "DatabaseUnavailable",
    "DuplicateKey",
    "DurableError",
    "EngineNotLaunched",
    "NondeterminismError",
    "OwnershipLost",
    "QueueDeduplicatedError",
    "RecordedError",
    "RecoveryAttemptsExceeded",
    "SerializationError",
    "StepOutsideWorkflow",
    "StepRetriesExceeded",
    "WorkflowCancelled",
    "WorkflowConflictError",
    "WorkflowNotFoundError",
]


class DurableError(Exception):
    """Base class of every ordinary durable_core error.

    Attributes:
        workflow_id: the workflow concerned, when there is one.
        step_id: the step concerned, when there is one.
        retryable: whether the same call may succeed if simply retried later.
    """

    retryable: bool = False

    def __init__(self, message: str, *, workflow_id: str | None = None, step_id: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.workflow_id = workflow_id
        self.step_id = step_id

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, self.workflow_id, self.step_id))


def _rebuild(
    cls: type[DurableError], message: str, workflow_id: str | None, step_id: int | None
) -> DurableError:
    error = cls.__new__(cls)
    DurableError.__init__(error, message, workflow_id=workflow_id, step_id=step_id)
    return error


class EngineNotLaunched(DurableError):
    """A workflow was called, or a handle awaited, with no launched `Engine` in this process."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "No durable Engine is launched in this process: create one with "
            "`engine = durable_core.Engine(database_url)` and call `engine.launch()` "
            "(or use `with Engine(...) as engine:`) before calling workflows."
        )


class DatabaseUnavailable(DurableError):
    """The database could not be reached or opened. The message names the URL without its password."""

    retryable = True


class WorkflowConflictError(DurableError):
    """A workflow id already belongs to another workflow function."""


class WorkflowNotFoundError(DurableError):
    """No workflow with this id exists."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"No workflow with id {workflow_id!r} exists.", workflow_id=workflow_id)


class StepRetriesExceeded(DurableError):
    """A step failed on every one of its `max_attempts`; `.errors` holds each attempt's exception."""

    def __init__(
        self,
        message: str,
        errors: list[BaseException] | None = None,
        *,
        workflow_id: str | None = None,
        step_id: int | None = None,
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, step_id=step_id)
        self.errors: list[BaseException] = list(errors or [])


class SerializationError(DurableError):
    """A value could not be encoded (or decoded) by the engine's serializer. Nothing was recorded."""


class QueueDeduplicatedError(DurableError):
    """The deduplication id is held by a workflow that is still ENQUEUED or PENDING."""

    def __init__(self, queue_name: str, deduplication_id: str, workflow_id: str | None = None) -> None:
        super().__init__(
            f"Queue {queue_name!r} already holds a queued or running workflow with deduplication id "
            f"{deduplication_id!r}; wait for it to finish or use another deduplication_id.",
            workflow_id=workflow_id,
        )
        self.queue_name = queue_name
        self.deduplication_id = deduplication_id


class DuplicateKey(DurableError):
    """Storage refused a row because one of its unique keys is taken (a queue deduplication id, ...).

    Raised by `durable_core.storage` for every driver's unique-violation error, so no caller matches
    driver message text; the driver's error is its `__cause__`.
    """


class AwaitedWorkflowCancelled(DurableError):
    """The awaited workflow was cancelled (or timed out) before it finished."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"Workflow {workflow_id!r} was cancelled.", workflow_id=workflow_id)


class BudgetExceeded(DurableError):
    """A workflow tree reached its `Budget` (``on_exceeded="fail"``): no further model call is made."""


class RecoveryAttemptsExceeded(DurableError):
    """The awaited workflow crashed more often than its `max_recovery_attempts` and was parked.

    `engine.resume_workflow(workflow_id)` revives it.
    """

    def __init__(self, workflow_id: str, attempts: int | None = None) -> None:
        extra = f" after {attempts} recovery attempts" if attempts is not None else ""
        super().__init__(
            f"Workflow {workflow_id!r} was parked as RETRIES_EXCEEDED{extra}; "
            "fix the cause and call engine.resume_workflow(workflow_id) to run it again.",
            workflow_id=workflow_id,
        )


class StepOutsideWorkflow(DurableError):
    """A workflow-only operation (such as `recv`) was called outside a durable workflow."""


class RecordedError(DurableError):
    """A recorded exception whose class is not imported in this process.

    Attributes:
        type_name: qualified name of the original class, e.g. ``"myapp.errors.QuotaError"``.
        traceback_text: the original traceback, as recorded.
    """

    def __init__(self, type_name: str, message: str, traceback_text: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.original_message = message
        self.traceback_text = traceback_text

    def __reduce__(self) -> tuple[object, ...]:
        return (RecordedError, (self.type_name, self.original_message, self.traceback_text))


class WorkflowCancelled(BaseException):
    """Stops a workflow body at its next step: cancelled, timed out, or taken over by another executor."""

    def __init__(self, workflow_id: str, reason: str = "cancelled") -> None:
        super().__init__(f"Workflow {workflow_id!r} {reason}.")
        self.workflow_id = workflow_id
        self.reason = reason


class OwnershipLost(WorkflowCancelled):
    """This process no longer owns the workflow (another executor took it over after this one's
    lease lapsed, or it was resumed elsewhere): the body stops at this step boundary and writes
    nothing more; the workflow's outcome is the new owner's."""

    def __init__(self, workflow_id: str, reason: str = "taken over by another executor") -> None:
        super().__init__(workflow_id, reason)

    def __reduce__(self) -> tuple[object, ...]:
        return (OwnershipLost, (self.workflow_id, self.reason))


class NondeterminismError(BaseException):
    """A replay called a different step than the one recorded at the same step id.

    The workflow ends in ERROR; the message names the workflow, the step id and both names.
    """

    def __init__(self, workflow_id: str, step_id: int, recorded_name: str, called_name: str) -> None:
        super().__init__(
            f"Workflow {workflow_id!r} is not deterministic: step {step_id} was recorded as "
            f"{recorded_name!r} but the replay called {called_name!r}. Workflow code must call the same "
            "steps in the same order on every run; fork the workflow (engine.fork_workflow) to rerun it "
            "under changed code."
        )
        self.workflow_id = workflow_id
        self.step_id = step_id
        self.recorded_name = recorded_name
        self.called_name = called_name

    def __reduce__(self) -> tuple[object, ...]:
        return (NondeterminismError, (self.workflow_id, self.step_id, self.recorded_name, self.called_name))
