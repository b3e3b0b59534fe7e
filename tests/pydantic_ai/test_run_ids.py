"""Default run ids of agent runs inside a workflow: counted per workflow execution, replay-stable."""

from __future__ import annotations

import asyncio

from durable_pydantic_ai import Durability, DurableAgent
from pai_support import CallLog, three_tool_agent, unique_name
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel

from durable_core import Engine, workflow, workflow_options


def test_two_run_sync_calls_in_one_sync_workflow_get_their_own_run_ids(engine: Engine) -> None:
    name = unique_name("syncids")
    log = CallLog()
    durable_agent = DurableAgent(three_tool_agent(name, log))

    @workflow(name=f"{name}.conversation")
    def conversation() -> list[str]:
        first = durable_agent.run_sync("one")
        # Continuing the conversation: the second run must not reuse the first run's id.
        second = durable_agent.run_sync("two", message_history=first.all_messages())
        return [first.run_id, second.run_id]

    with workflow_options(workflow_id="sync-conversation"):
        handle = engine.start_workflow(conversation)
    assert handle.get_result(timeout_seconds=60) == ["sync-conversation", "sync-conversation:1"]
    assert len(engine.list_steps("sync-conversation")) == 8  # 7 steps, then the answer to "two"

    # A replay (a fork re-running only the last model request) numbers the runs the same way.
    log.calls.clear()
    fork = engine.fork_workflow("sync-conversation", 8, new_workflow_id="sync-conversation-fork")
    assert fork.get_result(timeout_seconds=60) == ["sync-conversation-fork", "sync-conversation-fork:1"]
    assert log.calls == ["model"]


async def test_runs_started_together_in_an_async_workflow_get_distinct_run_ids(engine: Engine) -> None:
    name = unique_name("gatherids")
    agent = Agent(TestModel(), name=name, capabilities=[Durability()])

    @workflow(name=f"{name}.fan_out")
    async def fan_out() -> list[str]:
        results = await asyncio.gather(agent.run("a"), agent.run("b"))
        return [result.run_id for result in results]

    with workflow_options(workflow_id="fan-out"):
        handle = await engine.start_workflow_async(fan_out)
    assert sorted(await handle.get_result_async(timeout_seconds=60)) == ["fan-out", "fan-out:1"]


async def test_sequential_runs_in_an_async_workflow_count_from_the_workflow_id(engine: Engine) -> None:
    name = unique_name("asyncids")
    durable_agent = DurableAgent(Agent(TestModel(), name=name))

    @workflow(name=f"{name}.chain")
    async def chain() -> list[str]:
        first = await durable_agent.run("one")
        second = await durable_agent.run("two", message_history=first.all_messages())
        third = await durable_agent.run("three", message_history=second.all_messages())
        return [first.run_id, second.run_id, third.run_id]

    with workflow_options(workflow_id="chain"):
        handle = await engine.start_workflow_async(chain)
    assert await handle.get_result_async(timeout_seconds=60) == ["chain", "chain:1", "chain:2"]
