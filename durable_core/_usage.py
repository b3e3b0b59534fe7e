"""What model calls consumed, recorded with their steps, and budgets over a workflow tree.

A model-call step (``@step(model_call=True)``; every adapter marks its model requests so) may
report its usage with `record_usage` from inside its body; the usage is written in the same
statement as the step's outcome, so a replay never counts it again: totals are sums over
recorded steps. A field a framework did not report stays None ("unknown"), never guessed.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Budget", "ModelUsage", "Usage", "UsageTotals", "price_usd", "record_usage"]

_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "requests")


@dataclass(frozen=True, kw_only=True)
class Usage:
    """One model call's consumption, as its framework reported it (None: not reported)."""

    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    requests: int = 1
    cost_usd: float | None = None


@dataclass(frozen=True, kw_only=True)
class ModelUsage:
    """Totals of one model (or of everything, in `UsageTotals`)."""

    model_calls: int = 0  # model-call steps recorded
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    unknown_tokens: int = 0  # model calls whose token counts were not reported
    unpriced: int = 0  # model calls without a cost

    @property
    def tokens(self) -> int:
        """Input + output tokens (what `Budget.max_tokens` counts)."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, kw_only=True)
class UsageTotals(ModelUsage):
    """A workflow's (and its descendants') usage: totals, and per model."""

    by_model: dict[str, ModelUsage] = field(default_factory=dict[str, ModelUsage])


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Limits over a workflow and its descendants, checked before each model call.

    A run whose totals have reached a limit makes no further model call: with ``"pause"`` it waits
    durably (a wait of kind ``"budget"``) until `Engine.raise_budget` or a cancel; with ``"fail"``
    it ends with `BudgetExceeded`.
    """

    max_cost_usd: float | None = None
    max_tokens: int | None = None  # input + output tokens
    max_model_calls: int | None = None
    on_exceeded: Literal["pause", "fail"] = "pause"

    def __post_init__(self) -> None:
        if self.on_exceeded not in ("pause", "fail"):
            raise ValueError(f"on_exceeded must be 'pause' or 'fail', got {self.on_exceeded!r}")
        for name in ("max_cost_usd", "max_tokens", "max_model_calls"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")

    def exceeded(self, totals: ModelUsage, in_flight: int = 0) -> str | None:
        """Which limit the totals (plus model calls in flight) have reached, or None."""
        if self.max_model_calls is not None and totals.model_calls + in_flight >= self.max_model_calls:
            return f"{totals.model_calls + in_flight} of max_model_calls={self.max_model_calls} model calls"
        if self.max_tokens is not None and totals.tokens >= self.max_tokens:
            return f"{totals.tokens} of max_tokens={self.max_tokens} tokens"
        if self.max_cost_usd is not None and totals.cost_usd >= self.max_cost_usd:
            return f"${totals.cost_usd:.4f} of max_cost_usd=${self.max_cost_usd}"
        return None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> Budget:
        return Budget(**json.loads(text))


# the usage reported by the model-call step running in this context (None outside one)
_step_usage: ContextVar[list[Usage] | None] = ContextVar("durable_step_usage", default=None)


def record_usage(usage: Usage) -> None:
    """Report a model call's usage from inside a model-call step; recorded with the step's outcome.

    Outside a model-call step (or outside a workflow) it does nothing.
    """
    collected = _step_usage.get()
    if collected is not None:
        collected.append(usage)


_USAGE_KEYS = tuple(Usage.__dataclass_fields__)


def encode_usage(collected: list[Usage] | None) -> str | None:
    """None for a step that is not a model call; a JSON list (maybe empty: nothing reported) else."""
    if collected is None:
        return None
    if not collected:
        return "[]"
    # the fields by name (`asdict` deep-copies every value, on every model-call step)
    return json.dumps(
        [{key: getattr(u, key) for key in _USAGE_KEYS} for u in collected], separators=(",", ":")
    )


def decode_usage(text: str | None) -> list[Usage]:
    if not text:
        return []
    try:
        return [Usage(**item) for item in json.loads(text)]
    except (ValueError, TypeError):
        return []


class _Accumulator:
    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, Any] = {
            "model_calls": 0,
            "requests": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "cost_usd": 0.0,
            "unknown_tokens": 0,
            "unpriced": 0,
        }

    def add_step(self, usages: list[Usage]) -> None:
        """One model-call step: one model call, whatever number of requests it reported."""
        self.values["model_calls"] += 1
        if not usages:  # a model call whose framework reported nothing (a scripted model)
            self.values["unknown_tokens"] += 1
            self.values["unpriced"] += 1
        for usage in usages:
            self.add(usage, count_call=False)

    def add(self, usage: Usage, *, count_call: bool) -> None:
        v = self.values
        if count_call:
            v["model_calls"] += 1
        v["requests"] += usage.requests
        if usage.input_tokens is None and usage.output_tokens is None:
            v["unknown_tokens"] += 1
        for name in _FIELDS[:4]:
            v[name] += getattr(usage, name) or 0
        if usage.cost_usd is None:
            v["unpriced"] += 1
        else:
            v["cost_usd"] += usage.cost_usd


def totals_of(steps: list[list[Usage]]) -> UsageTotals:
    """Totals of recorded model-call steps (each a list of the usages it reported)."""
    overall = _Accumulator()
    per_model: dict[str, _Accumulator] = {}
    for usages in steps:
        overall.add_step(usages)
        for usage in usages or [Usage(requests=0)]:
            key = usage.model or "unknown"
            per_model.setdefault(key, _Accumulator()).add(usage, count_call=True)
    return UsageTotals(
        **overall.values, by_model={k: ModelUsage(**a.values) for k, a in sorted(per_model.items())}
    )


def price_usd(usage: Usage, provider_id: str, model: str | None = None) -> float | None:
    """The cost of one call by `genai-prices` (a genai-prices provider id; `model` defaults to
    `usage.model`), or None when it cannot be priced: tokens unknown, model not listed, or
    genai-prices not installed. Never a guess."""
    model = model or usage.model
    if not model or usage.input_tokens is None or usage.output_tokens is None:
        return None
    try:
        from genai_prices import Usage as PricedUsage  # pyright: ignore[reportMissingImports]
        from genai_prices import calc_price  # pyright: ignore[reportMissingImports]
    except ImportError:
        return None
    counts = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
    }
    try:
        calculation = calc_price(
            PricedUsage(**{name: value for name, value in counts.items() if value is not None}),
            model,
            provider_id=provider_id,
        )
    except Exception:  # not listed (LookupError) or not priceable from these counts
        return None
    return float(calculation.total_price)
