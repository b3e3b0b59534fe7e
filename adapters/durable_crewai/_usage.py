"""What each LLM call consumed, read from CrewAI's own usage reports, priced when that is reliable.

CrewAI builds `Crew.usage_metrics` from each LLM's `_token_usage` counters, and every provider
(the native OpenAI, Anthropic, Gemini, Azure and Bedrock classes, and the LiteLLM-backed `LLM`)
fills them through one method, `_track_token_usage_internal(usage)`, once per provider
response. The adapter wraps that method at class level (on `BaseLLM`, and on a provider class
that overrides it once one of its LLMs is wrapped). Inside a durable LLM step each report is
collected for the step, in a context variable, so concurrent kickoffs sharing one LLM object
never mix their usage; everywhere else the wrapper is a plain call.

Per report: input tokens are CrewAI's ``prompt_tokens`` (billed prompt tokens, cached ones
included), output tokens its ``completion_tokens``, cache reads ``cached_prompt_tokens``, cache
writes ``cache_creation_tokens``. A call that reported nothing (a scripted `BaseLLM`) records
the model name only: its tokens and cost stay unknown.

Provider: the one CrewAI's own LLM classes route to (``llm.provider``). A custom `BaseLLM`
subclass gets ``"openai"`` from `BaseLLM` by default, so for it the provider is known only when
given as the model's ``"<provider>/"`` prefix or as a ``provider=`` other than that default.
Cost comes from `genai-prices` (when installed) for a known provider that `genai-prices` lists,
and a model it lists for that provider; an ``"openai"`` LLM pointed at another ``base_url`` is
not priced. Otherwise the cost is unknown, never guessed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from crewai.llms.base_llm import BaseLLM
from crewai.types.usage_metrics import UsageMetrics

from durable_core import Usage, record_usage
from durable_core import price_usd as core_price_usd

__all__ = ["collect_usage", "model_and_provider", "price_usd", "track_usage_of"]

_METHOD = "_track_token_usage_internal"
_MARK = "__durable_crewai_usage__"
_COUNTERS = (
    "prompt_tokens",
    "completion_tokens",
    "cached_prompt_tokens",
    "cache_creation_tokens",
    "successful_requests",
)


@dataclass(frozen=True, slots=True)
class _Report:
    """One provider response's usage, as CrewAI counted it, and the LLM that received it."""

    model: str | None
    provider: str | None
    base_url: str | None
    counts: dict[str, int]


_sink: ContextVar[list[_Report] | None] = ContextVar("durable_crewai_usage_sink", default=None)
_inside: ContextVar[bool] = ContextVar("durable_crewai_usage_inside", default=False)


def track_usage_of(cls: type[Any]) -> None:
    """Wrap the `_track_token_usage_internal` that instances of `cls` use (idempotent)."""
    for klass in cls.__mro__:
        original = vars(klass).get(_METHOD)
        if original is None:
            continue
        if not getattr(original, _MARK, False):
            setattr(klass, _METHOD, _tracked(original, exact=klass is BaseLLM))
        return


def _tracked(original: Callable[..., Any], *, exact: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    def tracked(self: Any, usage_data: Any, *args: Any, **kwargs: Any) -> Any:
        sink = _sink.get()
        if sink is None or _inside.get():  # outside a durable LLM step, or a super() call of an override
            return original(self, usage_data, *args, **kwargs)
        before = None if exact else _counters(self)
        token = _inside.set(True)
        try:
            result = original(self, usage_data, *args, **kwargs)
        finally:
            _inside.reset(token)
        if exact:  # BaseLLM's own: exactly what it added, whatever other threads add meanwhile
            metrics = UsageMetrics.from_provider_dict(usage_data if isinstance(usage_data, dict) else None)
            counts = {name: getattr(metrics, name) for name in _COUNTERS} if metrics is not None else None
        else:  # a provider's override (Bedrock): what it added to the counters
            after = _counters(self)
            counts = (
                {name: after[name] - before[name] for name in _COUNTERS}
                if before is not None and after is not None
                else None
            )
        if counts is not None and any(counts.values()):
            sink.append(_Report(*model_and_provider(self), _base_url(self), counts))
        return result

    setattr(tracked, _MARK, True)
    return tracked


def _counters(llm: Any) -> dict[str, int] | None:
    counters = getattr(llm, "_token_usage", None)
    if not isinstance(counters, dict):
        return None
    return {name: int(counters.get(name) or 0) for name in _COUNTERS}  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]


track_usage_of(BaseLLM)


@contextmanager
def collect_usage(llms: Callable[[], list[Any]]) -> Generator[None]:
    """Run a model-call step's body: afterwards (also when it raised) report its usage to the step.

    `llms()` names the LLM(s) the body called, for the model name of a call that reported nothing.
    """
    reports: list[_Report] = []
    token = _sink.set(reports)
    try:
        yield
    finally:
        _sink.reset(token)
        if reports:
            for report in reports:
                record_usage(_usage(report))
        else:
            known = [llm for llm in llms() if isinstance(llm, BaseLLM)]
            model, provider = model_and_provider(known[0] if known else None)
            record_usage(Usage(model=model, provider=provider))


def _usage(report: _Report) -> Usage:
    counts = report.counts
    usage = Usage(
        model=report.model,
        provider=report.provider,
        input_tokens=counts["prompt_tokens"],
        output_tokens=counts["completion_tokens"],
        cache_read_tokens=counts["cached_prompt_tokens"],
        cache_write_tokens=counts["cache_creation_tokens"],
        requests=counts["successful_requests"] or 1,
    )
    if report.provider == "openai" and report.base_url and "api.openai.com" not in report.base_url:
        return usage  # an OpenAI-compatible server of someone else's: its prices are not OpenAI's
    return replace(usage, cost_usd=price_usd(usage))


def _base_url(llm: Any) -> str | None:
    for name in ("base_url", "api_base"):
        value = getattr(llm, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def model_and_provider(llm: Any) -> tuple[str | None, str | None]:
    """(model, provider) of `llm`; the provider None unless CrewAI or the user named it.

    CrewAI's own classes (native providers, the LiteLLM-backed `LLM`) route to ``llm.provider``.
    A custom `BaseLLM` gets ``"openai"`` by default when its model has no ``"<provider>/"``
    prefix, which says nothing about where it sends requests: for it a prefix names the
    provider (and is taken off the model), and so does a ``provider=`` other than the default.
    """
    if not isinstance(llm, BaseLLM):
        return None, None
    model = llm.model if isinstance(llm.model, str) and llm.model else None
    provider = llm.provider or None
    if type(llm).__module__.split(".")[0] == "crewai":
        if llm.is_litellm and model and "/" in model:
            provider = model.partition("/")[0]
        return model, provider
    if model and "/" in model:
        prefix, _, rest = model.partition("/")
        return rest or model, prefix
    return model, provider if provider != "openai" else None


# CrewAI's (and LiteLLM's) provider names -> genai-prices provider ids
_GENAI_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "claude": "anthropic",
    "gemini": "google",
    "google": "google",
    "vertex_ai": "google",
    "azure": "azure",
    "bedrock": "aws",
    "aws": "aws",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral",
    "cohere": "cohere",
    "xai": "x-ai",
    "openrouter": "openrouter",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "cerebras": "cerebras",
}


def price_usd(usage: Usage) -> float | None:
    """The cost of one call by `genai-prices`, or None when the provider, model or tokens are unknown."""
    provider = _GENAI_PROVIDERS.get((usage.provider or "").lower())
    if provider is None or not usage.model:
        return None
    model = usage.model
    if "/" in model and model.partition("/")[0].lower() == (usage.provider or "").lower():
        model = model.partition("/")[2]
    return core_price_usd(usage, provider, model)
