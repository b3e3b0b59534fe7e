"""Usage recorded with model-call steps, totals over workflow trees, and budgets (pause / fail),
on both databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from durable_core import (
    Budget,
    BudgetExceeded,
    Engine,
    Usage,
    record_usage,
    step,
    workflow,
    workflow_options,
)
from durable_core.testing import wait_until_waiting

APP = str(Path(__file__).parents[1] / "apps" / "core_usage_app.py")
calls: list[str] = []


@step(name="fake_model", model_call=True)
def fake_model(prompt: str) -> str:
    calls.append(prompt)
    record_usage(Usage(model="fake-1", provider="scripted", input_tokens=10, output_tokens=5, cost_usd=0.01))
    return f"answer to {prompt}"


@step(name="silent_model", model_call=True)
def silent_model(prompt: str) -> str:
    calls.append(prompt)  # a scripted model that reports no usage
    return prompt.upper()


@step(name="plain_tool")
def plain_tool(x: int) -> int:
    return x + 1


@workflow(name="usage_child")
def usage_child(tag: str) -> str:
    return fake_model(f"{tag}-a") + fake_model(f"{tag}-b")


@workflow(name="usage_parent")
def usage_parent(n: int) -> int:
    for i in range(n):
        fake_model(f"p{i}")
    plain_tool(1)
    silent_model("quiet")
    usage_child("c1")
    return len(calls)


@workflow(name="spender")
def spender(n: int) -> int:
    for i in range(n):
        fake_model(f"s{i}")
    return n


@workflow(name="spending_parent")
def spending_parent() -> str:
    return usage_child("k1") + usage_child("k2")


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


def test_usage_is_recorded_with_model_steps_and_totalled_over_the_tree(engine: Any) -> None:
    with workflow_options(workflow_id="tree"):
        usage_parent(3)
    status = engine.get_workflow_status("tree")
    usage = status.usage
    assert usage is not None
    # 3 own + 1 silent + 2 in the child; the plain tool is no model call
    assert usage.model_calls == 6
    assert (usage.input_tokens, usage.output_tokens, usage.tokens) == (50, 25, 75)
    assert usage.cost_usd == pytest.approx(0.05)
    assert usage.unknown_tokens == 1 and usage.unpriced == 1  # the silent model: unknown, not zero
    assert set(usage.by_model) == {"fake-1", "unknown"} and usage.by_model["fake-1"].model_calls == 5
    child = engine.get_workflow_status("tree-6").usage
    assert child is not None and child.model_calls == 2 and child.tokens == 30
    listed = {s.workflow_id: s.usage for s in engine.list_workflows()}
    assert listed["tree"] == usage
    by_name = engine.usage(group_by="name")
    assert set(by_name) == {"usage_parent"} and by_name["usage_parent"].model_calls == 6
    by_model = engine.usage(group_by="model")
    assert by_model["fake-1"].tokens == 75 and by_model["unknown"].model_calls == 1
    assert next(iter(engine.usage(group_by="day").values())).model_calls == 6
    assert engine.usage(since=int(time.time() * 1000) + 60_000) == {}
    # running the finished id again makes no model call and counts nothing more
    with workflow_options(workflow_id="tree"):
        usage_parent(3)
    assert engine.get_workflow_status("tree").usage == usage


def test_a_replay_after_a_crash_never_counts_twice(database_url: str, tmp_path: Path) -> None:
    """A real process dies before its third model call; the restarted executor replays the two
    recorded calls (no usage added) and makes the other two: 4 calls, counted once each."""
    env = {**os.environ, "DURABLE_EXECUTOR_ID": "usage-worker", "DURABLE_CRASH_BEFORE_STEP": "3"}
    crashed = subprocess.run(
        [sys.executable, APP, database_url, "run"], env=env, capture_output=True, text=True
    )
    assert crashed.returncode != 0, crashed.stdout + crashed.stderr
    env.pop("DURABLE_CRASH_BEFORE_STEP")
    resumed = subprocess.run(
        [sys.executable, APP, database_url, "recover"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "result 4" in resumed.stdout, resumed.stdout + resumed.stderr
    with Engine(database_url) as engine:
        usage = engine.get_workflow_status("crashy").usage
        assert usage is not None
        assert usage.model_calls == 4 and usage.tokens == 60, usage


def test_budget_fail_stops_before_the_model_call_and_records_budget_exceeded(engine: Any) -> None:
    with workflow_options(workflow_id="fails", budget=Budget(max_model_calls=2, on_exceeded="fail")):
        handle = engine.start_workflow(spender, 5)
    with pytest.raises(BudgetExceeded, match="max_model_calls=2"):
        handle.get_result(timeout_seconds=30)
    assert calls == ["s0", "s1"]  # the third call was never made
    status = engine.get_workflow_status("fails")
    assert status.status == "ERROR" and isinstance(status.error, BudgetExceeded)
    assert status.usage is not None and status.usage.model_calls == 2


def test_budget_pause_is_a_durable_wait_lifted_by_raise_budget(engine: Any) -> None:
    with workflow_options(workflow_id="pauses", budget=Budget(max_tokens=30)):
        handle = engine.start_workflow(spender, 4)
    status = wait_until_waiting(engine, "pauses")
    assert status.waiting is not None and status.waiting.kind == "budget" and status.waiting.topic is None
    assert "max_tokens=30" in (status.waiting.detail or "")
    assert calls == ["s0", "s1"]
    raised = engine.raise_budget("pauses", max_tokens=45)
    assert raised.max_tokens == 45
    deadline = time.monotonic() + 30
    while len(calls) < 3 and time.monotonic() < deadline:  # one more call fits ...
        time.sleep(0.02)
    time.sleep(0.3)
    assert wait_until_waiting(engine, "pauses").waiting.kind == "budget"  # ... then it pauses again
    assert calls == ["s0", "s1", "s2"]
    engine.raise_budget("pauses", max_tokens=1000)
    assert handle.get_result(timeout_seconds=30) == 4
    assert calls == ["s0", "s1", "s2", "s3"]


def test_children_inherit_and_share_one_budget(engine: Any) -> None:
    with workflow_options(workflow_id="shared", budget=Budget(max_model_calls=3, on_exceeded="fail")):
        handle = engine.start_workflow(spending_parent)
    with pytest.raises(BudgetExceeded):
        handle.get_result(timeout_seconds=30)
    assert calls == ["k1-a", "k1-b", "k2-a"]  # the fourth call, in the second child, is refused
    assert engine.get_workflow_status("shared").usage.model_calls == 3


def test_a_paused_budget_survives_sigkill_and_resumes_after_raise(database_url: str) -> None:
    """The pause outlives its process: a SIGKILLed worker's paused run is still paused in a new
    one, keeps what it spent, and continues after `raise_budget`."""
    env = {**os.environ, "DURABLE_EXECUTOR_ID": "budget-worker"}
    worker = subprocess.Popen(
        [sys.executable, APP, database_url, "pause"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Engine(database_url).connect() as client:
            wait_until_waiting(client, "paused-run", timeout_seconds=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    restarted = subprocess.Popen(
        [sys.executable, APP, database_url, "recover"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Engine(database_url).connect() as client:
            status = wait_until_waiting(client, "paused-run", timeout_seconds=60)
            assert status.waiting is not None and status.waiting.kind == "budget"
            assert status.usage is not None and status.usage.model_calls == 2
            client.raise_budget("paused-run", max_model_calls=10)
        out, err = restarted.communicate(timeout=60)
        assert "result 4" in out, out + err
        with Engine(database_url).connect() as client:
            final = client.get_workflow_status("paused-run")
            assert final.status == "SUCCESS" and final.usage is not None and final.usage.model_calls == 4
    finally:
        if restarted.poll() is None:
            restarted.kill()
