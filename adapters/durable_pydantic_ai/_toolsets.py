"""Which toolsets may join a durable run at run time.

The toolsets an agent is built with are bound to the durability capability when it is attached:
each of their tool calls becomes a step. A toolset that executes tools and arrives later, through
`run(toolsets=...)` or a capability passed per run, would run its tools inline in workflow code,
unrecorded, so a crash would repeat their side effects. Such toolsets are refused inside a durable
run, as pydantic-ai's own durable integrations do; toolsets that execute nothing themselves (an
`ExternalToolset`, whose calls come back as `DeferredToolRequests`) are allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, cast

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.exceptions import UserError
from pydantic_ai.toolsets import AbstractToolset, DynamicToolset, FunctionToolset

__all__ = ["refuse_executing_toolsets", "toolsets_of_capabilities"]

ENGINE = "durable-agents"
OPT_OUT_KEY = "durable"


def _executing_class(leaf: AbstractToolset[Any]) -> str | None:
    """The class name of a leaf toolset that executes tools itself (or resolves dynamically), else None."""
    if isinstance(leaf, DynamicToolset):
        return type(leaf).__name__
    if isinstance(leaf, FunctionToolset):
        tools = leaf.tools.values()
        # Tools marked `metadata={'durable': False}` run inline, unrecorded, by the user's choice.
        if tools and all((tool.metadata or {}).get(OPT_OUT_KEY) is False for tool in tools):
            return None
        return type(leaf).__name__
    try:
        from pydantic_ai.mcp import MCPToolset
    except ImportError:  # pragma: no cover - the MCP extra is not installed
        return None
    if isinstance(leaf, MCPToolset):
        return "MCPToolset" if type(leaf).__name__.startswith("_") else type(leaf).__name__
    return None


def refuse_executing_toolsets(
    toolsets: Iterable[AbstractToolset[Any]], *, registered: Collection[int] = ()
) -> None:
    """Raise `UserError` naming each toolset class that executes tools and is not in `registered`.

    Args:
        toolsets: Toolsets given to one run (trees: every leaf is checked).
        registered: `id()`s of the leaves bound when the agent was built; these are fine.
    """
    classes: list[str] = []
    labels: list[str] = []

    def collect(leaf: AbstractToolset[Any]) -> None:
        if id(leaf) in registered:
            return
        cls = _executing_class(leaf)
        if cls is None:
            return
        if cls not in classes:
            classes.append(cls)
        label = leaf.id
        if label is not None and label not in labels:
            labels.append(label)

    for toolset in toolsets:
        toolset.apply(collect)
    if not classes:
        return
    named = ", ".join(f"`{cls}`" for cls in classes)
    ids = f" (toolset {', '.join(repr(label) for label in labels)})" if labels else ""
    it = "it" if len(classes) == 1 and len(labels) <= 1 else "them"
    raise UserError(
        f"{named} cannot be passed to `run(toolsets=...)` at runtime with {ENGINE}{ids}: toolsets that "
        "execute their own tools or resolve dynamically must be registered for durable execution when "
        f"the agent is constructed (each tool call is then a step), so pass {it} to the agent constructor "
        "instead, not to `run(toolsets=...)` nor through a capability passed per run; non-executing "
        "toolsets such as `ExternalToolset` can be passed at runtime, and so can a `FunctionToolset` whose "
        f"tools all opt out of steps with `metadata={{{OPT_OUT_KEY!r}: False}}` (they run inline, unrecorded)."
    )


def toolsets_of_capabilities(capabilities: Sequence[Any] | None) -> list[AbstractToolset[Any]]:
    """The toolsets per-run capabilities contribute (a toolset function counts as a dynamic toolset)."""
    found: list[AbstractToolset[Any]] = []
    for capability in capabilities or ():
        if not isinstance(capability, AbstractCapability):
            continue
        contributed: Any = cast(AbstractCapability[Any], capability).get_toolset()
        if isinstance(contributed, AbstractToolset):
            found.append(cast(AbstractToolset[Any], contributed))
        elif callable(contributed):
            found.append(DynamicToolset[Any](cast(Callable[..., Any], contributed)))
    return found
