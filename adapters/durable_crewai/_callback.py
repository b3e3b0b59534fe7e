"""`durable_kickoff`, the one-line form: `Crew(..., before_kickoff_callbacks=[durable_kickoff])`.

A before-kickoff callback receives only the inputs, never the crew. CrewAI's
`EXECUTION_START` hook does receive the crew, and fires just before the callbacks, but hooks
fail open (an exception in a hook is printed and swallowed). So the two are combined so that
the adapter fails closed: importing this package registers one global `EXECUTION_START`
hook that only notes which crew is starting; `durable_kickoff` then instruments that crew,
and raises if nothing was noted. Callback exceptions propagate out of `kickoff()`, so a crew
that asked for durability never runs without it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from crewai import Crew
from crewai.hooks import InterceptionPoint, get_hooks, register_hook

from durable_core import Engine

from ._errors import DurabilityNotActive
from ._run import instrument

__all__ = ["durable_kickoff", "install_hook"]

_starting: ContextVar[Crew | None] = ContextVar("durable_crewai_starting", default=None)


def durable_kickoff(inputs: dict[str, Any]) -> dict[str, Any]:
    """Make this kickoff a durable workflow; returns the inputs unchanged.

    Example:
        ```python
        crew = Crew(agents=[...], tasks=[...], before_kickoff_callbacks=[durable_kickoff])
        with Engine("sqlite:///crew.db"):
            crew.kickoff(inputs={"topic": "AI"})   # after a crash, the same line resumes it
        ```

    In a `@CrewBase` project, delegate from a `@before_kickoff` method:
    `return durable_kickoff(inputs)`.

    A budget for the kickoff: `with workflow_options(budget=Budget(...)): crew.kickoff(...)`,
    or `instrument(crew, budget=Budget(...))` once for every kickoff of the crew.

    Raises:
        EngineNotLaunched: no `Engine` is launched; the crew does not run.
        DurabilityNotActive: the adapter's hook did not see this kickoff start.
    """
    crew = _starting.get()
    _starting.set(None)
    if crew is None:
        hook_missing = not install_hook()
        raise DurabilityNotActive(
            "durable_kickoff could not make this kickoff durable, so the crew was not run: "
            + (
                "the adapter's EXECUTION_START hook had been removed "
                "(crewai.hooks.clear_all_global_hooks()?); it is registered again now, so kick off again. "
                if hook_missing
                else "it was called outside Crew.kickoff(). "
            )
            + "Alternatively make the crew durable explicitly with durable_crewai.instrument(crew)."
        )
    Engine.current()  # EngineNotLaunched, before any agent is set up or any task runs
    instrument(crew)
    return inputs


def _note_starting_crew(context: Any) -> None:
    crew = getattr(context, "crew", None)
    _starting.set(crew if isinstance(crew, Crew) else None)


def install_hook() -> bool:
    """Register the `EXECUTION_START` hook once; returns True if it was already registered."""
    if _note_starting_crew in get_hooks(InterceptionPoint.EXECUTION_START):
        return True
    register_hook(InterceptionPoint.EXECUTION_START, _note_starting_crew)
    return False


install_hook()
