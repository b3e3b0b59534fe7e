"""Workflows and steps: ids, replay, idempotency, children, retries, determinism (SQLite and Postgres)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import inspect
import uuid
from typing import Any

import pydantic
import pytest

from durable_core import (
    Engine,
    EngineNotLaunched,
    NondeterminismError,
    SerializationError,
    StepRetriesExceeded,
    WorkflowConflictError,
    WorkflowNotFoundError,
    step,
    workflow,
    workflow_options,
)
from durable_core._context import current_context

calls: list[str] = []


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


@step()
def double(x: int) -> int:
    calls.append(f"double({x})")
    return 2 * x


@step()
async def adouble(x: int) -> int:
    calls.append(f"adouble({x})")
    await asyncio.sleep(0)
    return 2 * x


@workflow()
def sync_flow(x: int) -> int:
    return double(double(x)) + 1


@workflow()
async def async_flow(x: int) -> list[int]:
    return list(await asyncio.gather(adouble(x), adouble(x + 1), adouble(x + 2)))


def test_sync_workflow_records_each_step_once(engine: Engine) -> None:
    with workflow_options(workflow_id="wf-1"):
        assert sync_flow(3) == 13
    steps = engine.list_steps("wf-1")
    assert [(s.step_id, s.name, s.output) for s in steps] == [(1, "double", 6), (2, "double", 12)]
    status = engine.get_workflow_status("wf-1")
    assert status.status == "SUCCESS" and status.output == 13
    assert status.inputs == {"args": [3], "kwargs": {}}
    assert status.executor_id == engine.executor_id


def test_rerunning_a_finished_id_returns_recorded_result_without_running(engine: Engine) -> None:
    with workflow_options(workflow_id="once"):
        assert sync_flow(1) == 5
    calls.clear()
    with workflow_options(workflow_id="once"):
        assert sync_flow(1) == 5
    assert calls == []


async def test_gather_numbers_steps_in_call_order(engine: Engine) -> None:
    with workflow_options(workflow_id="gather"):
        assert await async_flow(1) == [2, 4, 6]
    steps = await engine.list_steps_async("gather")
    assert [(s.step_id, s.output) for s in steps] == [(1, 2), (2, 4), (3, 6)]


def test_decorators_keep_signature_and_async_nature() -> None:
    assert inspect.iscoroutinefunction(adouble)
    assert inspect.iscoroutinefunction(async_flow)
    assert not inspect.iscoroutinefunction(double)
    assert list(inspect.signature(sync_flow).parameters) == ["x"]
    assert sync_flow.__name__ == "sync_flow"


def test_step_outside_workflow_is_plain_call() -> None:
    assert double(4) == 8
    assert calls == ["double(4)"]


def test_workflow_without_engine_raises_engine_not_launched() -> None:
    with pytest.raises(EngineNotLaunched, match=r"engine\.launch\(\)"):
        sync_flow(1)


def test_start_workflow_returns_handle(engine: Engine) -> None:
    handle = engine.start_workflow(sync_flow, 5)
    assert handle.get_result(timeout_seconds=10) == 21
    assert handle.get_status().status == "SUCCESS"
    assert engine.retrieve_workflow(handle.workflow_id).get_result() == 21


async def test_start_workflow_async(engine: Engine) -> None:
    handle = await engine.start_workflow_async(async_flow, 2)
    assert await handle.get_result_async(timeout_seconds=10) == [4, 6, 8]
    # sync engine calls work while an event loop runs in this thread
    assert engine.retrieve_workflow(handle.workflow_id).get_status().status == "SUCCESS"


def test_unknown_workflow_id(engine: Engine) -> None:
    with pytest.raises(WorkflowNotFoundError):
        engine.retrieve_workflow("nope")
    with pytest.raises(WorkflowNotFoundError):
        engine.get_workflow_status("nope")
    with pytest.raises(WorkflowNotFoundError):
        engine.fork_workflow("nope", 1)


@workflow()
def other_flow(x: int) -> int:
    return x


def test_same_id_other_function_conflicts(engine: Engine) -> None:
    with workflow_options(workflow_id="shared"):
        sync_flow(1)
    with pytest.raises(WorkflowConflictError, match="shared"), workflow_options(workflow_id="shared"):
        other_flow(1)


@workflow()
def child_flow(x: int) -> int:
    return double(x)


@workflow()
def parent_flow(x: int) -> dict[str, Any]:
    first = double(x)
    direct = child_flow(first)
    handle = Engine.current().start_workflow(child_flow, 100)
    return {"direct": direct, "background": handle.get_result(), "id": handle.workflow_id}


def test_child_workflow_ids_follow_parent_and_step(engine: Engine) -> None:
    with workflow_options(workflow_id="p"):
        result = parent_flow(1)
    assert result == {"direct": 4, "background": 200, "id": "p-4"}
    steps = engine.list_steps("p")
    assert [(s.step_id, s.name, s.child_workflow_id) for s in steps] == [
        (1, "double", None),
        (2, "child_flow", "p-2"),
        (3, "durable.get_result", None),
        (4, "child_flow", "p-4"),
        (5, "durable.get_result", None),
    ]
    child = engine.get_workflow_status("p-2")
    assert child.parent_workflow_id == "p" and child.output == 4


attempts: dict[str, int] = {}


class Flaky(Exception):
    pass


@step(max_attempts=3, interval_seconds=0.01, backoff_rate=1.0, retry_on=(Flaky,))
def flaky(key: str, fail_times: int) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] <= fail_times:
        raise Flaky(f"attempt {attempts[key]}")
    return "ok"


@step(max_attempts=3, interval_seconds=0.01, retry_on=(Flaky,))
def wrong_kind() -> None:
    attempts["wrong"] = attempts.get("wrong", 0) + 1
    raise KeyError("not retried")


@workflow()
def retry_flow(key: str, fail_times: int) -> str:
    return flaky(key, fail_times)


@workflow()
def wrong_kind_flow() -> None:
    wrong_kind()


def test_step_retries_then_succeeds(engine: Engine) -> None:
    key = uuid.uuid4().hex
    assert retry_flow(key, 2) == "ok"
    assert attempts[key] == 3


def test_step_retries_exceeded_carries_errors_and_replays(engine: Engine) -> None:
    key = uuid.uuid4().hex
    with pytest.raises(StepRetriesExceeded) as info, workflow_options(workflow_id=key):
        retry_flow(key, 10)
    assert len(info.value.errors) == 3 and all(isinstance(e, Flaky) for e in info.value.errors)
    assert attempts[key] == 3
    # the recorded error is raised again, without running the step, with every attempt's error
    with pytest.raises(StepRetriesExceeded) as replayed, workflow_options(workflow_id=key):
        retry_flow(key, 10)
    assert attempts[key] == 3
    assert [type(e) for e in replayed.value.errors] == [Flaky, Flaky, Flaky]
    assert engine.get_workflow_status(key).status == "ERROR"


def test_exception_not_in_retry_on_raises_unwrapped_after_one_attempt(engine: Engine) -> None:
    attempts.pop("wrong", None)
    with pytest.raises(KeyError):
        wrong_kind_flow()
    assert attempts["wrong"] == 1


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Report(pydantic.BaseModel):
    title: str
    when: dt.datetime
    tags: set[str]


@step()
def make_report(title: str) -> Report:
    return Report(title=title, when=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), tags={"a"})


@workflow()
def typed_flow(p: Point, color: Color, raw: bytes, ident: uuid.UUID) -> tuple[Report, Point, bytes]:
    assert isinstance(p, Point) and isinstance(color, Color) and isinstance(raw, bytes)
    assert isinstance(ident, uuid.UUID)
    return make_report(color.value), p, raw


def test_typed_values_round_trip_by_annotations(engine: Engine) -> None:
    ident = uuid.uuid4()
    handle = engine.start_workflow(typed_flow, Point(1, 2), Color.RED, b"\x00\xff", ident)
    report, point, raw = handle.get_result()
    assert report.title == "red" and point == Point(1, 2) and raw == b"\x00\xff"
    # from the database (a new handle has no in-memory result): decoded by the return annotation
    decoded = engine.retrieve_workflow(handle.workflow_id)
    decoded._future = None
    report2, point2, raw2 = decoded.wait_outcome(5)
    assert isinstance(report2, Report) and report2.when.year == 2026 and report2.tags == {"a"}
    assert point2 == Point(1, 2) and raw2 == b"\x00\xff"
    status = engine.get_workflow_status(handle.workflow_id)
    assert status.inputs["args"][0] == Point(1, 2) and status.inputs["args"][1] is Color.RED


class Opaque:
    pass


@workflow()
def takes_anything(x: Any) -> Any:
    return x


@step()
def returns_opaque() -> Any:
    return Opaque()


@workflow()
def opaque_output_flow() -> Any:
    return returns_opaque()


def test_unserializable_input_is_refused_and_nothing_recorded(engine: Engine) -> None:
    with (
        pytest.raises(SerializationError, match="takes_anything") as info,
        workflow_options(workflow_id="bad-input"),
    ):
        takes_anything(Opaque())
    assert "Opaque" in str(info.value)
    assert engine.list_workflows(workflow_ids=["bad-input"]) == []


def test_unserializable_step_output_names_step_and_type(engine: Engine) -> None:
    with pytest.raises(SerializationError, match=r"returns_opaque.*Opaque"):
        opaque_output_flow()


replay_mode = {"swap": False}


@step()
def step_a() -> str:
    return "a"


@step()
def step_b() -> str:
    return "b"


@workflow()
def shape_shifter() -> str:
    first = step_b() if replay_mode["swap"] else step_a()
    if current_context() is not None and not replay_mode["swap"]:
        raise RuntimeError("crash after step 1")
    return first


def test_nondeterminism_names_workflow_step_and_both_names(engine: Engine) -> None:
    replay_mode["swap"] = False
    with pytest.raises(RuntimeError), workflow_options(workflow_id="nd"):
        shape_shifter()
    # Simulate a recovery under changed code: fork from step 2 replays step 1 from the record.
    replay_mode["swap"] = True
    handle = engine.fork_workflow("nd", 2, new_workflow_id="nd-fork")
    with pytest.raises(NondeterminismError) as info:
        handle.get_result(timeout_seconds=10)
    message = str(info.value)
    assert "nd-fork" in message and "step 1" in message and "step_a" in message and "step_b" in message
    assert engine.get_workflow_status("nd-fork").status == "ERROR"
    assert issubclass(NondeterminismError, BaseException) and not issubclass(NondeterminismError, Exception)


def test_duplicate_workflow_name_from_other_function_is_refused() -> None:
    def make() -> Any:
        def sync_flow(x: int) -> int:  # same qualname as a module-level workflow? no: local qualname differs
            return x

        return sync_flow

    workflow(name="unique-name-1")(make())
    with pytest.raises(ValueError, match="name="):

        @workflow(name="unique-name-1")
        def another(x: int) -> int:
            return x


async def test_launch_inside_running_loop(database_url: str) -> None:
    engine = Engine(database_url)
    engine.launch()
    try:
        assert await async_flow(0) == [0, 2, 4]
    finally:
        engine.shutdown()


async def test_async_twins_of_introspection(engine: Engine) -> None:
    handle = await engine.start_workflow_async(sync_flow, 2)
    assert await handle.get_result_async(timeout_seconds=10) == 9
    status = await engine.get_workflow_status_async(handle.workflow_id)
    assert status.status == "SUCCESS"
    assert await engine.count_workflows_async(status="SUCCESS", name="sync_flow") >= 1
    assert [s.name for s in await engine.list_steps_async(handle.workflow_id)] == ["double", "double"]
    assert [w.workflow_id for w in await engine.list_workflows_async(workflow_ids=[handle.workflow_id])] == [
        handle.workflow_id
    ]
