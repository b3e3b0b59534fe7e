"""Step names for a durable agent run.

Names are persisted compatibility data: a recovering workflow checks each recorded step's name
against the step it is about to call, so changing a name strands in-flight runs. They are built
to be read in `durable` listings and the dashboard:

| operation                     | step name                                   |
|-------------------------------|---------------------------------------------|
| model request (any model)     | `{agent}.model.request`                     |
| streamed model request        | `{agent}.model.request_stream`              |
| agent's own function tool     | `{agent}.tool.{tool}`                       |
| tool of toolset `ts`          | `{agent}.{kind}.{ts}.tool.{tool}`           |
| tool-argument validator       | `... .tool.{tool}.validate_args`            |
| MCP / dynamic discovery       | `{agent}.{kind}.{ts}.get_tools` (`.get_instructions`) |
| event stream handler          | `{agent}.event_stream_handler`              |
| capability operation          | `{agent}.capability.{id}.{operation}`       |

The model id is deliberately left out of model-request names, so every model request of a run
shares one name whatever model serves it.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic_ai.durable_exec import (
    CapabilityOperationId,
    DurableOperationId,
    EventStreamHandlerId,
    JournalOperationNamer,
    ModelCancelSuspendedResponseId,
    ModelCompactMessagesId,
    ModelRequestId,
    ToolsetCallToolId,
    ToolsetGetInstructionsId,
    ToolsetGetToolsId,
    ToolsetValidateToolArgumentsId,
)

__all__ = ["StepNamer"]

AGENT_TOOLSET_ID = "<agent>"
"""The id pydantic-ai gives an agent's own `tools=` toolset."""


class StepNamer(JournalOperationNamer):
    """Maps pydantic-ai's typed durable operations onto readable, stable step names."""

    def __init__(self, agent_name: str) -> None:
        super().__init__(agent_name)
        self._agent = agent_name

    def _toolset_prefix(self, kind: str, toolset_id: str) -> str:
        if kind == "function" and toolset_id == AGENT_TOOLSET_ID:
            return self._agent
        return f"{self._agent}.{kind}.{toolset_id}"

    def operation_name(self, operation_id: DurableOperationId) -> str:
        match operation_id:
            case ModelRequestId(streaming=streaming):
                return f"{self._agent}.model.request_stream" if streaming else f"{self._agent}.model.request"
            case ModelCancelSuspendedResponseId():
                return f"{self._agent}.model.cancel_suspended_response"
            case ModelCompactMessagesId():
                return f"{self._agent}.model.compact_messages"
            case EventStreamHandlerId():
                return f"{self._agent}.event_stream_handler"
            case CapabilityOperationId(capability_id=capability_id, operation=operation):
                return f"{self._agent}.capability.{capability_id}.{operation}"
            case ToolsetGetToolsId(toolset_kind=kind, toolset_id=toolset_id):
                return f"{self._toolset_prefix(kind, toolset_id)}.get_tools"
            case ToolsetGetInstructionsId(toolset_id=toolset_id):
                return f"{self._toolset_prefix('mcp', toolset_id)}.get_instructions"
            case ToolsetValidateToolArgumentsId(toolset_kind=kind, toolset_id=toolset_id):
                return f"{self._toolset_prefix(kind, toolset_id)}.tool"
            case ToolsetCallToolId(toolset_kind=kind, toolset_id=toolset_id):
                return f"{self._toolset_prefix(kind, toolset_id)}.tool"
            case _:  # pyright: ignore[reportUnnecessaryComparison]
                # The union grows in minor releases; fall back to the generic journal name.
                return super().operation_name(operation_id)

    def invocation_name(self, operation_id: DurableOperationId, *, label: str | None):
        """Append the tool name to every tool step, MCP tools included."""
        base = super().invocation_name(operation_id, label=label)
        name = self.operation_name(operation_id)
        if (
            isinstance(operation_id, (ToolsetCallToolId, ToolsetValidateToolArgumentsId))
            and label is not None
        ):
            name = f"{name}.{label}"
            if isinstance(operation_id, ToolsetValidateToolArgumentsId):
                name = f"{name}.validate_args"
        return replace(base, operation_name=name)
