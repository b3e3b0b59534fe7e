"""What the stores' multi-outcome operations report: enums, never bare strings.

They are `StrEnum`s, so a result still equals (and prints as) its old string value.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ReceiveResult", "SendResult"]


class SendResult(StrEnum):
    """`MessageStore.send`."""

    SENT = "sent"
    DUPLICATE = "duplicate"  # the idempotency key was used already: nothing inserted
    NO_DESTINATION = "no-destination"  # no workflow has that id
    NOT_OWNER = "not-owner"  # the sending workflow is no longer owned by the caller: nothing written


class ReceiveResult(StrEnum):
    """`MessageStore.consume`."""

    RECEIVED = "received"
    EMPTY = "empty"  # no unconsumed message on the topic
    NOT_OWNER = "not-owner"  # the receiving workflow is no longer owned by the caller: nothing written
