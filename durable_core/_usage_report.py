"""The usage API behind `Engine.usage`, `WorkflowStatus.usage` and `Engine.raise_budget`."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from ._host import EngineHost
from ._keys import budget_key
from ._serialization import reject_nul
from ._usage import Budget, Usage, UsageTotals, decode_usage, totals_of
from .errors import DurableError, WorkflowNotFoundError

__all__ = ["raise_budget", "tree_usage", "usage_report"]

GROUPS = ("workflow", "name", "model", "day")


def _ms(value: datetime | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)


def tree_usage(engine: EngineHost, workflow_ids: Sequence[str]) -> dict[str, UsageTotals]:
    """Each workflow's usage with its descendants' (one query for all of them)."""
    steps: dict[str, list[list[Usage]]] = defaultdict(list)
    for row in engine.usage_records.tree_rows(workflow_ids=list(workflow_ids)):
        steps[row.root].append(decode_usage(row.usage))
    return {wid: totals_of(steps.get(wid, [])) for wid in workflow_ids}


def usage_report(
    engine: EngineHost,
    *,
    workflow_ids: Sequence[str] | None,
    name: str | Sequence[str] | None,
    since: datetime | int | None,
    group_by: str,
) -> dict[str, UsageTotals]:
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}; got {group_by!r}")
    names = [name] if isinstance(name, str) else (list(name) if name is not None else None)
    ids = list(workflow_ids) if workflow_ids is not None else None
    reject_nul(**{f"workflow_ids[{i}]": w for i, w in enumerate(ids or [])})
    rows = engine.usage_records.tree_rows(workflow_ids=ids, names=names, since=_ms(since))
    groups: dict[str, list[list[Usage]]] = defaultdict(list)
    for row in rows:
        usages = decode_usage(row.usage)
        if group_by == "model":
            for usage in usages or [Usage(requests=0)]:
                groups[usage.model or "unknown"].append([usage] if usages else [])
            continue
        if group_by == "workflow":
            key = row.root
        elif group_by == "name":
            key = row.root_name
        else:
            stamp = (row.completed_at or 0) / 1000
            key = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
        groups[key].append(usages)
    return {key: totals_of(steps) for key, steps in sorted(groups.items())}


def raise_budget(
    engine: EngineHost,
    workflow_id: str,
    max_cost_usd: float | None,
    max_tokens: int | None,
    max_model_calls: int | None,
) -> Budget:
    reject_nul(workflow_id=workflow_id)
    row = engine.workflows.get(workflow_id)
    if row is None:
        raise WorkflowNotFoundError(workflow_id)
    owner = row.budget_owner
    text = engine.usage_records.budget_of(owner) if owner is not None else None
    if owner is None or text is None:
        raise DurableError(
            f"Workflow {workflow_id!r} has no budget to raise: set one with workflow_options(budget=Budget(...)).",
            workflow_id=workflow_id,
        )
    current = Budget.from_json(text)
    changes = {
        key: value
        for key, value in (
            ("max_cost_usd", max_cost_usd),
            ("max_tokens", max_tokens),
            ("max_model_calls", max_model_calls),
        )
        if value is not None
    }
    if not changes:
        raise ValueError("raise_budget needs at least one of max_cost_usd, max_tokens, max_model_calls")
    budget = dataclasses.replace(current, **changes)
    engine.usage_records.set_budget(owner, budget.to_json())
    # paused runs re-check at their next poll; wake the ones waiting here at once
    engine.waiters.notify(budget_key(owner))
    engine.notify_remote("budget", owner)
    return budget
