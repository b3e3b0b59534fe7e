"""What the tools accept from a person: statuses, times, and the dashboard's default port."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["DASHBOARD_PORT", "STATUSES", "parse_time"]

DASHBOARD_PORT = 8790  # not 8765, the agent-inbox example's port
STATUSES = ("PENDING", "ENQUEUED", "SUCCESS", "ERROR", "CANCELLED", "RETRIES_EXCEEDED")

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str) -> datetime:
    """An ISO date/time (local time when naive) or a duration ago: ``30m``, ``2h``, ``1d``.

    Raises:
        ValueError: `text` is neither (the message says what is accepted).
    """
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: amount})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO format (2026-01-31 or 2026-01-31T14:00) or a duration "
            f"ago (30m, 2h, 1d)"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()
