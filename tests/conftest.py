"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL, a fresh database per test.

Backends: ``--backend sqlite|postgres|all`` (default all) or env ``DURABLE_TEST_BACKENDS``.
Postgres: ``DURABLE_TEST_PG_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
Under ``CI=true`` an unreachable Postgres fails the run instead of skipping.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from playwright.sync_api import Browser, Page

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

PG_ADMIN_URL = os.environ.get("DURABLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        default=os.environ.get("DURABLE_TEST_BACKENDS", "all"),
        help="storage backends to test: sqlite, postgres or all",
    )


def _backends(config: pytest.Config) -> list[str]:
    value = str(config.getoption("--backend"))
    return ["sqlite", "postgres"] if value == "all" else [b.strip() for b in value.split(",") if b.strip()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = _backends(metafunc.config)
        marker = metafunc.definition.get_closest_marker("backends")
        if marker is not None:  # @pytest.mark.backends("postgres"): only these
            backends = [b for b in backends if b in marker.args]
        metafunc.parametrize("backend", backends, scope="function")


_pg_checked: bool | None = None


def _pg_admin() -> object:
    import psycopg

    plain = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(plain, autocommit=True, connect_timeout=5)


def _require_postgres() -> None:
    global _pg_checked
    if _pg_checked is None:
        try:
            conn = _pg_admin()
            conn.close()  # type: ignore[attr-defined]
            _pg_checked = True
        except Exception as exc:
            _pg_checked = False
            if os.environ.get("CI") == "true":
                pytest.fail(f"PostgreSQL is unreachable at {PG_ADMIN_URL} under CI=true: {exc}")
    if not _pg_checked:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is unreachable at {PG_ADMIN_URL} under CI=true")
        pytest.skip("PostgreSQL is unreachable (set DURABLE_TEST_PG_URL or start the server)")


def make_pg_database() -> tuple[str, str]:
    """Create a fresh Postgres database; return (name, SQLAlchemy URL)."""
    _require_postgres()
    name = f"durable_test_{uuid.uuid4().hex[:12]}"
    conn = _pg_admin()
    conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    conn.close()  # type: ignore[attr-defined]
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    try:
        conn = _pg_admin()
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        conn.close()  # type: ignore[attr-defined]
    except Exception:
        pass


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL (not launched)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'durable.db'}"
        return
    name, url = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[object]:
    """A launched Engine on a fresh database."""
    from durable_core import Engine

    eng = Engine(database_url, heartbeat_seconds=0.5, lease_seconds=5.0)
    eng.launch()
    try:
        yield eng
    finally:
        eng.shutdown()


# -- a real headless Chromium (Debian's chromium driven by Playwright; never a downloaded browser) --

CHROMIUM = os.environ.get("DURABLE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    missing: list[str] = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the Python package playwright (pip install playwright)")
    if not Path(CHROMIUM).exists():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A global OpenTelemetry SDK tracer provider exporting to memory, for this test only."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.util._once import Once

    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = trace._TRACER_PROVIDER  # pyright: ignore[reportPrivateUsage]
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # pyright: ignore[reportPrivateUsage]
    trace.set_tracer_provider(tracer_provider)
    try:
        yield tracer_provider, exporter
    finally:
        trace._TRACER_PROVIDER = previous  # pyright: ignore[reportPrivateUsage]
        trace._TRACER_PROVIDER_SET_ONCE = Once()  # pyright: ignore[reportPrivateUsage]


# -- a private PostgreSQL cluster, for tests that stop or restart the server ------------------------
# Never the shared server: restarting it would break every other test (and CI job) using it.


class PrivatePostgres:
    """A PostgreSQL cluster of this test alone: initdb into a temporary directory, its own port."""

    def __init__(self, bin_dir: Path, data: Path, port: int) -> None:
        self.bin_dir, self.data, self.port = bin_dir, data, port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        import subprocess

        subprocess.run(
            [
                "runuser", "-u", "postgres", "--", str(self.bin_dir / "pg_ctl"), "-D", str(self.data),
                "-l", str(self.data.parent / "server.log"), "-w", "-t", "60", *args,
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        self._pg_ctl("-m", mode, "stop")

    def restart(self) -> None:
        """Stop (fast shutdown: sessions are terminated, as in a real restart) and start again."""
        self.stop("fast")
        self.start()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"this test must run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running private PostgreSQL cluster (needs root, to run it as the postgres user)."""
    import contextlib
    import shutil
    import socket
    import subprocess
    import tempfile

    root_dir = Path("/usr/lib/postgresql")
    versions = sorted(root_dir.iterdir(), reverse=True) if root_dir.is_dir() else []
    bin_dir = next((v / "bin" for v in versions if (v / "bin" / "initdb").exists()), None)
    if bin_dir is None or shutil.which("runuser") is None:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl) or runuser on this machine")
    if os.geteuid() != 0:
        _unavailable("a private PostgreSQL cluster runs as the postgres user, which needs root")
    assert bin_dir is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    root = Path(tempfile.mkdtemp(prefix="durable-pg-"))
    os.chmod(root, 0o755)
    shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(bin_dir, root / "data", port)
    try:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D", str(server.data), "-A", "trust",
             "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


# -- figures a test reports for the log (exactly-once counts): printed in the session summary, also
# under pytest-xdist (reports carry `user_properties` from the workers to the controller) --------

_FIGURES: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        _FIGURES.extend((report.nodeid, str(v)) for k, v in report.user_properties if k == "durable-figures")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if _FIGURES and not hasattr(config, "workerinput"):
        terminalreporter.write_sep("-", "durable figures")
        for nodeid, line in _FIGURES:
            terminalreporter.write_line(f"{line}  [{nodeid}]")
