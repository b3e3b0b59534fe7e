"""Storage faults: migrations under concurrency, schema versions, dropped connections, serialization opt-ins."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from durable_core import (
    DurableError,
    Engine,
    JsonSerializer,
    PickleSerializer,
    Queue,
    RecordedError,
    SerializationError,
    step,
    workflow,
    workflow_options,
)
from durable_core._serialization import decode_error, encode_error
from durable_core.storage import LATEST_VERSION, Database, migrate


def test_many_engines_migrating_at_once(database_url: str) -> None:
    errors: list[BaseException] = []

    def launch() -> None:
        try:
            db = Database(database_url)
            try:
                assert migrate(db) == LATEST_VERSION
            finally:
                db.dispose()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=launch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = Database(database_url)
    try:
        with db.read() as conn:
            versions = conn.exec_driver_sql(
                "SELECT version FROM durable_schema_migrations ORDER BY version"
            ).all()
        assert [v[0] for v in versions] == list(range(1, LATEST_VERSION + 1))
    finally:
        db.dispose()


def test_schema_from_a_newer_version_is_refused(database_url: str) -> None:
    db = Database(database_url)
    try:
        migrate(db)
        with db.write() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO durable_schema_migrations (version, description, applied_at) VALUES (999, 'x', 0)"
                )
            )
    finally:
        db.dispose()
    with pytest.raises(DurableError, match="schema version 999, newer"):
        Engine(database_url).launch()


@step()
def tick(i: int) -> int:
    return i


@workflow()
def long_flow(n: int) -> int:
    total = 0
    for i in range(n):
        total += tick(i)
        time.sleep(0.01)
    return total


@pytest.mark.backends("postgres")
def test_postgres_connections_killed_mid_run(engine: Engine, database_url: str) -> None:
    """Every server connection of the engine is terminated while a workflow runs: it reconnects and
    finishes, nothing recorded is lost (a stand-in for a server restart that leaves other sessions be)."""
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with workflow_options(workflow_id="survivor"):
        handle = engine.start_workflow(long_flow, 150)
    time.sleep(0.5)
    admin = database_url.rsplit("/", 1)[0].replace("postgresql+psycopg", "postgresql") + "/postgres"
    for _ in range(3):
        with psycopg.connect(admin, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        time.sleep(0.3)
    assert handle.get_result(timeout_seconds=60) == sum(range(150))
    steps = engine.list_steps("survivor")
    assert [s.step_id for s in steps] == list(range(1, 151))


class Custom:
    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Custom) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


@step()
def make_custom(v: int) -> Any:
    return Custom(v)


@workflow()
def custom_flow(v: int) -> Any:
    return make_custom(v)


def test_pickle_is_opt_in(database_url: str) -> None:
    with Engine(database_url) as engine, pytest.raises(SerializationError, match="PickleSerializer"):
        custom_flow(1)
    with (
        Engine(database_url, serializer=PickleSerializer()) as engine,
        workflow_options(workflow_id="pickled"),
    ):
        assert custom_flow(2) == Custom(2)
        assert engine.list_steps("pickled")[0].output == Custom(2)
    # a JSON engine refuses to unpickle what it reads, with a message saying how to opt in
    with Engine(database_url) as engine:
        status = engine.get_workflow_status("pickled")
        assert isinstance(status.output, str)  # left encoded, never unpickled
        with pytest.raises(SerializationError, match="PickleSerializer"):
            engine.retrieve_workflow("pickled").get_result(timeout_seconds=5)


class QuotaError(Exception):
    pass


def test_exceptions_are_rebuilt_only_from_imported_classes() -> None:
    rebuilt = decode_error(encode_error(QuotaError("over quota")))
    assert type(rebuilt) is QuotaError and str(rebuilt) == "over quota"
    record = encode_error(QuotaError("x")).replace(
        "test_storage.QuotaError", "not_imported_module.QuotaError"
    )
    unknown = decode_error(record)
    assert isinstance(unknown, RecordedError) and unknown.type_name == "not_imported_module.QuotaError"
    assert "QuotaError: x" in unknown.traceback_text
    assert isinstance(decode_error(encode_error(KeyError("k"))), KeyError)


def test_json_serializer_readable_and_typed() -> None:
    serializer = JsonSerializer()
    text = serializer.dumps({"when": (1, 2), "tags": {"a"}, "raw": b"\x01"})
    assert text == '{"when":[1,2],"tags":["a"],"raw":"AQ=="}'
    assert serializer.loads(text, dict[str, Any]) == {"when": [1, 2], "tags": ["a"], "raw": "AQ=="}


@pytest.fixture
def private_engine(private_postgres: Any) -> Iterator[Engine]:
    """A launched engine on a private PostgreSQL cluster that the test may restart (never the
    shared server, which other tests use at the same time)."""
    engine = Engine(private_postgres.url, heartbeat_seconds=0.5, lease_seconds=5.0)
    engine.launch()
    try:
        yield engine
    finally:
        engine.shutdown()


def test_postgres_server_restarted_mid_run(private_engine: Engine, private_postgres: Any) -> None:
    """A real server restart (pg_ctl restart of a private cluster) while a workflow runs: it waits
    for the server, reconnects and finishes; every step is recorded once."""
    engine = private_engine
    with workflow_options(workflow_id="restart-survivor"):
        handle = engine.start_workflow(long_flow, 200)
    time.sleep(0.5)
    private_postgres.restart()
    assert handle.get_result(timeout_seconds=120) == sum(range(200))
    assert [s.step_id for s in engine.list_steps("restart-survivor")] == list(range(1, 201))
    assert engine.get_workflow_status("restart-survivor").recovery_attempts == 0


_restart_ledger: list[str] = []
restart_queue = Queue("restart-drain", worker_concurrency=4)


@step()
def drain_part(job: int, part: int) -> int:
    _restart_ledger.append(f"{job}:{part}")
    time.sleep(0.01)
    return part


@workflow()
def drain_job(job: int) -> int:
    return sum(drain_part(job, p) for p in range(3))


def test_postgres_restart_while_queue_workers_drain(private_engine: Engine, private_postgres: Any) -> None:
    """Queue workers under load across a real server restart: they reconnect, nothing is lost, and
    no step runs twice except one in flight at the restart."""
    _restart_ledger.clear()
    handles = [restart_queue.enqueue(drain_job, j) for j in range(120)]
    time.sleep(0.3)
    private_postgres.restart()
    assert [h.get_result(timeout_seconds=120) for h in handles] == [3] * 120
    counts = Counter(_restart_ledger)
    assert set(counts) == {f"{j}:{p}" for j in range(120) for p in range(3)}
    assert sum(c - 1 for c in counts.values()) <= 4  # at most the steps in flight (4 slots) re-ran


@pytest.mark.backends("postgres")
def test_removing_a_frozen_executors_lease_row_never_waits_on_its_lock(
    engine: Engine, database_url: str
) -> None:
    """A process frozen inside its heartbeat transaction keeps its lease row locked: the survivor that
    took its workflows must not block on that lock (its monitor thread would stop heartbeating)."""
    import psycopg

    engine.executors.heartbeat(
        "frozen", hostname="elsewhere", pid=1, app_version=engine.app_version, lease_ms=1000, now=0
    )
    url = database_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as frozen:  # stands in for the frozen process: a transaction left open
        frozen.execute("UPDATE durable.executors SET heartbeat_at = 1 WHERE executor_id = 'frozen'")
        remover = threading.Thread(target=engine.executors.remove, args=("frozen",))
        remover.start()
        remover.join(timeout=10)
        assert not remover.is_alive(), "remove() waited on the frozen executor's row lock"
        assert engine.executors.get("frozen") is not None  # left for a later round
        frozen.rollback()
    engine.executors.remove("frozen")
    assert engine.executors.get("frozen") is None
