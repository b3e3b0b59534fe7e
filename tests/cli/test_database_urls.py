"""Database URLs a newcomer writes, from `Engine(...)` and from the `durable` CLI.

In-memory SQLite works for one engine; ``sqlite://agents.db`` (two slashes) is an error showing
the right form; ``postgres://`` is PostgreSQL; a SQLite file in a directory the process cannot
write says so. None of them ends in a raw SQLAlchemy traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_app import durable_bin

from durable_core import Engine, workflow, workflow_options
from durable_core.errors import DatabaseUnavailable


@workflow(name="url_test.double")
def double(n: int) -> int:
    return 2 * n


def _python(code: str, *, as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", textwrap.dedent(code)]
    if as_nobody and os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {k: v for k, v in os.environ.items() if k != "DURABLE_DATABASE_URL"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


def _durable(*args: str, as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    command = [durable_bin(), *args]
    if as_nobody and os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {k: v for k, v in os.environ.items() if k != "DURABLE_DATABASE_URL"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


def _not_chained(error: BaseException) -> None:
    """No SQLAlchemy exception printed under ours ("The above exception was the direct cause...")."""
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def _no_raw_traceback(stderr: str) -> None:
    assert "sqlalchemy" not in stderr.lower(), stderr
    assert "TypeError" not in stderr, stderr


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_serves_one_engine_and_leaves_nothing(url: str) -> None:
    engine = Engine(url)
    with engine, workflow_options(workflow_id="mem-1"):
        assert double(21) == 42
        assert engine.get_workflow_status("mem-1").output == 42
        assert [s.workflow_id for s in engine.list_workflows()] == ["mem-1"]
        private = Path(engine.database.sqlite_file or "")
        assert private.exists()
    assert not private.parent.exists()  # removed at shutdown
    with Engine(url) as fresh:
        assert fresh.list_workflows() == []  # a new engine, a new database


def test_two_slashes_is_a_clear_error_with_the_right_form() -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        Engine("sqlite://agents.db").launch()
    assert "did you mean 'sqlite:///agents.db'" in caught.value.message
    _not_chained(caught.value)

    script = _python("from durable_core import Engine; Engine('sqlite://agents.db').launch()")
    assert script.returncode == 1
    assert "did you mean 'sqlite:///agents.db'" in script.stderr
    _no_raw_traceback(script.stderr)

    cli = _durable("workflows", "list", "--database-url", "sqlite://agents.db")
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert "did you mean 'sqlite:///agents.db'" in " ".join(cli.stderr.split())


@pytest.mark.backends("postgres")
def test_postgres_scheme_is_postgresql(database_url: str) -> None:
    assert database_url.startswith("postgresql+psycopg://")
    hosted = "postgres://" + database_url.removeprefix("postgresql+psycopg://")
    with Engine(hosted) as engine, workflow_options(workflow_id="pg-1"):
        assert double(4) == 8
        assert engine.database.dialect == "postgresql"
    listed = _durable("workflows", "list", "-q", "--database-url", hosted)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == "pg-1\n"


@pytest.fixture
def locked_dir() -> Iterator[Path]:
    """A directory this test's subprocesses may read but not write (as nobody when root)."""
    directory = Path(tempfile.mkdtemp(prefix="durable-url-ro-"))
    directory.chmod(0o755 if os.geteuid() == 0 else 0o555)
    yield directory
    directory.chmod(0o755)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_an_unwritable_directory_says_so(locked_dir: Path) -> None:
    url = f"sqlite:///{locked_dir / 'agents.db'}"
    script = _python(f"from durable_core import Engine; Engine({url!r}).launch()", as_nobody=True)
    assert script.returncode == 1
    assert f"this process cannot create files in '{locked_dir}' (permission denied)" in script.stderr
    assert "server" not in script.stderr  # not "check that the server is running"
    _no_raw_traceback(script.stderr)

    cli = _durable("migrate", "--database-url", url, as_nobody=True)
    assert cli.returncode == 1, cli.stdout
    assert "cannot create files in" in " ".join(cli.stderr.split()) and "Traceback" not in cli.stderr
    assert list(locked_dir.iterdir()) == []


def test_unsupported_urls_are_clear() -> None:
    for url, expected in (
        ("mysql://u@h/db", "supports SQLite ('sqlite:///durable.db') and PostgreSQL"),
        ("postgresql+psycopg2://u@h/db", "use 'postgresql+psycopg://'"),
        ("not a url", "Invalid database URL"),
        ("sqlite:///x.db?cache=shared", "the only one is '?mode=ro'"),
    ):
        with pytest.raises(DatabaseUnavailable) as caught:
            Engine(url).launch()
        assert expected in caught.value.message, (url, caught.value.message)
        _not_chained(caught.value)


def test_the_cli_explains_an_in_memory_url() -> None:
    result = _durable("workflows", "list", "--database-url", "sqlite://")
    assert result.returncode == 1 and result.stdout == ""
    assert "is an in-memory database: it exists only inside the engine that opened it" in " ".join(
        result.stderr.split()
    )
    _no_raw_traceback(result.stderr)
