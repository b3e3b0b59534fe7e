"""durable_crewai: CrewAI kickoffs that survive crashes without repeating an LLM or tool call.

Example:
    ```python
    from crewai import Crew
    from durable_core import Engine
    from durable_crewai import durable_kickoff

    crew = Crew(agents=[...], tasks=[...], before_kickoff_callbacks=[durable_kickoff])
    with Engine("sqlite:///crew.db"):
        crew.kickoff(inputs={"topic": "AI"})   # after a crash, running it again resumes it
    ```

A kickoff is one durable workflow. Every LLM call and tool call is a step; a task whose
output is on record is skipped outright on resume (its callbacks, events and `output_file`
do not fire again); human input (`Task(human_input=True)`) is a durable wait answered with
`engine.send(workflow_id, answer, topic=HUMAN_INPUT_TOPIC)`.

Usage and budgets: every LLM call step is a model-call step recording what CrewAI's provider
response reported (the numbers `Crew.usage_metrics` is built from: tokens, cached tokens,
requests), the model, the provider and, when `genai-prices` can price it, the cost in USD;
`engine.get_workflow_status(crew_workflow_id(crew, inputs)).usage` totals a kickoff, and a
resumed kickoff never counts a replayed call again. A budget for a kickoff:

    instrument(crew, budget=Budget(max_cost_usd=1.0))      # every kickoff of this crew
    with workflow_options(budget=Budget(max_tokens=50_000)):
        crew.kickoff(inputs={...})                          # this kickoff

It is checked before each LLM call: by default a kickoff that reached it pauses durably
(`crew.kickoff()` blocks; the run is listed as waiting with kind ``"budget"``) until
`engine.raise_budget(workflow_id, ...)`, also across a crash and a re-run of the kickoff;
``Budget(..., on_exceeded="fail")`` makes the kickoff raise `BudgetExceeded` instead (CrewAI's
task retries do not ask again).

What cannot be replayed exactly, and how it behaves:
- Memory and knowledge retrieval run again on resume (their stores may have changed, and
  memory extraction calls the LLM on background threads outside any task); a changed
  prompt then stops the resume with `CrewDivergenceError` rather than mixing records.
- `Agent(inject_date=True)` puts today's date in prompts: a resume on another day diverges.
- `async_execution=True` tasks run one after another inside a durable kickoff.
- Parallel native tool calls run in the LLM's order (one at a time), so each replays to its call.
- Tool results are recorded as JSON; a value JSON cannot hold is recorded as its `str()`,
  and the tool returns that same form on the live run and on replay.
- CrewAI's `latest_kickoff_task_outputs.db`, `task_callback`, `TaskStarted/Completed` events
  and `output_file` writes are not redone for skipped tasks.
- A kickoff started with `akickoff` is resumed with `akickoff` (and `kickoff` with `kickoff`).
- A kickoff that ended in an error keeps it: re-running it raises the recorded error again
  (LLM and tool failures are recorded steps, so a replay reproduces them). To retry, fork
  the workflow before the failing step (`engine.fork_workflow`) and kick off again with
  `workflow_options(workflow_id=<the fork's id>)`, or use another workflow id.
- A workflow id names one crew with one set of inputs: re-using a finished kickoff's id for
  another crew or other inputs raises `CrewDivergenceError` instead of returning its result.
- `Crew.replay(task_id)` is a durable run of its own (id: the kickoff's id + `-replay-<n>`).
- An Engine launched only to watch or answer kickoffs (a web front end) should use another
  `app_version`, so that it never takes over a crashed kickoff it cannot run.

CrewAI sends telemetry unless told not to: set `CREWAI_DISABLE_TELEMETRY=true`,
`OTEL_SDK_DISABLED=true` and `CREWAI_TRACING_ENABLED=false` for offline runs.
"""

import importlib.util

if importlib.util.find_spec("crewai") is None:  # pragma: no cover - exercised without the extra
    raise ImportError("durable_crewai needs CrewAI: pip install 'durable-agents[crewai]'")

from ._callback import durable_kickoff
from ._errors import CrewDivergenceError, DurabilityNotActive
from ._identity import default_workflow_id as crew_workflow_id
from ._run import KICKOFF_WORKFLOW, instrument, is_instrumented
from ._waits import HUMAN_INPUT_EVENT, HUMAN_INPUT_TOPIC, DurableHumanInputProvider

__all__ = [
    "HUMAN_INPUT_EVENT",
    "HUMAN_INPUT_TOPIC",
    "KICKOFF_WORKFLOW",
    "CrewDivergenceError",
    "DurabilityNotActive",
    "DurableHumanInputProvider",
    "crew_workflow_id",
    "durable_kickoff",
    "instrument",
    "is_instrumented",
]
