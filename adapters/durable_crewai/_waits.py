"""Human input (`Task(human_input=True)`) as a durable wait answered by `engine.send`.

CrewAI asks for feedback through a context-scoped `HumanInputProvider`; the durable kickoff
installs this one. Instead of `input()`, it publishes what is to be reviewed as the event
`HUMAN_INPUT_EVENT` and waits on the topic `HUMAN_INPUT_TOPIC` of the kickoff's workflow:

```python
waiting = engine.list_workflows(waiting=True)          # the paused kickoff
engine.get_event(waiting[0].workflow_id, HUMAN_INPUT_EVENT)  # {"task": ..., "output": ...}
engine.send(waiting[0].workflow_id, "", topic=HUMAN_INPUT_TOPIC)   # "" approves; text asks for changes
```

The wait survives a restart (re-run the same kickoff), and each answer is recorded, so a
resumed kickoff never asks the same question twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from crewai.core.providers.human_input import AsyncExecutorContext, ExecutorContext, SyncHumanInputProvider

from durable_core import in_workflow

__all__ = ["HUMAN_INPUT_EVENT", "HUMAN_INPUT_TOPIC", "DurableHumanInputProvider"]

HUMAN_INPUT_TOPIC = "crewai.human_input"
HUMAN_INPUT_EVENT = "crewai.human_input"

_review: ContextVar[dict[str, Any] | None] = ContextVar("durable_crewai_review", default=None)


class DurableHumanInputProvider(SyncHumanInputProvider):
    """Asks for feedback through the engine; outside a durable kickoff it prompts in the terminal.

    Args:
        wait_seconds: how long one wait lasts before it is renewed (each renewal is a recorded
            step, so keep it long); the kickoff waits until an answer arrives.
    """

    def __init__(self, wait_seconds: float = 24 * 3600.0) -> None:
        self.wait_seconds = wait_seconds

    def handle_feedback(self, formatted_answer: Any, context: ExecutorContext) -> Any:
        token = _review.set(_review_payload(formatted_answer, context))
        try:
            return super().handle_feedback(formatted_answer, context)
        finally:
            _review.reset(token)

    async def handle_feedback_async(self, formatted_answer: Any, context: AsyncExecutorContext) -> Any:
        token = _review.set(_review_payload(formatted_answer, context))
        try:
            return await super().handle_feedback_async(formatted_answer, context)
        finally:
            _review.reset(token)

    def _handle_regular_feedback(self, current_answer: Any, initial_feedback: str, context: Any) -> Any:
        # CrewAI's feedback loop, with the review payload refreshed after each revision, so the
        # reviewer is shown the answer they are asked about (not the first one).
        feedback, answer = initial_feedback, current_answer
        while context.ask_for_human_input:
            if feedback.strip() == "":
                context.ask_for_human_input = False
            else:
                context.messages.append(context._format_feedback_message(feedback))
                answer = context._invoke_loop()
                _review.set(_review_payload(answer, context))
                feedback = self._prompt_input(context.crew)
        return answer

    async def _handle_regular_feedback_async(
        self, current_answer: Any, initial_feedback: str, context: Any
    ) -> Any:
        feedback, answer = initial_feedback, current_answer
        while context.ask_for_human_input:
            if feedback.strip() == "":
                context.ask_for_human_input = False
            else:
                context.messages.append(context._format_feedback_message(feedback))
                answer = await context._ainvoke_loop()
                _review.set(_review_payload(answer, context))
                feedback = await self._prompt_input_async(context.crew)
        return answer

    def _prompt_input(self, crew: Any) -> str:  # type: ignore[override]
        if not in_workflow():
            return SyncHumanInputProvider._prompt_input(crew)
        from durable_core import recv, set_event

        set_event(HUMAN_INPUT_EVENT, _review.get())
        while True:
            answer = recv(topic=HUMAN_INPUT_TOPIC, timeout_seconds=self.wait_seconds)
            if answer is not None:
                return _feedback_text(answer)

    async def _prompt_input_async(self, crew: Any) -> str:  # type: ignore[override]
        if not in_workflow():
            return await SyncHumanInputProvider._prompt_input_async(crew)
        from durable_core import recv_async, set_event_async

        await set_event_async(HUMAN_INPUT_EVENT, _review.get())
        while True:
            answer = await recv_async(topic=HUMAN_INPUT_TOPIC, timeout_seconds=self.wait_seconds)
            if answer is not None:
                return _feedback_text(answer)


def _review_payload(formatted_answer: Any, context: ExecutorContext) -> dict[str, Any]:
    task = context.task
    return {
        "task": (task.name or task.description)[:200] if task is not None else None,
        "agent": getattr(context.agent, "role", None),
        "output": SyncHumanInputProvider._get_output_string(formatted_answer),  # pyright: ignore[reportPrivateUsage]
    }


def _feedback_text(answer: Any) -> str:
    """An answer is the feedback text, or a mapping with a "feedback" entry; "" approves."""
    if isinstance(answer, Mapping):
        return str(answer.get("feedback", ""))  # type: ignore[reportUnknownArgumentType]
    return str(answer)
