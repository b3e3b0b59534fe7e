"""Live objects handed from a caller to the workflow body it starts in this process; caller-owned runs.

What a caller cannot record (callbacks, a crew, a config with live objects) reaches the body it
starts here through a `LiveHandoff`; a body that finds nothing runs from its recorded inputs, or,
for a workflow only its caller can run (``@workflow(auto_recover=False)``), leaves the run
PENDING with `leave_to_caller` until the caller calls it again.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Generic, NoReturn, TypeVar

from ._context import current_context
from .errors import StepOutsideWorkflow, WorkflowCancelled

__all__ = ["LiveHandoff", "leave_to_caller"]

T = TypeVar("T")


class _Offer(Generic[T]):
    __slots__ = ("claimed", "value")

    def __init__(self, value: T) -> None:
        self.value = value
        self.claimed = False


class LiveHandoff(Generic[T]):
    """Hands live objects from a caller to the workflow body it starts or resumes in this process.

    Two ways, one object per adapter:

    - in context: ``with handoff.offer(value): my_workflow(...)`` around a direct workflow call
      (the body runs in the caller's context); the body takes it with `claim`. Each offer is
      claimed once: workflows the body starts in turn see nothing.
    - by key: `offer_at` before starting a body that runs elsewhere (an engine thread, or a body
      already running that waits for a message); the body takes it with `claim_at`; the caller
      calls `withdraw` if the start failed.

    The database stays the source of truth: a body that finds nothing (a recovery, another
    process) runs from its recorded inputs, or leaves the run to its caller (`leave_to_caller`).
    """

    def __init__(self, name: str) -> None:
        self._var: ContextVar[_Offer[T] | None] = ContextVar(f"live_handoff:{name}", default=None)
        self._lock = threading.Lock()
        self._keyed: dict[str, T] = {}

    @contextmanager
    def offer(self, value: T) -> Generator[T]:
        """Offer `value` to the next workflow body that claims it in this context (and copies of it)."""
        token = self._var.set(_Offer(value))
        try:
            yield value
        finally:
            self._var.reset(token)

    def claim(self) -> T | None:
        """In a workflow body: the value its caller offered in this context, once; else None."""
        offer = self._var.get()
        if offer is None:
            return None
        with self._lock:
            if offer.claimed:
                return None
            offer.claimed = True
        self._var.set(None)  # workflows started by this body are not the caller's call
        return offer.value

    def offer_at(self, key: str, value: T) -> None:
        """Offer `value` under `key` (e.g. a token recorded in the workflow's inputs) to any thread."""
        with self._lock:
            self._keyed[key] = value

    def claim_at(self, key: str) -> T | None:
        """The value offered under `key`, once; else None."""
        with self._lock:
            return self._keyed.pop(key, None)

    def withdraw(self, key: str) -> None:
        """Drop an unclaimed offer (the start it was meant for failed)."""
        with self._lock:
            self._keyed.pop(key, None)


def leave_to_caller(reason: str) -> NoReturn:
    """Stop this execution of a caller-owned workflow without recording anything; it stays PENDING.

    For a body that cannot run without what only its caller has (its `LiveHandoff` found nothing:
    the run was resumed, forked or dequeued by an engine). Declare such workflows with
    ``@workflow(auto_recover=False)`` so that recovery leaves them alone; calling the workflow
    again with the same id (the caller's usual call) resumes the run from its record.
    """
    ctx = current_context()
    if ctx is None:
        raise StepOutsideWorkflow("leave_to_caller() must be called in a workflow body.")
    raise WorkflowCancelled(ctx.workflow_id, f"deferred: {reason}")
