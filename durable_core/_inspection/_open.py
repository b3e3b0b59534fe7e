"""Open a database for inspection from a process that has no workflow code.

The CLI and the dashboard inspect and steer workflows that run elsewhere. They must never
resume or claim those workflows themselves: they could not run them (the code is absent) and
a claim would strand them until the claimer's lease expires. `Engine.connect()` is that mode
when the core provides it; until then the engine is launched under an application version
that no workflow has, so recovery matches nothing.

Only `durable migrate` creates a database. Every other command needs one that exists: a
mistyped SQLite path is an error, never a new empty file. A SQLite file this process may read
but not write is opened read-only, so it can still be listed and shown.
"""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Generator
from contextlib import contextmanager

from .. import DurableError, Engine
from ..storage import Database, redact_url
from ..storage._database import is_memory_url, sqlite_file
from ..storage._migrations import schema_version

__all__ = [
    "CLIENT_APP_VERSION",
    "NoDatabase",
    "client_engine",
    "database_option",
    "open_engine",
    "redact_url",
    "resolve_url",
]

CLIENT_APP_VERSION = "durable-cli-client"
_URL_SOURCE = (
    "durable reads the URL from --database-url, else env DURABLE_DATABASE_URL, else sqlite:///durable.db"
)


class NoDatabase(DurableError):
    """The URL names no existing durable database (and the command would not create one)."""


def resolve_url(database_url: str | None) -> str:
    """The URL given, else env ``DURABLE_DATABASE_URL``, else ``sqlite:///durable.db``."""
    return database_url or os.environ.get("DURABLE_DATABASE_URL") or "sqlite:///durable.db"


def database_option(database_url: str | None) -> str:
    """The `` --database-url URL`` part of a command printed for the user (password hidden), or ''
    when no URL was given on the command line (the printed command then reads the same environment)."""
    if not database_url:
        return ""
    return f" --database-url {shlex.quote(redact_url(database_url))}"


def _writable(path: str) -> bool:
    directory = os.path.dirname(path) or "."
    sidecars = all(os.access(path + suffix, os.R_OK | os.W_OK) for suffix in ("-wal", "-shm"))
    return os.access(path, os.R_OK | os.W_OK) and (os.access(directory, os.W_OK | os.X_OK) or sidecars)


def _existing(url: str, *, writes: bool) -> str:
    """The URL to open an existing database with (read-only when only reading is possible)."""
    safe = redact_url(url)
    if is_memory_url(url):
        raise NoDatabase(
            f"{safe!r} is an in-memory database: it exists only inside the engine that opened it, so "
            f"durable cannot inspect it. Give it the URL of a SQLite file or a PostgreSQL server ({_URL_SOURCE})."
        )
    path = sqlite_file(url)
    if path is None:  # PostgreSQL: the server exists; are there durable tables in it?
        db = Database(url, retry_seconds=0)
        try:
            db.check_connection()
            version = schema_version(db)
        finally:
            db.dispose()
        if version == 0:
            raise NoDatabase(
                f"no durable-agents database at {safe!r}: the server answers, but it has no durable tables "
                f"(nothing has run with this URL yet). Check the database name ({_URL_SOURCE}); "
                "`durable migrate` creates the tables."
            )
        return url
    absolute = os.path.abspath(path)
    if not os.path.isfile(absolute):
        raise NoDatabase(
            f"no database exists at {absolute} ({safe}): check the path ({_URL_SOURCE}; a relative path is "
            "relative to the current directory). Nothing was created; `durable migrate` creates an empty one."
        )
    if _writable(absolute) or "mode=ro" in url:
        return url
    if writes:
        raise NoDatabase(
            f"the SQLite database {absolute} is read-only for this user: durable can list and show its "
            "workflows, not change them."
        )
    return url + ("&" if "?" in url else "?") + "mode=ro"


def open_engine(database_url: str | None, *, create: bool = False, writes: bool = True) -> Engine:
    """A connected engine for management calls (nothing is recovered here).

    Args:
        database_url: the URL (None: env ``DURABLE_DATABASE_URL``, else ``sqlite:///durable.db``).
        create: create the database if it does not exist (only `durable migrate` does).
        writes: the caller changes workflows; False opens a read-only SQLite file read-only.

    Raises:
        NoDatabase: no durable database exists at the URL (and `create` is False).
    """
    url = resolve_url(database_url)
    if not create:
        url = _existing(url, writes=writes)
    connect = getattr(Engine, "connect", None)
    if connect is not None:
        engine = Engine(url)
        connect(engine)
        return engine
    engine = Engine(
        url,
        app_version=CLIENT_APP_VERSION,
        executor_id=f"durable-cli:{socket.gethostname()}:{os.getpid()}",
        # The client never runs workflows, so nobody needs to see it alive often.
        heartbeat_seconds=30.0,
        lease_seconds=60.0,
    )
    engine.launch()
    return engine


@contextmanager
def client_engine(
    database_url: str | None, *, create: bool = False, writes: bool = True
) -> Generator[Engine]:
    """`open_engine` as a context manager: the engine is shut down on exit."""
    engine = open_engine(database_url, create=create, writes=writes)
    try:
        yield engine
    finally:
        engine.shutdown()
