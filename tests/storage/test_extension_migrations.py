"""The LangGraph checkpoint tables are a storage extension with their own migration track: they
never bump the core's schema version, and a database made before the track existed opens as is."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from durable_core import DurableError
from durable_core.storage import LATEST_VERSION, Database, migrate
from durable_core.storage._migrations import extension_version, schema_version
from durable_core.storage.checkpoints import CHECKPOINTS, CheckpointRecord, CheckpointStore, metadata


def _tables(db: Database) -> set[str]:
    with db.read() as conn:
        return set(sa.inspect(conn).get_table_names())


def _record(thread_id: str, checkpoint_id: str) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns="",
        checkpoint_id=checkpoint_id,
        parent_checkpoint_id=None,
        run_id=None,
        type="json",
        checkpoint=b"{}",
        versions="{}",
        metadata='{"step": 1}',
    )


def test_core_migrations_leave_the_checkpoint_tables_to_their_extension(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert migrate(db) == LATEST_VERSION
        assert "lg_checkpoints" not in _tables(db)
        assert extension_version(db, CHECKPOINTS.track) == 0
        store = CheckpointStore(db)
        assert {"lg_checkpoints", "lg_blobs", "lg_writes", "lg_memos"} <= _tables(db)
        assert extension_version(db, CHECKPOINTS.track) == CHECKPOINTS.latest
        assert schema_version(db) == LATEST_VERSION  # the extension bumped nothing of the core's
        store.put(_record("t", "1"), [])
        loaded = store.get("t", "", None)
        assert loaded is not None and loaded.record.checkpoint_id == "1"
    finally:
        db.dispose()


def test_a_database_made_before_the_extension_track_opens_and_migrates(database_url: str) -> None:
    """The previous layout: the checkpoint tables made by the core's own versions 2 and 3, rows in
    them, and no extension version table at all."""
    old = Database(database_url)
    try:
        migrate(old)
        with old.write() as conn:
            metadata.create_all(conn)  # what the core's version 2 used to create
            conn.execute(
                sa.text(
                    "INSERT INTO lg_checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, "
                    "run_id, type, checkpoint, versions, metadata) "
                    "VALUES ('old', '', '0001', NULL, NULL, 'json', :body, '{}', '{}')"
                ),
                {"body": b"{}"},
            )
        with old.read() as conn:
            versions = [r[0] for r in conn.exec_driver_sql("SELECT version FROM durable_schema_migrations")]
        assert sorted(versions) == list(range(1, LATEST_VERSION + 1))
        assert "durable_extension_migrations" not in _tables(old)
    finally:
        old.dispose()

    db = Database(database_url)  # the new code, on that database
    try:
        assert migrate(db) == LATEST_VERSION
        store = CheckpointStore(db)
        assert extension_version(db, CHECKPOINTS.track) == CHECKPOINTS.latest
        loaded = store.get("old", "", None)
        assert loaded is not None and loaded.record.checkpoint_id == "0001"
        store.put(_record("old", "0002"), [])
        assert [
            c.record.checkpoint_id
            for c in store.list(
                thread_id="old", checkpoint_ns="", checkpoint_id=None, before=None, limit=None
            )
        ] == ["0002", "0001"]
    finally:
        db.dispose()


def test_a_newer_extension_track_is_refused(database_url: str) -> None:
    db = Database(database_url)
    try:
        migrate(db)
        CheckpointStore(db)
        with db.write() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO durable_extension_migrations (track, version, description, applied_at) "
                    "VALUES (:track, 99, 'from the future', 0)"
                ),
                {"track": CHECKPOINTS.track},
            )
    finally:
        db.dispose()
    db = Database(database_url)
    try:
        with pytest.raises(DurableError, match="newer than this durable-agents supports"):
            CheckpointStore(db)
    finally:
        db.dispose()


def test_many_stores_migrating_the_extension_at_once(database_url: str) -> None:
    setup = Database(database_url)
    migrate(setup)
    setup.dispose()
    errors: list[BaseException] = []

    def open_store() -> None:
        db = Database(database_url)
        try:
            CheckpointStore(db)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            db.dispose()

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    db = Database(database_url)
    try:
        with db.read() as conn:
            rows = conn.execute(
                sa.text("SELECT version FROM durable_extension_migrations WHERE track = :t ORDER BY version"),
                {"t": CHECKPOINTS.track},
            ).all()
        assert [r[0] for r in rows] == [v for v, _d, _m in CHECKPOINTS.migrations]  # each applied once
    finally:
        db.dispose()
