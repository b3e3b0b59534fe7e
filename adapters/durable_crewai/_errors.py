"""The adapter's own errors, each a subclass of a `durable_core.errors` class.

```
BaseException
├── NondeterminismError                 (durable_core)
│   └── CrewDivergenceError             a resumed kickoff asked for other work than was recorded
└── BudgetStop                          (internal) carries BudgetExceeded out of CrewAI's agent loop
Exception
└── DurableError                        (durable_core)
    └── DurabilityNotActive             durable_kickoff ran without the adapter's instrumentation
```
"""

from __future__ import annotations

from durable_core.errors import BudgetExceeded, DurableError, NondeterminismError

__all__ = ["BudgetStop", "CrewDivergenceError", "DurabilityNotActive"]


class CrewDivergenceError(NondeterminismError):
    """A resumed kickoff diverged from its record: raised before the diverging LLM or tool call runs.

    A `BaseException` (through `NondeterminismError`), so CrewAI's own retries and its
    `except Exception` layers cannot swallow it and silently run the task live.

    Attributes:
        task: the description of the task that diverged (first 80 characters).
        call: which call diverged, e.g. ``"LLM call 3"`` or ``"tool 'search'"``.
    """

    def __init__(
        self, workflow_id: str, step_id: int, recorded_name: str, called_name: str, *, task: str, call: str
    ) -> None:
        super().__init__(workflow_id, step_id, recorded_name, called_name)
        self.task = task
        self.call = call
        BaseException.__init__(
            self,
            f"Crew kickoff {workflow_id!r} diverged from its record in task {task!r}, at {call}"
            f"{f' (step {step_id})' if step_id > 0 else ''}: recorded {recorded_name!r}, now "
            f"{called_name!r}. The crew, its inputs or "
            "its prompts changed since the kickoff was recorded; use another workflow id "
            "(workflow_options(workflow_id=...)) or fork the workflow to rerun it under the new code.",
        )

    def __reduce__(self) -> tuple[object, ...]:
        fields = (self.workflow_id, self.step_id, self.recorded_name, self.called_name, self.task, self.call)
        return (_rebuild, (fields,))


def _rebuild(fields: tuple[str, int, str, str, str, str]) -> CrewDivergenceError:
    workflow_id, step_id, recorded_name, called_name, task, call = fields
    return CrewDivergenceError(workflow_id, step_id, recorded_name, called_name, task=task, call=call)


class DurabilityNotActive(DurableError):
    """`durable_kickoff` ran, but the adapter could not make this kickoff durable.

    Raised from the callback so the kickoff stops before any task runs: the adapter fails
    closed rather than letting a crew that asked for durability run without it.
    """


class BudgetStop(BaseException):
    """A kickoff's budget refused an LLM call (``on_exceeded="fail"``); internal to the adapter.

    `BudgetExceeded` is an ordinary exception, which CrewAI's agent would catch and answer by
    running the task again (`max_retry_limit`), asking the budget once per retry. This
    `BaseException` passes through those layers; the kickoff workflow raises `error` itself.
    """

    def __init__(self, error: BudgetExceeded) -> None:
        super().__init__(str(error))
        self.error = error
