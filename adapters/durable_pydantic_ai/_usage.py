"""What a model request consumed, as pydantic-ai reports it, recorded with its model-call step."""

from __future__ import annotations

from pydantic_ai.messages import ModelResponse

from durable_core import Usage

__all__ = ["usage_of"]


def usage_of(response: ModelResponse) -> Usage:
    """A model response's usage as pydantic-ai reports it; the cost from genai-prices when it can
    price the model (else unknown, never guessed); tokens unknown when the response omitted usage."""
    usage = response.usage
    measured = not usage.unmeasured_requests
    cost: float | None = None
    if measured and response.model_name:
        try:
            cost = float(response.cost().total_price)
        except Exception:  # an unknown model or provider: genai-prices cannot price it
            cost = None
    return Usage(
        model=response.model_name,
        provider=response.provider_name,
        input_tokens=usage.input_tokens if measured else None,
        output_tokens=usage.output_tokens if measured else None,
        cache_read_tokens=usage.cache_read_tokens if measured else None,
        cache_write_tokens=usage.cache_write_tokens if measured else None,
        requests=1,
        cost_usd=cost,
    )
