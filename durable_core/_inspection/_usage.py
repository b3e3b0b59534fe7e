"""Model usage and budgets for people.

"-": nothing recorded (no model call); "unknown": model calls whose framework reported no
tokens (or no cost); "N+unknown": N reported, some calls not. Never a 0 for what nobody reported.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterable
from typing import Any

from .. import Budget, ModelUsage, UsageTotals, WaitInfo, WorkflowStatus

__all__ = [
    "budget_limit",
    "budget_text",
    "cost_text",
    "count_text",
    "number_text",
    "raise_command",
    "raise_outcome",
    "spent_text",
    "tokens_text",
    "total_usage",
    "usage_dict",
]

_BUDGET_FLAGS = {
    "max_cost_usd": ("--cost", "<usd>"),
    "max_tokens": ("--tokens", "<tokens>"),
    "max_model_calls": ("--calls", "<calls>"),
}
_LIMIT = re.compile(r"\b(max_cost_usd|max_tokens|max_model_calls)=")


def _recorded(usage: ModelUsage | None) -> bool:
    return usage is not None and usage.model_calls > 0


def number_text(value: float) -> str:
    """A cost in USD without a currency sign: up to 6 decimals, trailing zeros dropped."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def count_text(value: int, usage: ModelUsage) -> str:
    """A token count of model calls: 'unknown' when none reported it, 'N+unknown' when some did not."""
    if usage.unknown_tokens and not value:
        return "unknown"
    return f"{value}+unknown" if usage.unknown_tokens else str(value)


def tokens_text(usage: ModelUsage | None) -> str:
    """Input + output tokens as reported: '-' (no model call), 'unknown', 'N' or 'N+unknown'."""
    if usage is None or not _recorded(usage):
        return "-"
    return count_text(usage.tokens, usage)


def cost_text(usage: ModelUsage | None, *, sign: str = "") -> str:
    """The cost in USD: '-' (no model call), 'unknown' (not priced), '0.0123', or '0.0123+unknown'."""
    if usage is None or not _recorded(usage):
        return "-"
    if usage.unpriced and not usage.cost_usd:
        return "unknown"
    text = sign + number_text(usage.cost_usd)
    return f"{text}+unknown" if usage.unpriced else text


def spent_text(usage: ModelUsage | None) -> str:
    """'3 model calls, 450 tokens, $0.03' ('nothing recorded' without a model call)."""
    if usage is None or not _recorded(usage):
        return "no model call recorded"
    calls = f"{usage.model_calls} model call{'s' if usage.model_calls != 1 else ''}"
    cost = cost_text(usage, sign="$")
    return f"{calls}, {tokens_text(usage)} tokens, " + ("cost unknown" if cost == "unknown" else cost)


def _usage_fields(usage: ModelUsage) -> dict[str, Any]:
    # None where nothing was reported at all; the counts of what was, with unknown_tokens and
    # unpriced saying how many model calls are missing from them
    unknown_tokens = bool(usage.unknown_tokens) and not usage.tokens
    unpriced = bool(usage.unpriced) and not usage.cost_usd

    def reported(value: int) -> int | None:
        return None if unknown_tokens and not value else value

    return {
        "model_calls": usage.model_calls,
        "requests": usage.requests or None,
        "input_tokens": reported(usage.input_tokens),
        "output_tokens": reported(usage.output_tokens),
        "cache_read_tokens": reported(usage.cache_read_tokens),
        "cache_write_tokens": reported(usage.cache_write_tokens),
        "tokens": None if unknown_tokens else usage.tokens,  # input + output; None: none reported
        "cost_usd": None if unpriced else round(usage.cost_usd, 9),  # None: nothing priced
        "unknown_tokens": usage.unknown_tokens,  # model calls that reported no tokens
        "unpriced": usage.unpriced,  # model calls without a cost
        "complete": not usage.unknown_tokens and not usage.unpriced,
    }


def usage_dict(usage: ModelUsage | None) -> dict[str, Any] | None:
    """A usage total as JSON (None when no model call was recorded: nothing to report)."""
    if usage is None or not _recorded(usage):
        return None
    record = _usage_fields(usage)
    if isinstance(usage, UsageTotals):
        record["by_model"] = {model: _usage_fields(m) for model, m in usage.by_model.items()}
    return record


def total_usage(totals: Iterable[ModelUsage]) -> ModelUsage:
    """The sum of usage totals that count disjoint model calls (groups by workflow, name or day)."""
    items = list(totals)
    names = [f.name for f in dataclasses.fields(ModelUsage)]
    return ModelUsage(**{name: sum(getattr(t, name) for t in items) for name in names})


def budget_limit(wait: WaitInfo | None) -> str | None:
    """The Budget field a budget wait reached (``max_cost_usd``, ...), from the wait's detail."""
    if wait is None or wait.kind != "budget" or not wait.detail:
        return None
    match = _LIMIT.search(wait.detail)
    return match.group(1) if match else None


def raise_command(workflow_id: str, wait: WaitInfo | None, database_option: str = "") -> str | None:
    """For a budget wait: the `durable budget raise` command that lifts the limit it reached
    (the new limit goes in place of ``<usd>``, ``<tokens>`` or ``<calls>``), with
    `database_option` (see `database_option()`) appended."""
    if wait is None or wait.kind != "budget":
        return None
    flag, placeholder = _BUDGET_FLAGS.get(budget_limit(wait) or "max_cost_usd", _BUDGET_FLAGS["max_cost_usd"])
    return (
        f"durable budget raise {shlex.quote(workflow_id)} {flag} {shlex.quote(placeholder)}{database_option}"
    )


def budget_text(budget: Budget) -> str:
    """'max_cost_usd=5, max_model_calls=10' (the limits set)."""
    limits = (
        ("max_cost_usd", None if budget.max_cost_usd is None else number_text(budget.max_cost_usd)),
        ("max_tokens", budget.max_tokens),
        ("max_model_calls", budget.max_model_calls),
    )
    return ", ".join(f"{name}={value}" for name, value in limits if value is not None) or "no limit"


def raise_outcome(
    budget: Budget, status: WorkflowStatus, *, before: WorkflowStatus | None = None
) -> tuple[str, bool]:
    """What raising to `budget` means for the run `status` (read after the raise): (text, still reached).

    `before`: the run's status read before the raise. A run the raise woke may have left its wait
    by the time `status` is read; `before` says it was paused by its budget.
    Its own tree is part of the budget's tree, so when its usage reaches a new limit, the budget's does.
    """
    still = budget.exceeded(status.usage) if status.usage is not None else None
    if still is not None:
        return f"still reached: {still}; it makes no further model call until a higher limit", True
    waiting = status.waiting or (before.waiting if before is not None else None)
    if waiting is None or waiting.kind != "budget":
        return "", False
    if status.stranded:
        return (
            f"it is paused by its budget and continues once an executor runs it again: {status.stranded}",
            False,
        )
    if status.parent_workflow_id is not None:  # the budget may be an ancestor's, over its whole tree
        return (
            "it was paused by its budget: it continues where it stopped once that budget's whole tree is "
            "under the new limits",
            False,
        )
    return "it was paused by its budget: it continues now, where it stopped", False
