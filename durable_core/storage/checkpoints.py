"""SQL of the LangGraph checkpointer: checkpoints, channel blobs, pending writes and step memos.

The saver (`durable_langgraph.DurableCheckpointer`) serializes and deserializes; this module only
moves rows. Layout, chosen against the stock savers' known problems:

- `lg_checkpoints`: one row per checkpoint with the checkpoint *without* its channel values
  (serde bytes + type tag), its channel versions as JSON text (so blob garbage collection needs
  no deserializer), and its metadata as JSON text. `run_id` is lifted out for `delete_for_runs`.
- `lg_blobs`: one row per (thread, namespace, channel, version): a channel value is stored once
  per version, strings included (the stock Postgres saver inlines strings in every checkpoint).
- `lg_writes`: pending writes keyed (thread, ns, checkpoint, task, idx) with `task_path`.
- `lg_memos`: outcomes of step calls made inside graph nodes, keyed per durable run, node task
  and call index, so a node re-executed after a crash replays them.

Reads never issue a query per checkpoint: `list` loads rows, then every needed blob and write
in one batched query each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = [
    "BlobRecord",
    "CheckpointRecord",
    "CheckpointStore",
    "LoadedCheckpoint",
    "MemoRecord",
    "WriteRecord",
    "metadata",
    "migrate_checkpoints",
]

T = TypeVar("T")

metadata = sa.MetaData()

# Checkpoint ids sort as bytes ("latest" is the maximum id); a locale collation must not reorder them.
_ID = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")

lg_checkpoints = sa.Table(
    "lg_checkpoints",
    metadata,
    sa.Column("thread_id", sa.Text, primary_key=True),
    sa.Column("checkpoint_ns", sa.Text, primary_key=True),
    sa.Column("checkpoint_id", _ID, primary_key=True),
    sa.Column("parent_checkpoint_id", sa.Text),
    sa.Column("run_id", sa.Text),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("checkpoint", sa.LargeBinary, nullable=False),
    sa.Column("versions", sa.Text, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Index("lg_checkpoints_run_id", "run_id"),
)

lg_blobs = sa.Table(
    "lg_blobs",
    metadata,
    sa.Column("thread_id", sa.Text, primary_key=True),
    sa.Column("checkpoint_ns", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("blob", sa.LargeBinary),
)

lg_writes = sa.Table(
    "lg_writes",
    metadata,
    sa.Column("thread_id", sa.Text, primary_key=True),
    sa.Column("checkpoint_ns", sa.Text, primary_key=True),
    sa.Column("checkpoint_id", _ID, primary_key=True),
    sa.Column("task_id", sa.Text, primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("blob", sa.LargeBinary),
    sa.Column("task_path", sa.Text, nullable=False, server_default=""),
)

lg_memos = sa.Table(
    "lg_memos",
    metadata,
    sa.Column("run_key", sa.Text, primary_key=True),
    sa.Column("task_ns", sa.Text, primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("thread_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("blob", sa.LargeBinary),
    sa.Column("is_error", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("lg_memos_thread", "thread_id"),
)

_THREAD_TABLES = (lg_checkpoints, lg_blobs, lg_writes, lg_memos)
# Bound parameters per statement stay far below SQLite's limit (32766) and Postgres' (65535).
_CHUNK = 500


def migrate_checkpoints(conn: sa.Connection) -> None:
    """Create the checkpointer's tables if they are missing (idempotent, safe to repeat)."""
    metadata.create_all(conn, checkfirst=True)


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """One channel value at one version; `type == "empty"` with no blob marks an empty channel."""

    channel: str
    version: str
    type: str
    blob: bytes | None


@dataclass(frozen=True, slots=True)
class WriteRecord:
    task_id: str
    task_path: str
    idx: int
    channel: str
    type: str
    blob: bytes | None


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    run_id: str | None
    type: str
    checkpoint: bytes
    versions: str
    metadata: str


@dataclass(slots=True)
class LoadedCheckpoint:
    """A checkpoint row with the blobs its versions reference and its pending writes (sorted)."""

    record: CheckpointRecord
    blobs: dict[str, BlobRecord] = field(default_factory=dict[str, BlobRecord])
    writes: list[WriteRecord] = field(default_factory=list[WriteRecord])


@dataclass(frozen=True, slots=True)
class MemoRecord:
    name: str
    type: str
    blob: bytes | None
    is_error: bool


class _Database(Protocol):
    """What the store needs from `durable_core.storage.Database`."""

    dialect: str

    def write(self) -> AbstractContextManager[sa.Connection]: ...
    def read(self) -> AbstractContextManager[sa.Connection]: ...
    def sql(self, statement: str) -> str: ...
    def retrying(self, operation: Callable[[], T], *, what: str = ...) -> T: ...


_PUT_BLOB = (
    "INSERT INTO lg_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
    "VALUES (:thread_id, :checkpoint_ns, :channel, :version, :type, :blob) "
    "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
)
_PUT_CHECKPOINT = (
    "INSERT INTO lg_checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, "
    "type, checkpoint, versions, metadata) "
    "VALUES (:thread_id, :checkpoint_ns, :checkpoint_id, :parent_checkpoint_id, :run_id, :type, :checkpoint, "
    ":versions, :metadata) "
    "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
    "parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, type = excluded.type, "
    "checkpoint = excluded.checkpoint, versions = excluded.versions, metadata = excluded.metadata"
)
_WRITE_COLUMNS = (
    "INSERT INTO lg_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, "
    "task_path) VALUES (:thread_id, :checkpoint_ns, :checkpoint_id, :task_id, :idx, :channel, :type, :blob, "
    ":task_path) ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) "
)
_INSERT_WRITE = _WRITE_COLUMNS + "DO NOTHING"
_UPSERT_WRITE = (
    _WRITE_COLUMNS + "DO UPDATE SET channel = excluded.channel, type = excluded.type, blob = excluded.blob, "
    "task_path = excluded.task_path"
)
_SELECT_CHECKPOINT = (
    "SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, versions, "
    "metadata FROM lg_checkpoints WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns"
)
_GET_LATEST = _SELECT_CHECKPOINT + " ORDER BY checkpoint_id DESC LIMIT 1"
_LATEST_ID = (
    "SELECT MAX(checkpoint_id) FROM lg_checkpoints WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns"
)
_GET_ONE = _SELECT_CHECKPOINT + " AND checkpoint_id = :checkpoint_id"
_GET_WRITES = (
    "SELECT task_id, task_path, idx, channel, type, blob FROM lg_writes "
    "WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id"
)
_LOAD_MEMOS = "SELECT task_ns, idx, name, type, blob, is_error FROM lg_memos WHERE run_key = :run_key"
_PUT_MEMO = (
    "INSERT INTO lg_memos (run_key, task_ns, idx, thread_id, name, type, blob, is_error, created_at) "
    "VALUES (:run_key, :task_ns, :idx, :thread_id, :name, :type, :blob, :is_error, :created_at) "
    "ON CONFLICT (run_key, task_ns, idx) DO NOTHING"
)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _record(row: Any) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=row.thread_id,
        checkpoint_ns=row.checkpoint_ns,
        checkpoint_id=row.checkpoint_id,
        parent_checkpoint_id=row.parent_checkpoint_id,
        run_id=row.run_id,
        type=row.type,
        checkpoint=bytes(row.checkpoint),
        versions=row.versions,
        metadata=row.metadata,
    )


def _write(row: Any) -> WriteRecord:
    blob = row.blob
    return WriteRecord(
        task_id=row.task_id,
        task_path=row.task_path,
        idx=row.idx,
        channel=row.channel,
        type=row.type,
        blob=None if blob is None else bytes(blob),
    )


def _sort_writes(writes: list[WriteRecord]) -> list[WriteRecord]:
    # LangGraph's `writes_sort_key` order, in Python: a database collation could reorder task paths.
    writes.sort(key=lambda w: (w.task_path, w.task_id, w.idx))
    return writes


def version_key(version: object) -> str:
    """The text form of a channel version used as the blob key."""
    return str(version)


class CheckpointStore:
    """Rows of the LangGraph checkpointer. Every method is one transaction, retried while the
    database is unreachable (each is idempotent), and safe to call from any thread."""

    def __init__(self, database: _Database) -> None:
        self.db = database
        sql = database.sql
        self._put_blob = sql(_PUT_BLOB)
        self._put_checkpoint = sql(_PUT_CHECKPOINT)
        self._insert_write = sql(_INSERT_WRITE)
        self._upsert_write = sql(_UPSERT_WRITE)
        self._get_latest = sql(_GET_LATEST)
        self._get_one = sql(_GET_ONE)
        self._latest_id = sql(_LATEST_ID)
        self._get_writes = sql(_GET_WRITES)
        self._load_memos = sql(_LOAD_MEMOS)
        self._put_memo = sql(_PUT_MEMO)

    # -- writes ------------------------------------------------------------------------------

    def put(self, record: CheckpointRecord, blobs: Sequence[BlobRecord]) -> None:
        """Store a checkpoint (an upsert) and the blobs of its changed channels (first one wins)."""
        params = {
            "thread_id": record.thread_id,
            "checkpoint_ns": record.checkpoint_ns,
            "checkpoint_id": record.checkpoint_id,
            "parent_checkpoint_id": record.parent_checkpoint_id,
            "run_id": record.run_id,
            "type": record.type,
            "checkpoint": record.checkpoint,
            "versions": record.versions,
            "metadata": record.metadata,
        }
        blob_params = [
            {
                "thread_id": record.thread_id,
                "checkpoint_ns": record.checkpoint_ns,
                "channel": b.channel,
                "version": b.version,
                "type": b.type,
                "blob": b.blob,
            }
            for b in blobs
        ]

        def run() -> None:
            with self.db.write() as conn:
                if blob_params:
                    conn.exec_driver_sql(self._put_blob, blob_params)  # type: ignore[arg-type]
                conn.exec_driver_sql(self._put_checkpoint, params)

        self.db.retrying(run, what="save LangGraph checkpoint")

    def put_writes(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[WriteRecord], *, replace: bool
    ) -> None:
        """Store pending writes: `replace` overwrites rows with the same key, else the first write wins."""
        if not writes:
            return
        params = [
            {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint_id,
                "task_id": w.task_id,
                "idx": w.idx,
                "channel": w.channel,
                "type": w.type,
                "blob": w.blob,
                "task_path": w.task_path,
            }
            for w in writes
        ]
        statement = self._upsert_write if replace else self._insert_write

        def run() -> None:
            with self.db.write() as conn:
                conn.exec_driver_sql(statement, params)  # type: ignore[arg-type]

        self.db.retrying(run, what="save LangGraph pending writes")

    # -- reads -------------------------------------------------------------------------------

    def get(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> LoadedCheckpoint | None:
        """The given checkpoint, or the latest of (thread, namespace) when `checkpoint_id` is None."""
        params = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id}

        def run() -> LoadedCheckpoint | None:
            with self.db.read() as conn:
                row = conn.exec_driver_sql(self._get_one if checkpoint_id else self._get_latest, params).first()
                if row is None:
                    return None
                loaded = LoadedCheckpoint(_record(row))
                self._load_blobs(conn, [loaded])
                params["checkpoint_id"] = loaded.record.checkpoint_id
                loaded.writes = _sort_writes([_write(w) for w in conn.exec_driver_sql(self._get_writes, params)])
                return loaded

        return self.db.retrying(run, what="load LangGraph checkpoint")

    def latest_id(self, thread_id: str, checkpoint_ns: str = "") -> str | None:
        """The id of the latest checkpoint of (thread, namespace), or None: one indexed query."""
        params = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}

        def run() -> str | None:
            with self.db.read() as conn:
                return conn.exec_driver_sql(self._latest_id, params).scalar()

        return self.db.retrying(run, what="read latest LangGraph checkpoint id")

    def list(
        self,
        *,
        thread_id: str | None,
        checkpoint_ns: str | None,
        checkpoint_id: str | None,
        before: str | None,
        limit: int | None,
        accept: Callable[[CheckpointRecord], bool] | None = None,
        run_id: str | None = None,
    ) -> list[LoadedCheckpoint]:
        """Checkpoints, newest first, with their blobs and writes: three queries whatever the count.

        `accept` filters rows in Python (LangGraph's metadata filter is exact equality, which
        SQL JSON operators do not express the same way on both dialects); `limit` applies after it.
        """
        if limit is not None and limit <= 0:
            return []
        t = lg_checkpoints.c
        query = sa.select(lg_checkpoints).order_by(t.checkpoint_id.desc())
        if thread_id is not None:
            query = query.where(t.thread_id == thread_id)
        if checkpoint_ns is not None:
            query = query.where(t.checkpoint_ns == checkpoint_ns)
        if checkpoint_id is not None:
            query = query.where(t.checkpoint_id == checkpoint_id)
        if before is not None:
            query = query.where(t.checkpoint_id < before)
        if run_id is not None:
            query = query.where(t.run_id == run_id)
        if limit is not None and accept is None:
            query = query.limit(limit)

        def run() -> list[LoadedCheckpoint]:
            with self.db.read() as conn:
                selected: list[LoadedCheckpoint] = []
                for row in conn.execute(query):
                    record = _record(row)
                    if accept is not None and not accept(record):
                        continue
                    selected.append(LoadedCheckpoint(record))
                    if limit is not None and len(selected) >= limit:
                        break
                self._load_blobs(conn, selected)
                self._load_writes(conn, selected)
                return selected

        return self.db.retrying(run, what="list LangGraph checkpoints")

    def _load_blobs(self, conn: sa.Connection, loaded: Sequence[LoadedCheckpoint]) -> None:
        wanted: dict[tuple[str, str, str, str], list[LoadedCheckpoint]] = {}
        for item in loaded:
            rec = item.record
            for channel, version in json.loads(rec.versions).items():
                key = (rec.thread_id, rec.checkpoint_ns, channel, version_key(version))
                wanted.setdefault(key, []).append(item)
        if not wanted:
            return
        b = lg_blobs.c
        columns = (b.thread_id, b.checkpoint_ns, b.channel, b.version)
        keys = list(wanted)
        for chunk in _chunks(keys):
            query = sa.select(lg_blobs).where(sa.tuple_(*columns).in_(chunk))
            for row in conn.execute(query):
                blob = BlobRecord(row.channel, row.version, row.type, None if row.blob is None else bytes(row.blob))
                for item in wanted[(row.thread_id, row.checkpoint_ns, row.channel, row.version)]:
                    item.blobs[row.channel] = blob

    def _load_writes(self, conn: sa.Connection, loaded: Sequence[LoadedCheckpoint]) -> None:
        if not loaded:
            return
        by_key = {(i.record.thread_id, i.record.checkpoint_ns, i.record.checkpoint_id): i for i in loaded}
        w = lg_writes.c
        columns = (w.thread_id, w.checkpoint_ns, w.checkpoint_id)
        keys = list(by_key)
        for chunk in _chunks(keys):
            query = sa.select(lg_writes).where(sa.tuple_(*columns).in_(chunk))
            for row in conn.execute(query):
                by_key[(row.thread_id, row.checkpoint_ns, row.checkpoint_id)].writes.append(_write(row))
        for item in loaded:
            _sort_writes(item.writes)

    # -- maintenance -------------------------------------------------------------------------

    def delete_threads(self, thread_ids: Sequence[str]) -> None:
        """Remove every row of the threads, in all namespaces; unknown threads are a no-op."""
        ids = list(thread_ids)
        if not ids:
            return

        def run() -> None:
            with self.db.write() as conn:
                for table in _THREAD_TABLES:
                    for chunk in _chunks(ids):
                        conn.execute(sa.delete(table).where(table.c.thread_id.in_(chunk)))

        self.db.retrying(run, what="delete LangGraph threads")

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Remove the checkpoints whose metadata `run_id` is listed, their writes and orphaned blobs."""
        ids = list(run_ids)
        if not ids:
            return

        def run() -> None:
            with self.db.write() as conn:
                c = lg_checkpoints.c
                doomed: list[tuple[str, str, str]] = []
                for chunk in _chunks(ids):
                    rows = conn.execute(
                        sa.select(c.thread_id, c.checkpoint_ns, c.checkpoint_id).where(c.run_id.in_(chunk))
                    )
                    doomed.extend((r.thread_id, r.checkpoint_ns, r.checkpoint_id) for r in rows)
                self._delete_checkpoints(conn, doomed)

        self.db.retrying(run, what="delete LangGraph runs")

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob, write and memo of a thread under another thread id.

        Rows the target already holds with the same keys are kept (so a retried copy is harmless).
        """

        def run() -> None:
            with self.db.write() as conn:
                for table in _THREAD_TABLES:
                    rows = [dict(r._mapping) for r in conn.execute(
                        sa.select(table).where(table.c.thread_id == source_thread_id)
                    )]
                    if not rows:
                        continue
                    for row in rows:
                        row["thread_id"] = target_thread_id
                    insert = _insert_ignore(self.db.dialect, table)
                    for chunk in _chunks(rows, 200):
                        conn.execute(insert, list(chunk))

        self.db.retrying(run, what="copy LangGraph thread")

    def prune_keep_latest(self, thread_id: str, *, refuse: Callable[[CheckpointRecord], bool]) -> None:
        """Keep the latest checkpoint of each namespace of a thread, with its writes and blobs.

        Per-call subgraph namespaces (``node:task_id``) that belong to a superseded root checkpoint
        go entirely. `refuse(record)` returning True for any row aborts with NotImplementedError
        (LangGraph's DeltaChannel state cannot survive dropping ancestors).
        """

        def run() -> None:
            with self.db.write() as conn:
                c = lg_checkpoints.c
                rows = [
                    _record(r)
                    for r in conn.execute(sa.select(lg_checkpoints).where(c.thread_id == thread_id))
                ]
                if any(refuse(r) for r in rows):
                    raise NotImplementedError(
                        f"keep_latest can't prune thread {thread_id!r}: it uses a DeltaChannel, whose state "
                        "is rebuilt from ancestor checkpoints. Use strategy='delete' or skip this thread."
                    )
                heads: dict[str, CheckpointRecord] = {}
                for r in rows:
                    head = heads.get(r.checkpoint_ns)
                    if head is None or r.checkpoint_id > head.checkpoint_id:
                        heads[r.checkpoint_ns] = r
                root = heads.get("")
                saved_root_ids = {r.checkpoint_id for r in rows if r.checkpoint_ns == ""}
                dropped_ns: set[str] = set()
                for ns, head in heads.items():
                    if ":" not in ns or root is None:
                        continue
                    started_from = json.loads(head.metadata).get("parents", {}).get("")
                    if started_from and started_from != root.checkpoint_id and started_from in saved_root_ids:
                        dropped_ns.add(ns)
                doomed = [
                    (r.thread_id, r.checkpoint_ns, r.checkpoint_id)
                    for r in rows
                    if r.checkpoint_ns in dropped_ns or heads[r.checkpoint_ns].checkpoint_id != r.checkpoint_id
                ]
                self._delete_checkpoints(conn, doomed)
                for ns in dropped_ns:
                    for table in (lg_blobs, lg_writes):
                        conn.execute(
                            sa.delete(table).where(table.c.thread_id == thread_id, table.c.checkpoint_ns == ns)
                        )

        self.db.retrying(run, what="prune LangGraph thread")

    def _delete_checkpoints(self, conn: sa.Connection, doomed: Sequence[tuple[str, str, str]]) -> None:
        """Delete checkpoints with their writes, then blobs no remaining checkpoint references."""
        if not doomed:
            return
        c, w, b = lg_checkpoints.c, lg_writes.c, lg_blobs.c
        freed: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for chunk in _chunks(list(doomed)):
            key_in = sa.tuple_(c.thread_id, c.checkpoint_ns, c.checkpoint_id).in_(chunk)
            for r in conn.execute(sa.select(c.thread_id, c.checkpoint_ns, c.versions).where(key_in)):
                pairs = freed.setdefault((r.thread_id, r.checkpoint_ns), set())
                pairs.update((ch, version_key(v)) for ch, v in json.loads(r.versions).items())
            conn.execute(sa.delete(lg_checkpoints).where(key_in))
            conn.execute(
                sa.delete(lg_writes).where(sa.tuple_(w.thread_id, w.checkpoint_ns, w.checkpoint_id).in_(chunk))
            )
        for (thread_id, ns), pairs in freed.items():
            rows = conn.execute(
                sa.select(c.versions).where(c.thread_id == thread_id, c.checkpoint_ns == ns)
            )
            for r in rows:
                pairs.difference_update((ch, version_key(v)) for ch, v in json.loads(r.versions).items())
            garbage = sorted(pairs)
            for chunk in _chunks(garbage):
                conn.execute(
                    sa.delete(lg_blobs).where(
                        b.thread_id == thread_id, b.checkpoint_ns == ns, sa.tuple_(b.channel, b.version).in_(chunk)
                    )
                )

    def thread_stats(self, thread_id: str) -> dict[str, int]:
        """Row counts and payload bytes a thread holds, per table (for tests, benchmarks, dashboards)."""

        def run() -> dict[str, int]:
            stats: dict[str, int] = {}
            with self.db.read() as conn:
                for table, payload in (
                    (lg_checkpoints, (lg_checkpoints.c.checkpoint, lg_checkpoints.c.metadata, lg_checkpoints.c.versions)),
                    (lg_blobs, (lg_blobs.c.blob,)),
                    (lg_writes, (lg_writes.c.blob,)),
                    (lg_memos, (lg_memos.c.blob,)),
                ):
                    size = sum((sa.func.coalesce(sa.func.length(col), 0) for col in payload), sa.literal(0))
                    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(size), 0)).where(
                        table.c.thread_id == thread_id
                    )
                    count, total = conn.execute(query).one()
                    stats[f"{table.name}_rows"] = int(count)
                    stats[f"{table.name}_bytes"] = int(total)
            return stats

        return self.db.retrying(run, what="measure LangGraph thread")

    # -- step memos --------------------------------------------------------------------------

    def load_memos(self, run_key: str) -> dict[tuple[str, int], MemoRecord]:
        """Every step memo of a durable run, keyed (task namespace, call index), in one query."""
        params = {"run_key": run_key}

        def run() -> dict[tuple[str, int], MemoRecord]:
            with self.db.read() as conn:
                rows = conn.exec_driver_sql(self._load_memos, params).all()
            return {
                (r.task_ns, r.idx): MemoRecord(r.name, r.type, None if r.blob is None else bytes(r.blob), bool(r.is_error))
                for r in rows
            }

        return self.db.retrying(run, what="load step memos")

    def put_memo(self, run_key: str, task_ns: str, idx: int, thread_id: str, memo: MemoRecord) -> None:
        params = {
            "run_key": run_key,
            "task_ns": task_ns,
            "idx": idx,
            "thread_id": thread_id,
            "name": memo.name,
            "type": memo.type,
            "blob": memo.blob,
            "is_error": memo.is_error,
            "created_at": int(time.time() * 1000),
        }

        def run() -> None:
            with self.db.write() as conn:
                conn.exec_driver_sql(self._put_memo, params)

        self.db.retrying(run, what="record step memo")



def _insert_ignore(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()
