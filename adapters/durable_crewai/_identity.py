"""Default workflow ids: the same crew with the same inputs gets the same id in every process.

CrewAI's own `Crew.id` and `Task.id` are fresh uuid4s per construction, so they cannot say
"this is the kickoff that crashed". The default id hashes what makes a kickoff the same one:
each task's key (CrewAI's md5 of the uninterpolated description and expected output) with its
agent's role, the agents' roles, the process, and the inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._codec import digest

if TYPE_CHECKING:
    from crewai import Crew

__all__ = ["crew_structure_key", "default_workflow_id"]


def crew_structure_key(crew: Crew) -> str:
    """A hash of the crew's shape (tasks, agents, process), independent of the inputs."""
    tasks = [[task.key, task.agent.role if task.agent is not None else None] for task in crew.tasks]
    agents = [agent.role for agent in crew.agents]
    process = getattr(crew.process, "value", str(crew.process))
    return digest({"tasks": tasks, "agents": agents, "process": process})


def default_workflow_id(crew: Crew, inputs: dict[str, Any] | None) -> str:
    """``crewai-<name>-<hash>``: stable across processes for the same crew and inputs.

    Example:
        ```python
        crew_workflow_id(crew, {"topic": "AI"})  # 'crewai-crew-3f2a...'
        ```
    """
    name = (crew.name or "crew").strip().lower().replace(" ", "-")[:40]
    return f"crewai-{name}-{digest({'crew': crew_structure_key(crew), 'inputs': inputs or {}})}"
