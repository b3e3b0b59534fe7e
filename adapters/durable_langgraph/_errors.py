"""Errors of the LangGraph adapter, all `durable_core.errors.DurableError` subclasses.

```
DurableError
├── CheckpointerNotReady    the saver was used before engine.launch()
├── CheckpointDecodeError   a stored payload cannot be decoded with this saver's serde
└── GraphNotDurable         DurableGraph given a graph without a DurableCheckpointer
```
"""

from __future__ import annotations

from durable_core.errors import DurableError

__all__ = ["CheckpointDecodeError", "CheckpointerNotReady", "GraphNotDurable"]


class CheckpointerNotReady(DurableError):
    """The checkpointer was used before its engine was launched."""


class CheckpointDecodeError(DurableError):
    """A stored checkpoint, channel value or write cannot be decoded by this saver's serializer."""


class GraphNotDurable(DurableError):
    """`DurableGraph` needs a graph compiled with `checkpointer=DurableCheckpointer(engine)`."""
