"""pytest plugin of durable_core's crash-safety kit (registered through the ``pytest11`` entry point).

Also loadable explicitly: ``pytest -p durable_core.pytest_plugin``; disabled with
``-p no:durable_core.pytest_plugin``. It adds:

- the fixture ``crash_safety``: a callable ``crash_safety(fn, *args, **kwargs) -> CrashReport``,
  `durable_core.testing.check_crash_safety` on a temporary SQLite database of the test::

      def test_order_is_crash_safe(crash_safety):
          crash_safety(place_order, "order-42").assert_ok()

- the marker ``@pytest.mark.durable_workflow(**options)`` for tests whose body runs durable
  workflows. Normally such a test runs once, with a launched engine on a fresh temporary SQLite
  database (``durable_core.current_engine()`` returns it; the test launches none of its own).
- the option ``--durable-crash-matrix``: every test marked ``durable_workflow`` then runs under the
  crash matrix instead. Its body is the program: it runs once uncrashed, then once per crash point
  (before and after every step of every workflow it starts), killed there, recovered in a fresh
  engine, and run again (its workflows are not run twice: fixed ids return their recorded results).
  The body's own assertions must hold after every recovery, and the kit's report must be ok
  (`CrashReport.assert_ok`), else the test fails with the report's table. The matrix runs
  in-process (the test function and its fixture values stay in this process); the marker's
  keyword arguments are passed to `check_crash_safety` (``crash_points="all"``, ``answer=...``,
  ``setup=...``, ``normalize=...``, ``timeout_seconds=...``), and ``--durable-crash-points``
  sets the default crash points.

At the end of the session a summary lists every crash-safety report of the run: its matrix size
(crash points), its verdict and its time.

Nothing here imports durable_core until a test uses the kit, so the plugin costs nothing in
test runs that do not.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from .testing import CrashReport

__all__ = ["crash_safety"]

MARKER = "durable_workflow"
# reports travel as the test's `user_properties`, so the session summary is complete under
# pytest-xdist too (workers relay them to the controller)
_PROPERTY = "durable-crash-safety"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("durable", "durable_core crash-safety kit")
    group.addoption(
        "--durable-crash-matrix",
        action="store_true",
        default=False,
        help=f"run every test marked @pytest.mark.{MARKER} under the crash matrix (a crash before and "
        "after each step, recovered, the test's assertions checked again)",
    )
    group.addoption(
        "--durable-crash-points",
        default="every-step",
        choices=("every-step", "all", "before", "in-flight", "after"),
        help="default crash points of the matrix (default every-step; 'all' adds the in-flight window of every step)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): the test runs durable workflows on an engine the plugin launches; with "
        "--durable-crash-matrix it runs under the crash-safety matrix (options go to check_crash_safety)",
    )
    _seen.clear()


def _remember(item: pytest.Item, report: CrashReport) -> None:
    item.user_properties.append((_PROPERTY, (report.summary(), report.matrix_size, report.total_seconds)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "teardown":
        return
    for name, value in report.user_properties:
        if name == _PROPERTY:
            summary, size, seconds = cast(tuple[str, int, float], value)
            _seen.append((report.nodeid, str(summary), int(size), float(seconds)))


# (test id, summary line, crash points, seconds in the kit) of every report of the session
_seen: list[tuple[str, str, int, float]] = []


@pytest.fixture
def crash_safety(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., CrashReport]]:
    """`check_crash_safety(fn, *args, **kwargs)` on a temporary SQLite database of this test."""
    from .testing import check_crash_safety

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> CrashReport:
        kwargs.setdefault("database_url", f"sqlite:///{tmp_path / 'crash-safety' / 'durable.db'}")
        report = check_crash_safety(fn, *args, **kwargs)
        _remember(request.node, report)
        return report

    yield run


def _body(pyfuncitem: pytest.Function) -> Callable[[], Any]:
    function = pyfuncitem.obj
    names = pyfuncitem._fixtureinfo.argnames
    arguments = {name: pyfuncitem.funcargs[name] for name in names}

    def call() -> Any:
        result = function(**arguments)
        if inspect.isawaitable(result):
            import asyncio

            async def wait() -> Any:
                return await result

            return asyncio.run(wait())
        return result

    call.__name__ = call.__qualname__ = pyfuncitem.name
    return call


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    marker = pyfuncitem.get_closest_marker(MARKER)
    if marker is None:
        return None
    config = pyfuncitem.config
    body = _body(pyfuncitem)
    if not config.getoption("--durable-crash-matrix"):
        from .testing import temporary_engine

        with temporary_engine():
            body()
        return True
    from .testing import check_crash_safety

    options: dict[str, Any] = {
        "process": "in-process",
        "crash_points": config.getoption("--durable-crash-points"),
        "workflow_id": f"test-{pyfuncitem.name}"[:200],
        **marker.kwargs,
    }
    with tempfile.TemporaryDirectory(prefix="durable-crash-matrix-") as directory:
        options.setdefault("database_url", f"sqlite:///{Path(directory) / 'durable.db'}")
        report = check_crash_safety(body, **options)
    _remember(pyfuncitem, report)
    report.assert_ok()
    return True


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    reports = _seen
    if not reports or hasattr(config, "workerinput"):  # an xdist worker: the controller prints
        return
    terminalreporter.write_sep("-", "durable crash-safety")
    total_points = total_seconds = 0.0
    for nodeid, summary, size, seconds in reports:
        terminalreporter.write_line(f"{summary}  [{nodeid}]")
        total_points += size
        total_seconds += seconds
    terminalreporter.write_line(
        f"{len(reports)} report(s), {int(total_points)} crash points, {total_seconds:.1f}s in the kit"
    )
