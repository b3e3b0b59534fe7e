"""Durable LangGraph: a checkpointer in the durable engine's database, and graphs whose runs
resume by themselves after a crash.

```python
from durable_langgraph import DurableCheckpointer, DurableGraph

graph = builder.compile(checkpointer=DurableCheckpointer(engine))
durable = DurableGraph(graph, name="support")   # build before engine.launch()
engine.launch()
durable.invoke(inputs, {"configurable": {"thread_id": "t1"}})
```
"""

try:
    import langgraph.checkpoint.base as _langgraph_checkpoint  # noqa: F401
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "durable_langgraph needs LangGraph: install it with `pip install 'durable-agents[langgraph]'`."
    ) from _error

from ._errors import CheckpointDecodeError, CheckpointerNotReady, GraphNotDurable
from ._saver import DurableCheckpointer

__all__ = [
    "CheckpointDecodeError",
    "CheckpointerNotReady",
    "DurableCheckpointer",
    "GraphNotDurable",
]
