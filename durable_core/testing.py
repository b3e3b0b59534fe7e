"""Helpers for testing durable code in your own test suite.

Example:
    ```python
    from durable_core.testing import crash_before_step, temporary_engine

    def test_resumes(tmp_path):
        # in a subprocess: crash_before_step(3); my_workflow()  -> the process dies before step 3
        # then, in a new process on the same database: the workflow resumes at step 3
        ...

    def test_in_process():
        with temporary_engine() as engine:
            assert my_workflow(2) == 4
    ```
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ._engine import Engine
from ._records import WorkflowStatus
from ._runtime import CRASH_POINTS

__all__ = ["CRASH_EXIT_CODE", "crash_before_step", "run_script", "temporary_engine", "wait_until_waiting"]

CRASH_EXIT_CODE = 86


def crash_before_step(
    step_id: int, *, workflow_id: str | None = None, exit_code: int = CRASH_EXIT_CODE
) -> None:
    """Make this process die with `os._exit` just before step `step_id` runs (of `workflow_id`, or of any
    workflow), the way a kill -9 or a power cut would: nothing is flushed, nothing cleaned up.

    Also armed by the environment variable ``DURABLE_CRASH_BEFORE_STEP=<step_id>`` (or
    ``<workflow_id>:<step_id>``) at import of this module.
    """
    CRASH_POINTS.append((workflow_id, step_id, exit_code))


def run_script(
    script: str | os.PathLike[str],
    *args: str,
    env: Mapping[str, str | None] | None = None,
    import_paths: Sequence[str | os.PathLike[str]] = (),
    timeout_seconds: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run a Python script in a fresh interpreter, as a crash test's "process" (it may `os._exit`).

    The child gets this environment with `env` applied (a None value removes the variable) and
    `import_paths` ahead of any PYTHONPATH. Output is captured as text; a non-zero exit is returned,
    not raised, so the test can assert the exit code of a deliberate crash.
    """
    environment = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    paths = [str(path) for path in import_paths if str(path)]
    if environment.get("PYTHONPATH"):
        paths.append(environment["PYTHONPATH"])
    if paths:
        environment["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )


@contextmanager
def temporary_engine(**kwargs: Any) -> Generator[Engine, None, None]:
    """A launched Engine on a fresh SQLite file in a temporary directory, shut down afterwards."""
    with tempfile.TemporaryDirectory(prefix="durable-") as directory:
        engine = Engine(f"sqlite:///{os.path.join(directory, 'durable.db')}", **kwargs)
        with engine:
            yield engine


def wait_until_waiting(engine: Engine, workflow_id: str, timeout_seconds: float = 20.0) -> WorkflowStatus:
    """Block until `workflow_id` waits (in recv, sleep or get_event); return its status.

    For tests of human-in-the-loop code: send the answer only once the workflow waits for it.
    """
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        waiting = engine.list_workflows(workflow_ids=[workflow_id], waiting=True)
        if waiting:
            return waiting[0]
        time.sleep(0.02)
    raise AssertionError(
        f"{workflow_id} did not start waiting within {timeout_seconds}s: {engine.get_workflow_status(workflow_id)}"
    )


def _arm_from_environment() -> None:
    spec = os.environ.get("DURABLE_CRASH_BEFORE_STEP")
    if not spec:
        return
    workflow_id, _, step = spec.rpartition(":")
    crash_before_step(int(step), workflow_id=workflow_id or None)


_arm_from_environment()
