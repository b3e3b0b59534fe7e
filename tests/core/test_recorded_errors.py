"""durable_core's own exceptions keep their class (and attributes) whenever a recorded error is
raised again: from another Engine, from another process, after the run finished (DESIGN §4).
(SQLite and Postgres.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import durable_core.errors as errors_module
from durable_core import (
    Engine,
    NondeterminismError,
    RecordedError,
    SerializationError,
    StepRetriesExceeded,
    step,
    workflow,
    workflow_options,
)
from durable_core._context import current_context
from durable_core._serialization import decode_error, encode_error
from durable_core.errors import (
    AwaitedWorkflowCancelled,
    DatabaseUnavailable,
    DurableError,
    EngineNotLaunched,
    QueueDeduplicatedError,
    RecoveryAttemptsExceeded,
    StepOutsideWorkflow,
    WorkflowCancelled,
    WorkflowConflictError,
    WorkflowNotFoundError,
)

SAMPLES: dict[str, Callable[[], BaseException]] = {
    "DurableError": lambda: DurableError("boom", workflow_id="wf-1", step_id=3),
    "EngineNotLaunched": EngineNotLaunched,
    "DatabaseUnavailable": lambda: DatabaseUnavailable("cannot reach postgresql://db/x"),
    "WorkflowConflictError": lambda: WorkflowConflictError("two functions", workflow_id="wf-1"),
    "WorkflowNotFoundError": lambda: WorkflowNotFoundError("wf-1"),
    "StepRetriesExceeded": lambda: StepRetriesExceeded(
        "step 'fetch' failed 2 times", [ValueError("a"), KeyError("b")], workflow_id="wf-1", step_id=2
    ),
    "SerializationError": lambda: SerializationError("cannot encode", workflow_id="wf-1", step_id=1),
    "QueueDeduplicatedError": lambda: QueueDeduplicatedError("q", "dedup-1", "wf-1"),
    "AwaitedWorkflowCancelled": lambda: AwaitedWorkflowCancelled("wf-1"),
    "RecoveryAttemptsExceeded": lambda: RecoveryAttemptsExceeded("wf-1", 51),
    "StepOutsideWorkflow": lambda: StepOutsideWorkflow("recv() is only valid inside a workflow"),
    "WorkflowCancelled": lambda: WorkflowCancelled("wf-1", "timed out"),
    "NondeterminismError": lambda: NondeterminismError("wf-1", 4, "fetch", "store"),
}


def _sample(name: str) -> BaseException:
    if name in SAMPLES:
        return SAMPLES[name]()
    cls = getattr(errors_module, name)
    try:
        return cls("wf-1")  # e.g. WorkflowCancelled subclasses, DurableError subclasses
    except TypeError:
        pytest.skip(f"no sample for durable_core.errors.{name}: add one to SAMPLES")


def _public(error: BaseException) -> dict[str, Any]:
    return {k: v for k, v in vars(error).items() if not k.startswith("_") and k != "errors"}


@pytest.mark.parametrize("name", [n for n in errors_module.__all__ if n != "RecordedError"])
def test_every_durable_error_keeps_its_class_and_attributes(name: str) -> None:
    original = _sample(name)
    rebuilt = decode_error(encode_error(original))
    assert type(rebuilt) is type(original)
    assert str(rebuilt) == str(original)
    assert _public(rebuilt) == _public(original)
    if isinstance(original, StepRetriesExceeded):
        assert isinstance(rebuilt, StepRetriesExceeded)
        assert [type(e) for e in rebuilt.errors] == [ValueError, KeyError]


def test_recorded_error_keeps_the_original_type_name() -> None:
    rebuilt = decode_error(encode_error(RecordedError("myapp.QuotaError", "over quota", "tb")))
    assert isinstance(rebuilt, RecordedError) and rebuilt.type_name == "myapp.QuotaError"


# -- through a real store: another Engine, another process -----------------------------------

mode = {"swap": False}


@step()
def fetch() -> str:
    return "fetched"


@step()
def store() -> str:
    return "stored"


@workflow()
def drifting() -> str:
    first = store() if mode["swap"] else fetch()
    if current_context() is not None and not mode["swap"]:
        raise RuntimeError("crash after step 1")
    return first


class Flaky(Exception):
    pass


@step(max_attempts=2, interval_seconds=0.01)
def always_fails() -> None:
    raise Flaky("no luck")


@workflow()
def retrying() -> None:
    always_fails()


class Opaque:
    pass


@workflow()
def opaque_output() -> Any:
    return Opaque()


def _fresh_engine_error(database_url: str, workflow_id: str) -> BaseException:
    other = Engine(database_url).connect()
    try:
        with pytest.raises(BaseException) as info:
            other.retrieve_workflow(workflow_id).get_result(timeout_seconds=10)
        return info.value
    finally:
        other.shutdown()


_CHILD = """
import json, sys
from durable_core import Engine
engine = Engine(sys.argv[1]).connect()
try:
    engine.retrieve_workflow(sys.argv[2]).get_result(timeout_seconds=10)
    print(json.dumps({"type": None}))
except BaseException as exc:
    attrs = {k: v for k, v in vars(exc).items() if not k.startswith("_") and isinstance(v, (str, int, type(None)))}
    print(json.dumps({"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "attrs": attrs,
                      "message": str(exc), "errors": [type(e).__name__ for e in getattr(exc, "errors", [])]}))
finally:
    engine.shutdown()
"""


def _other_process_error(database_url: str, workflow_id: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, database_url, workflow_id],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_nondeterminism_error_keeps_its_class_in_another_engine_and_process(engine: Engine) -> None:
    workflow_id = f"nd-{uuid.uuid4().hex[:8]}"
    mode["swap"] = False
    with pytest.raises(RuntimeError), workflow_options(workflow_id=workflow_id):
        drifting()
    mode["swap"] = True
    try:
        handle = engine.fork_workflow(workflow_id, 2, new_workflow_id=f"{workflow_id}-fork")
        with pytest.raises(NondeterminismError):
            handle.get_result(timeout_seconds=10)
    finally:
        mode["swap"] = False
    forked = f"{workflow_id}-fork"
    # after the run finished, from this engine (no in-memory outcome) and from a fresh one
    again = engine.retrieve_workflow(forked)
    again._future = None  # pyright: ignore[reportPrivateUsage]
    with pytest.raises(NondeterminismError) as info:
        again.get_result(timeout_seconds=10)
    for error in (info.value, _fresh_engine_error(engine.database_url, forked)):
        assert type(error) is NondeterminismError
        assert (error.workflow_id, error.step_id, error.recorded_name, error.called_name) == (
            forked,
            1,
            "fetch",
            "store",
        )
    child = _other_process_error(engine.database_url, forked)
    assert child["type"] == "durable_core.errors.NondeterminismError", child
    assert child["attrs"] == {
        "workflow_id": forked,
        "step_id": 1,
        "recorded_name": "fetch",
        "called_name": "store",
    }
    assert forked in child["message"] and "fetch" in child["message"] and "store" in child["message"]


def test_step_retries_exceeded_keeps_its_class_and_errors_elsewhere(engine: Engine) -> None:
    workflow_id = f"retries-{uuid.uuid4().hex[:8]}"
    with pytest.raises(StepRetriesExceeded), workflow_options(workflow_id=workflow_id):
        retrying()
    error = _fresh_engine_error(engine.database_url, workflow_id)
    assert type(error) is StepRetriesExceeded
    assert error.workflow_id == workflow_id
    assert [type(e) for e in error.errors] == [Flaky, Flaky]
    child = _other_process_error(engine.database_url, workflow_id)
    assert child["type"] == "durable_core.errors.StepRetriesExceeded", child
    assert child["attrs"]["workflow_id"] == workflow_id
    assert child["errors"] == ["RecordedError", "RecordedError"]  # Flaky is not importable there


def test_serialization_error_of_an_output_keeps_its_class_elsewhere(engine: Engine) -> None:
    workflow_id = f"opaque-{uuid.uuid4().hex[:8]}"
    with pytest.raises(SerializationError), workflow_options(workflow_id=workflow_id):
        opaque_output()
    error = _fresh_engine_error(engine.database_url, workflow_id)
    assert type(error) is SerializationError and error.workflow_id == workflow_id
    assert "Opaque" in str(error)
