"""Durable LangGraph: a checkpointer in the durable engine's database, and graphs whose runs
resume by themselves after a crash.

```python
from durable_langgraph import DurableCheckpointer, DurableGraph

graph = builder.compile(checkpointer=DurableCheckpointer(engine))
durable = DurableGraph(graph, name="support")   # build before engine.launch()
engine.launch()
durable.invoke(inputs, {"configurable": {"thread_id": "t1"}})
```

Every chat-model call a node makes is a model call of the run, recorded with the
`usage_metadata` of the `AIMessage` it returned (memoized model-call steps, e.g. a
`durable_runnable` chat model, replay without counting again):
``engine.get_workflow_status(run_id).usage``. ``DurableGraph(graph, name=..., budget=Budget(...))``
checks a budget before each of them and pauses the run durably (or fails it) when it is reached.
"""

from importlib.util import find_spec as _find_spec

if _find_spec("langgraph") is None or _find_spec("langchain_core") is None:  # pragma: no cover
    raise ImportError('durable_langgraph needs LangGraph: pip install "durable-agents[langgraph]"')

from ._codec import display_value
from ._errors import CheckpointDecodeError, CheckpointerNotReady, GraphNotDurable
from ._run import DurableGraph
from ._saver import DurableCheckpointer
from ._steps import durable_runnable, step
from ._waits import RESUME_TOPIC, segment_event

__all__ = [
    "RESUME_TOPIC",
    "CheckpointDecodeError",
    "CheckpointerNotReady",
    "DurableCheckpointer",
    "DurableGraph",
    "GraphNotDurable",
    "display_value",
    "durable_runnable",
    "segment_event",
    "step",
]
