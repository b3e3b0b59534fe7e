"""Durable execution for Pydantic AI agents on `durable_core`.

```python
from durable_pydantic_ai import DurableAgent, Durability

durable_agent = DurableAgent(agent)                       # each run is a workflow
result = await durable_agent.run('...', run_id='order-42')

agent = Agent(model, name='support', capabilities=[Durability()])   # inside your own @workflow
```
"""

from importlib.util import find_spec as _find_spec

if _find_spec("pydantic_ai") is None:  # pragma: no cover
    raise ImportError('durable_pydantic_ai needs Pydantic AI: pip install "durable-agents[pydantic-ai]"')

from ._agent import DurableAgent
from ._durability import Durability
from ._names import StepNamer
from ._spans import StepSpans
from ._steps import StepBackend, StepConfig
from ._waits import DEFERRED_TOOL_REQUESTS_EVENT, StepEventWaiter

__all__ = [
    "DEFERRED_TOOL_REQUESTS_EVENT",
    "Durability",
    "DurableAgent",
    "StepBackend",
    "StepConfig",
    "StepEventWaiter",
    "StepNamer",
    "StepSpans",
]
