"""The pytest plugin (`durable_core.pytest_plugin`): auto-registered through the pytest11 entry point,
loadable with -p, the `crash_safety` fixture, the `durable_workflow` marker and --durable-crash-matrix.

Each test runs pytest in a child process on a small project written to a temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

APP = """
from durable_core import current_engine, step, workflow
from durable_core.testing import crash_ledger

@step()
def reserve(order_id: str) -> str:
    return f"reserved {order_id}"

@step()
def charge(order_id: str) -> str:
    crash_ledger.record("charge-card", order_id)   # not idempotent
    return f"charged {order_id}"

@workflow()
def place_order(order_id: str) -> str:
    return reserve(order_id) + ", " + charge(order_id)
"""


def _project(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "test_app.py").write_text(textwrap.dedent(tests))
    return tmp_path


def _pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("DURABLE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_entry_point_is_registered() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("durable_core.pytest_plugin") == "durable_core.pytest_plugin"


def test_the_fixture_and_the_session_summary(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
        from app import place_order

        def test_crash_safe(crash_safety):
            report = crash_safety(place_order, "o-1", process="in-process", crash_points="before")
            report.assert_ok()
            assert report.matrix_size == 2

        def test_charge_twice_is_found(crash_safety):
            report = crash_safety(place_order, "o-2", process="in-process")
            assert not report.ok
            assert "charge-card[o-2] x2" in report.table()
        """,
    )
    result = _pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "durable crash-safety" in result.stdout
    assert "place_order('o-1'): ok -- 2 crash points" in result.stdout
    assert "place_order('o-2'): FAILED -- 5 crash points" in result.stdout


def test_explicit_loading_next_to_the_entry_point_and_disabling(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
        def test_fixture_exists(crash_safety):
            assert callable(crash_safety)
        """,
    )
    explicit = _pytest(project, "-p", "durable_core.pytest_plugin")
    assert explicit.returncode == 0, explicit.stdout + explicit.stderr
    disabled = _pytest(project, "-p", "no:durable_core.pytest_plugin")
    assert disabled.returncode != 0 and "fixture 'crash_safety' not found" in disabled.stdout


MARKED = """
import pytest
from durable_core import current_engine
from app import place_order


@pytest.mark.durable_workflow
def test_order_is_placed():
    assert place_order("o-3") == "reserved o-3, charged o-3"
    assert [s.name for s in current_engine().list_steps(current_engine().list_workflows()[0].workflow_id)] == [
        "reserve",
        "charge",
    ]


@pytest.mark.durable_workflow(crash_points="before")
def test_before_only():
    assert place_order("o-4").startswith("reserved")


def test_unmarked_runs_normally():
    assert 1 + 1 == 2
"""


def test_marked_tests_run_once_with_an_engine_by_default(tmp_path: Path) -> None:
    result = _pytest(_project(tmp_path, MARKED))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert "durable crash-safety" not in result.stdout


def test_the_crash_matrix_runs_marked_tests_under_every_crash_point(tmp_path: Path) -> None:
    result = _pytest(_project(tmp_path, MARKED), "--durable-crash-matrix", "-rf")
    # the charge is not idempotent: its in-flight window charges twice; crashes before steps are fine
    assert "1 failed, 2 passed" in result.stdout, result.stdout + result.stderr
    assert "FAILED test_app.py::test_order_is_placed" in result.stdout
    assert "side effect repeated: charge-card[o-3] x2" in result.stdout
    assert "test_order_is_placed(): FAILED -- 5 crash points" in result.stdout
    assert "test_before_only(): ok -- 2 crash points" in result.stdout


def test_the_matrix_checks_the_test_body_assertions_after_each_recovery(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
        import pytest
        from app import reserve
        from durable_core import current_engine, workflow, workflow_options

        @workflow()
        def hold(order_id: str) -> str:
            return reserve(order_id)

        @pytest.mark.durable_workflow(crash_points="after")
        def test_never_recovered():
            with workflow_options(workflow_id="hold-1"):
                assert hold("o-5") == "reserved o-5"
            # true in a plain run, false once a crash made the engine recover it
            assert current_engine().get_workflow_status("hold-1").recovery_attempts == 0
        """,
    )
    plain = _pytest(project)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    result = _pytest(project, "--durable-crash-matrix", "--durable-crash-points", "before")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "test_never_recovered(): FAILED -- 1 crash points" in result.stdout  # the marker's "after" wins
    assert "after recovery the call raised AssertionError: assert 1 == 0" in result.stdout


@pytest.mark.parametrize("path", ["tests/core/test_workflows.py", "tests/core/test_waits.py"])
def test_the_projects_own_tests_are_unaffected(path: str) -> None:
    root = Path(__file__).resolve().parents[2]
    if not (root / path).exists():
        pytest.skip(f"{path} is not in this tree")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--backend", "sqlite", path],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "durable crash-safety" not in result.stdout
