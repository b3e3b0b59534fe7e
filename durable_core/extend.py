"""durable_core.extend: the public surface that framework adapters build on.

Applications use `durable_core`; an adapter that makes a framework's agents durable (Pydantic
AI, CrewAI, LangGraph) also needs a few hooks into how workflows and steps run. They are all
here, and adapters import nothing else from durable_core than `durable_core`,
`durable_core.errors` and this module (a meta-test checks it). Names here are kept stable.

Steps
    `intercept_steps(interceptor)`: route every ``@step`` call in a context to an adapter (which
    may key them its own way, e.g. per LangGraph node task), a `StepInterceptor` called with
    the step's `StepDef`; `steps_inline()`: run ``@step`` calls as plain, unrecorded calls
    (live-only code that a replay would not run);
    `workflow_steps_here()`: inside a step's body, make ``@step`` calls steps of the running
    workflow again (an adapter's operations that a user's step body ends up driving);
    `in_step_body()`: whether code runs inside a step's body of a running workflow;
    `RetryPolicy`, `call_with_retries`, `call_with_retries_async`: ``@step``'s retries
    (backoff, `StepRetriesExceeded`) for an adapter's own step-like calls.

Starting a run
    `workflow_id_scope(workflow_id, budget=...)`: name the workflow an adapter starts for a run,
    unless the caller's `workflow_options` already names it; `pending_workflow_id()`.

Live arguments and caller-owned runs
    `LiveHandoff`: hand what cannot be recorded (callbacks, a crew, a config) from a caller to the
    workflow body it starts in this process (in context, or by key across threads);
    `leave_to_caller(reason)`: a caller-owned workflow (``@workflow(auto_recover=False)``) run
    without its caller stays PENDING for it.

The running workflow and its model calls
    `recorded_steps()`: what the workflow had recorded when this execution started;
    `running_workflow()`: a `RunningWorkflow` handle on the execution (also inside a step body,
    usable from any of its threads) to record model calls outside the step sequence
    (`UnsequencedModelCall`), budget-checked first; `check_budget()` / `check_budget_async()`:
    a recorded budget check in workflow code; `collect_usage(list)`: collect `record_usage`
    reports made in a context.

Checkpoint storage (LangGraph)
    `CheckpointStore` and its records (`CheckpointRecord`, `LoadedCheckpoint`, `WriteRecord`,
    `BlobRecord`, `MemoRecord`, `version_key`): checkpoints, pending writes, blobs and per-task
    step memos in the engine's database.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

from ._context import (
    StepInterceptor,
    _current,
    _in_step,
    current_context,
    pending_options,
    reset_step_interceptor,
    set_step_interceptor,
)
from ._current import pending_workflow_id, recorded_steps
from ._extension_live import LiveHandoff, leave_to_caller
from ._extension_retry import RetryPolicy, call_with_retries, call_with_retries_async
from ._extension_usage import (
    RunningWorkflow,
    UnsequencedModelCall,
    check_budget,
    check_budget_async,
    collect_usage,
    running_workflow,
)
from ._options import workflow_options
from ._registry import StepDef
from ._usage import Budget
from .storage.checkpoints import (
    BlobRecord,
    CheckpointRecord,
    CheckpointStore,
    LoadedCheckpoint,
    MemoRecord,
    WriteRecord,
    version_key,
)

__all__ = [
    "BlobRecord",
    "CheckpointRecord",
    "CheckpointStore",
    "LiveHandoff",
    "LoadedCheckpoint",
    "MemoRecord",
    "RetryPolicy",
    "RunningWorkflow",
    "StepDef",
    "StepInterceptor",
    "UnsequencedModelCall",
    "WriteRecord",
    "call_with_retries",
    "call_with_retries_async",
    "check_budget",
    "check_budget_async",
    "collect_usage",
    "in_step_body",
    "intercept_steps",
    "leave_to_caller",
    "pending_workflow_id",
    "recorded_steps",
    "running_workflow",
    "steps_inline",
    "version_key",
    "workflow_id_scope",
    "workflow_steps_here",
]


@contextmanager
def intercept_steps(interceptor: StepInterceptor) -> Generator[None]:
    """Route every ``@step`` call made in this context (and copies of it) to `interceptor`.

    ``interceptor(defn, args, kwargs)`` receives the step's `StepDef` (read its ``name``, ``fn``,
    ``is_async``, ``model_call`` and `RetryPolicy.of_step(defn)`) and returns the call's result; for
    an async step it returns an awaitable. The workflow's step sequence is then not used for
    these calls: the adapter records (or does not record) them itself.
    """
    token = set_step_interceptor(interceptor)
    try:
        yield
    finally:
        reset_step_interceptor(token)


def _call_inline(defn: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return defn.fn(*args, **kwargs)


@contextmanager
def steps_inline() -> Generator[None]:
    """Inside this block, ``@step`` functions called in workflow code run as plain calls, unrecorded.

    For live-only code (a per-run event handler) that a replay would not run: steps it called in
    the workflow's sequence would make the replay nondeterministic. Inside a step's body, steps
    already run inline.
    """
    with intercept_steps(_call_inline):
        yield


def in_step_body() -> bool:
    """Whether this code runs inside the body of a step of a running workflow."""
    return _in_step.get() and _current.get() is not None


@contextmanager
def workflow_steps_here() -> Generator[None]:
    """Inside a step's body, ``@step`` calls in this block are steps of the running workflow again.

    Steps called in a step's body normally run inline, recorded only as part of that step. An
    adapter whose run started in workflow code can find its operations driven from inside a user's
    step body: pydantic-ai calls a run's ``event_stream_handler`` with the node's event stream,
    and a handler that is itself a ``@step`` pulls the run's model request and tool calls from
    inside its body. Those operations must stay steps of the workflow, or a replay (which replays the
    handler's step without running it, then drains the stream in workflow code) would find them
    missing from the record. Each takes the next id in the workflow's sequence when called, as in
    workflow code. Outside a step's body this changes nothing.
    """
    token = _in_step.set(False)
    try:
        yield
    finally:
        _in_step.reset(token)


@contextmanager
def workflow_id_scope(workflow_id: str, *, budget: Budget | None = None) -> Generator[str]:
    """Start the next workflow as `workflow_id`, unless an enclosing `workflow_options` names it.

    Yields the id the next workflow started in the block gets: the enclosing block's
    ``workflow_id`` if it names one (then nothing else changes), else `workflow_id`. The enclosing
    block's timeout, priority and deduplication id still apply.

    `budget` (the adapter's own, e.g. ``instrument(crew, budget=...)``) governs the started
    workflow unless a budget already does: one the caller set with ``workflow_options(budget=...)``
    takes precedence, and inside a workflow under a budget, that budget governs the new workflow
    (as its child). Either budget applies to the first workflow started in the block only.
    """
    options = pending_options()
    enclosing = current_context()
    if enclosing is not None and enclosing.budget_owner is not None:
        budget = None  # started inside a workflow under a budget: that budget governs it
    named = pending_workflow_id()
    if named is not None:
        if budget is not None and options is not None and options.budget is None:
            options.budget = budget  # consumed by the start, like a budget the caller set
        yield named
        return
    if options is not None and options.budget is not None:
        budget, options.budget = options.budget, None  # the caller's budget, for this start only
    with workflow_options(workflow_id=workflow_id, budget=budget):
        yield workflow_id
