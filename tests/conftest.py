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
