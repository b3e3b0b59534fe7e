"""Durable waits inside a workflow: one implementation (`Wait.poll`) and two thin drivers.

Every wait records its deadline before it blocks (on the workflow row, which is also what
`list_workflows(waiting=True)` reads), so after a restart it keeps its original deadline.
Waiters in this process are woken directly; other processes by Postgres LISTEN/NOTIFY, or by a
short poll on SQLite. Used by the comms API (sleep, recv, get_event) and by budgets (a pause).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ._keys import wake_key
from ._run import RunHost, WorkflowRun
from ._status import now_ms
from .storage import StepWrite

__all__ = ["Poller", "Wait", "drive_async", "drive_sync", "lost_ownership", "step_write"]


def step_write(ctx: WorkflowRun, step_id: int, name: str, output: str | None, started: int) -> StepWrite:
    return StepWrite(
        workflow_id=ctx.workflow_id,
        executor_id=ctx.executor_id,
        owner_epoch=ctx.owner_epoch,
        step_id=step_id,
        name=name,
        output=output,
        serialization=ctx.engine.serializer.name,
        started_at=started,
    )


def lost_ownership(ctx: WorkflowRun, step_id: int) -> None:
    ctx.resolve_unrecorded(step_id)


class Wait:
    """One durable wait inside a workflow: recorded deadline, wake-up keys, and one `poll`."""

    def __init__(
        self,
        ctx: WorkflowRun,
        step_id: int,
        name: str,
        label: str,
        timeout_seconds: float | None,
        keys: list[str],
        attempt: Callable[[StepWrite], tuple[bool, Any]] | None,
        final_output: Callable[[int | None], Any],
    ) -> None:
        self.ctx = ctx
        self.engine = ctx.engine
        self.step_id = step_id
        self.name = name
        self.keys = [*keys, wake_key(ctx.workflow_id)]
        self.attempt = attempt
        self.final_output = final_output
        self.started = now_ms()
        resume = ctx.resume_wait
        if resume is not None and resume[0] == step_id:
            self.deadline = resume[1]  # keep the original deadline across a restart
        else:
            self.deadline = None if timeout_seconds is None else self.started + int(timeout_seconds * 1000)
        self.label = label
        self.began = False
        self.polls = 0

    def begin(self) -> None:
        engine = self.ctx.engine
        if not engine.messages.begin_wait(
            workflow_id=self.ctx.workflow_id,
            executor_id=self.ctx.executor_id,
            owner_epoch=self.ctx.owner_epoch,
            topic=self.label,
            deadline=self.deadline,
            step_id=self.step_id,
        ):
            lost_ownership(self.ctx, self.step_id)
        self.began = True

    def poll(self) -> tuple[bool, Any]:
        """One round: done? and the value. Runs in a thread (blocking database work)."""
        self.ctx.check_alive()
        if not self.began:
            self.begin()
        step = step_write(self.ctx, self.step_id, self.name, None, self.started)
        if self.attempt is not None:
            done, value = self.attempt(step)
            if done:
                return True, value
        elif self.polls:
            self.ctx.check_still_owner(self.step_id)  # a cancel from another process
        self.polls += 1
        if self.deadline is not None and now_ms() >= self.deadline:
            value = self.final_output(self.deadline)
            step.output = self.ctx.engine.serializer.dumps(value)
            if not self.ctx.engine.messages.finish_wait(step=step, now=now_ms()):
                lost_ownership(self.ctx, self.step_id)
            return True, value
        return False, None

    def next_timeout(self) -> float | None:
        limits: list[float] = []
        now = now_ms()
        if self.deadline is not None:
            limits.append(max(0.0, (self.deadline - now) / 1000))
        if self.ctx.deadline_ms is not None:
            limits.append(max(0.0, (self.ctx.deadline_ms - now) / 1000))
        if self.attempt is not None:
            limits.append(self.ctx.engine.poll_interval)
        else:
            limits.append(self.ctx.engine.cancel_poll_interval)
        return min(limits) if limits else None


class Poller(Protocol):
    """A wait, seen by its drivers: the wake-up keys, one blocking `poll`, and how long to sleep."""

    @property
    def engine(self) -> RunHost: ...
    @property
    def keys(self) -> list[str]: ...

    def poll(self) -> tuple[bool, Any]: ...

    def next_timeout(self) -> float | None: ...


def drive_sync(wait: Poller) -> Any:
    with wait.engine.waiters.register(*wait.keys) as waiter:
        while True:
            done, value = wait.poll()
            if done:
                return value
            waiter.wait(wait.next_timeout())
            waiter.clear()


async def drive_async(wait: Poller) -> Any:
    engine = wait.engine
    with engine.waiters.register(*wait.keys) as waiter:
        while True:
            done, value = await engine.run_io(wait.poll)
            if done:
                return value
            await waiter.wait_async(wait.next_timeout())
            waiter.clear()
