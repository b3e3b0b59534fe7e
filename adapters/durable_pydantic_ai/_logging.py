"""The adapter's logger."""

import logging

__all__ = ["logger"]

logger = logging.getLogger("durable_pydantic_ai")
