"""`workflow_options`: settings for the workflows started inside a `with` block."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from ._serialization import reject_nul
from ._usage import Budget

__all__ = ["WorkflowOptions", "pending_options", "workflow_options"]


@dataclass(kw_only=True)
class WorkflowOptions:
    workflow_id: str | None = None
    timeout_seconds: float | None = None
    deduplication_id: str | None = None
    priority: int | None = None
    queue_name: str | None = None
    budget: Budget | None = None
    _id_used: bool = field(default=False, repr=False)

    def take_workflow_id(self) -> str | None:
        """The id applies to the first workflow started in the block only (a second start would collide)."""
        if self.workflow_id is None or self._id_used:
            return None
        self._id_used = True
        return self.workflow_id


_options: ContextVar[WorkflowOptions | None] = ContextVar("durable_options", default=None)


def pending_options() -> WorkflowOptions | None:
    """The options of the enclosing `workflow_options` block, if any (None inside a workflow body)."""
    return _options.get()


@contextmanager
def workflow_options(
    *,
    workflow_id: str | None = None,
    timeout_seconds: float | None = None,
    deduplication_id: str | None = None,
    priority: int | None = None,
    budget: Budget | None = None,
) -> Generator[WorkflowOptions, None, None]:
    """Apply options to the workflows started (or enqueued) inside the block.

    Example:
        ```python
        with workflow_options(workflow_id="order-42", timeout_seconds=600):
            process_order(order)
        ```

    `workflow_id` names the first workflow started in the block; `timeout_seconds` sets a deadline
    that its children inherit; `deduplication_id` and `priority` apply to queue enqueues;
    `budget` limits the model calls of the first workflow started in the block and of its
    descendants, counted over that whole tree.
    """
    if budget is not None and not isinstance(budget, Budget):
        raise TypeError(f"budget must be a durable_core.Budget, got {type(budget).__name__}")
    if timeout_seconds is not None and not timeout_seconds > 0:
        raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds!r}")
    if priority is not None and not 0 <= priority < 2**31:
        raise ValueError(f"priority must be an integer in [0, 2**31), got {priority!r}")
    if workflow_id is not None and (not isinstance(workflow_id, str) or not workflow_id):
        raise ValueError("workflow_id must be a non-empty string")
    reject_nul(workflow_id=workflow_id, deduplication_id=deduplication_id)
    outer = _options.get()  # a nested block inherits what it does not set itself
    options = WorkflowOptions(
        workflow_id=workflow_id,
        timeout_seconds=timeout_seconds if timeout_seconds is not None else (outer and outer.timeout_seconds),
        deduplication_id=deduplication_id
        if deduplication_id is not None
        else (outer and outer.deduplication_id),
        priority=priority if priority is not None else (outer and outer.priority),
        budget=budget if budget is not None else (outer.budget if outer is not None else None),
    )
    token = _options.set(options)
    try:
        yield options
    finally:
        _options.reset(token)
