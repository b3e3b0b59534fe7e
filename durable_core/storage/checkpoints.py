"""SQL of the LangGraph checkpointer: checkpoints, channel blobs, pending writes and step memos.

The saver (`durable_langgraph.DurableCheckpointer`) serializes and deserializes; this module only
moves rows. Layout, chosen against the stock savers' known problems:

- `lg_checkpoints`: one row per checkpoint with the checkpoint (serde bytes + type tag) holding
  only its small channel values inline, the (channel, version) pairs of the blobs it references
  as JSON text in `versions` (so blob loading and garbage collection need no deserializer), and
  its metadata as JSON text. `run_id` is lifted out for `delete_for_runs`. Rows written before
  the checkpoint body carried `channel_versions` hold every channel version in `versions`.
- `lg_blobs`: one row per (thread, namespace, channel, version): a channel value is stored once
  per version, strings included (the stock Postgres saver inlines strings in every checkpoint).
- `lg_writes`: pending writes keyed (thread, ns, checkpoint, task, idx) with `task_path`.
- `lg_memos`: outcomes of step calls made inside graph nodes, keyed per durable run, node task
  and call index, so a node re-executed after a crash replays them.

Reads never issue a query per checkpoint: on Postgres one statement returns the rows with every
needed blob and write; on SQLite the rows, their writes and (only if any is referenced) their
blobs are three small statements in one read transaction.
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ._database import Database
from ._migrations import Extension, migrate_extension
from ._raw import Fetch as _Fetch

__all__ = [
    "CHECKPOINTS",
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
    sa.Index(
        "lg_checkpoints_run_id",
        "run_id",
        sqlite_where=sa.text("run_id IS NOT NULL"),
        postgresql_where=sa.text("run_id IS NOT NULL"),
    ),
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


def _v2_channel_versions(conn: sa.Connection) -> None:
    """No table changes: checkpoint bodies keep channel versions as LangGraph gives them (a short
    version form). Recorded so that an older durable-agents refuses the tables instead of misreading."""


CHECKPOINTS = Extension(
    "langgraph-checkpoints",
    [
        # databases made before the extension track have these tables already (core versions 2, 3)
        (
            1,
            "LangGraph checkpoint tables: checkpoints, blobs, pending writes, step memos",
            migrate_checkpoints,
        ),
        (2, "LangGraph checkpoint bodies keep channel versions as given", _v2_channel_versions),
    ],
)
"""The checkpoint tables' own migration track (`CheckpointStore` brings it up to date)."""


class BlobRecord(NamedTuple):
    """One channel value at one version; `type == "empty"` with no blob marks an empty channel."""

    channel: str
    version: str
    type: str
    blob: bytes | None


class WriteRecord(NamedTuple):
    task_id: str
    task_path: str
    idx: int
    channel: str
    type: str
    blob: bytes | None


class CheckpointRecord(NamedTuple):
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    run_id: str | None
    type: str
    checkpoint: bytes
    versions: str
    metadata: str


class LoadedCheckpoint(NamedTuple):
    """A checkpoint row with the blobs its versions reference and its pending writes (sorted).

    Read-only: the mappings may be shared (empty ones are).
    """

    record: CheckpointRecord
    blobs: Mapping[str, BlobRecord]
    writes: Sequence[WriteRecord]
    versions: Mapping[str, Any]
    """The (channel -> version) blob references parsed from `record.versions`."""


@dataclass(frozen=True, slots=True)
class MemoRecord:
    name: str
    type: str
    blob: bytes | None
    is_error: bool


_UPSERT_CHECKPOINT = (
    "INSERT INTO lg_checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, "
    "type, checkpoint, versions, metadata) "
    "VALUES (:thread_id, :checkpoint_ns, :checkpoint_id, :parent_checkpoint_id, :run_id, :type, :checkpoint, "
    ":versions, :metadata) "
    "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
    "parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, type = excluded.type, "
    "checkpoint = excluded.checkpoint, versions = excluded.versions, metadata = excluded.metadata"
)
_LATEST_ID = (
    "SELECT MAX(checkpoint_id) FROM lg_checkpoints "
    "WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns"
)
_LOAD_MEMOS = "SELECT task_ns, idx, name, type, blob, is_error FROM lg_memos WHERE run_key = :run_key"
_DELETE_MEMOS = "DELETE FROM lg_memos WHERE run_key = :run_key"
_PUT_MEMO = (
    "INSERT INTO lg_memos (run_key, task_ns, idx, thread_id, name, type, blob, is_error, created_at) "
    "VALUES (:run_key, :task_ns, :idx, :thread_id, :name, :type, :blob, :is_error, :created_at) "
    "ON CONFLICT (run_key, task_ns, idx) DO NOTHING"
)


def _blob_insert(n: int) -> str:
    values = ", ".join(
        f"(:thread_id, :checkpoint_ns, :channel_{i}, :version_{i}, :btype_{i}, :blob_{i})" for i in range(n)
    )
    return (
        f"INSERT INTO lg_blobs (thread_id, checkpoint_ns, channel, version, type, blob) VALUES {values} "
        "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
    )


def _writes_insert(n: int, replace: bool) -> str:
    values = ", ".join(
        f"(:thread_id, :checkpoint_ns, :checkpoint_id, :task_id_{i}, :idx_{i}, :channel_{i}, :type_{i}, "
        f":blob_{i}, :task_path_{i})"
        for i in range(n)
    )
    conflict = (
        "DO UPDATE SET channel = excluded.channel, type = excluded.type, blob = excluded.blob, "
        "task_path = excluded.task_path"
        if replace
        else "DO NOTHING"
    )
    return (
        "INSERT INTO lg_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, "
        f"task_path) VALUES {values} "
        f"ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) {conflict}"
    )


_CHECKPOINT_COLUMNS = (
    "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, versions, "
    "metadata"
)
_WRITE_COLUMNS = (
    "w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, w.idx, w.channel, w.type, w.blob"
)
_BLOB_COLUMNS = "b.thread_id, b.checkpoint_ns, b.channel, b.version, b.type, b.blob"
_NO_REFS = "{}"


def _rows_statement(where: str, limit: bool) -> str:
    return (
        f"SELECT {_CHECKPOINT_COLUMNS} FROM lg_checkpoints WHERE {where} ORDER BY checkpoint_id DESC"
        f"{' LIMIT :limit' if limit else ''}"
    )


def _load_statement(where: str, limit: bool) -> str:
    """Postgres: checkpoints matching `where` with their blobs and writes, in ONE statement (one round trip).

    Rows: kind 0 = checkpoint, 1 = blob (deduplicated: checkpoints share unchanged versions),
    2 = pending write. Blobs are joined through each checkpoint's JSON blob references. The
    blobs and writes are LATERAL subqueries fenced by `OFFSET 0`, so each is an index lookup per
    checkpoint whatever the table statistics say (a hash join would scan the whole table).
    """
    return (
        f"WITH c AS ({_rows_statement(where, limit)}) "
        "SELECT 0 AS kind, c.thread_id AS t, c.checkpoint_ns AS n, c.checkpoint_id AS x1, "
        "c.parent_checkpoint_id AS x2, c.run_id AS x3, c.versions AS x4, c.metadata AS x5, c.type AS type, "
        "c.checkpoint AS payload, 0 AS idx FROM c "
        "UNION ALL "
        "SELECT 1, b.thread_id, b.checkpoint_ns, b.channel, b.version, NULL, NULL, NULL, b.type, b.blob, 0 "
        "FROM (SELECT DISTINCT c.thread_id AS t, c.checkpoint_ns AS n, j.key AS ch, j.value AS v "
        "FROM c CROSS JOIN LATERAL json_each_text(CAST(c.versions AS json)) AS j) AS k "
        "CROSS JOIN LATERAL (SELECT * FROM lg_blobs WHERE thread_id = k.t AND checkpoint_ns = k.n "
        "AND channel = k.ch AND version = k.v OFFSET 0) AS b "
        "UNION ALL "
        "SELECT 2, w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, w.channel, NULL, "
        "w.type, w.blob, w.idx FROM c CROSS JOIN LATERAL (SELECT * FROM lg_writes "
        "WHERE thread_id = c.thread_id AND checkpoint_ns = c.checkpoint_ns AND checkpoint_id = c.checkpoint_id "
        "OFFSET 0) AS w"
    )


# SQLite (in-process, no round trips): small statements, each planned simply, in one snapshot.
# The writes and blobs of a set of checkpoints are found through the same `where` again.
def _sqlite_writes_statement(where: str, limit: bool) -> str:
    return (
        f"SELECT {_WRITE_COLUMNS} FROM (SELECT thread_id, checkpoint_ns, checkpoint_id FROM lg_checkpoints "
        f"WHERE {where}{' ORDER BY checkpoint_id DESC LIMIT :limit' if limit else ''}) AS c "
        "JOIN lg_writes w ON w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns "
        "AND w.checkpoint_id = c.checkpoint_id"
    )


def _sqlite_blobs_statement(where: str, limit: bool) -> str:
    return (
        f"SELECT DISTINCT {_BLOB_COLUMNS} FROM (SELECT thread_id, checkpoint_ns, versions FROM lg_checkpoints "
        f"WHERE {where}{' ORDER BY checkpoint_id DESC LIMIT :limit' if limit else ''}) AS c "
        "CROSS JOIN json_each(c.versions) AS j "
        "JOIN lg_blobs b ON b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns "
        "AND b.channel = j.key AND b.version = CAST(j.value AS TEXT)"
    )


def _sqlite_rows_limited_statement(where: str) -> str:
    """The newest `:limit` rows: keys sorted in the covering index, then only those rows read (rather
    than sorting whole rows, checkpoint bodies included, to keep a few)."""
    return (
        f"SELECT {_CHECKPOINT_COLUMNS} FROM lg_checkpoints WHERE rowid IN (SELECT rowid FROM lg_checkpoints "
        f"WHERE {where} ORDER BY checkpoint_id DESC LIMIT :limit)"
    )


# The writes and blobs of rows already read, all of one (thread, namespace): by their ids and by
# their blob references (a JSON array of the rows' `versions` objects), not by `where` again.
_SQLITE_WRITES_BY_IDS = (
    f"SELECT {_WRITE_COLUMNS} FROM lg_writes w WHERE w.thread_id = ? AND w.checkpoint_ns = ? "
    "AND w.checkpoint_id IN (SELECT value FROM json_each(?))"
)
# ... or, when the rows are every checkpoint of (thread, namespace) between the oldest and the
# newest of them (no metadata filter), by that id range: one index range, no JSON to build.
_SQLITE_WRITES_IN_RANGE = (
    f"SELECT {_WRITE_COLUMNS} FROM lg_writes w WHERE w.thread_id = ? AND w.checkpoint_ns = ? "
    "AND w.checkpoint_id BETWEEN ? AND ?"
)
_SQLITE_BLOBS_BY_REFS = (
    f"SELECT DISTINCT {_BLOB_COLUMNS} FROM json_each(?) AS r, json_each(r.value) AS j "
    "JOIN lg_blobs b ON b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = j.key "
    "AND b.version = CAST(j.value AS TEXT)"
)
_SQLITE_ONE_WRITES = (
    f"SELECT {_WRITE_COLUMNS} FROM lg_writes w WHERE w.thread_id = ? AND w.checkpoint_ns = ? "
    "AND w.checkpoint_id = ?"
)
_SQLITE_ONE_BLOBS = (
    f"SELECT {_BLOB_COLUMNS} FROM json_each(?) AS j JOIN lg_blobs b ON b.thread_id = ? "
    "AND b.checkpoint_ns = ? AND b.channel = j.key AND b.version = CAST(j.value AS TEXT)"
)


@functools.cache
def _write_keys(i: int) -> tuple[str, ...]:
    """Parameter names of the i-th row of `_writes_insert`, in `WriteRecord` field order."""
    return tuple(f"{name}_{i}" for name in WriteRecord._fields)


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


def _split_union(rows: Iterable[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """The rows of `_load_statement` as (checkpoint rows, blob rows, write rows)."""
    checkpoints: list[Any] = []
    blobs: list[Any] = []
    writes: list[Any] = []
    for kind, t, n, x1, x2, x3, x4, x5, type_, raw, idx in rows:
        payload = raw if raw is None or type(raw) is bytes else bytes(raw)  # a driver's buffer
        if kind == 0:  # x1..x5: checkpoint_id, parent_checkpoint_id, run_id, versions, metadata
            checkpoints.append((t, n, x1, x2, x3, type_, payload, x4, x5))
        elif kind == 1:  # x1, x2: channel, version
            blobs.append((t, n, x1, x2, type_, payload))
        else:  # x1..x4: checkpoint_id, task_id, task_path, channel
            writes.append((t, n, x1, x2, x3, idx, x4, type_, payload))
    return checkpoints, blobs, writes


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _assemble(
    rows: Sequence[Any], blob_rows: Iterable[Any], write_rows: Iterable[Any]
) -> list[LoadedCheckpoint]:
    """Build checkpoints, newest first, from their rows (`_CHECKPOINT_COLUMNS` order), the rows of
    the blobs they reference (`_BLOB_COLUMNS`) and of their writes (`_WRITE_COLUMNS`). Writes of
    checkpoints not among `rows` are ignored. Binary columns must already be `bytes`.

    Hot in listings: records are built with `tuple.__new__` (no Python-level constructor call),
    and write rows of one checkpoint, which the statements return together, are taken as a group.
    """
    blobs: dict[tuple[str, str], dict[tuple[str, str], BlobRecord]] = {}
    for t, n, channel, version, type_, blob in blob_rows:
        blobs.setdefault((t, n), {})[(channel, version)] = BlobRecord(
            channel, version, type_, None if blob is None else bytes(blob)
        )
    writes: dict[tuple[str, str, str], list[WriteRecord]] = {}
    for key, group in itertools.groupby(write_rows, _write_owner):  # rows arrive grouped by owner
        found = writes.get(key)
        records = [_new_write(row[3:]) for row in group]  # columns 3.. are WriteRecord's fields
        if found is None:
            writes[key] = records
        else:
            found.extend(records)
    loaded: list[LoadedCheckpoint] = []
    no_writes: Sequence[WriteRecord] = ()
    for row in rows:
        record = _new_checkpoint(row)
        item_writes = writes.get(row[:3])
        if item_writes is None:
            item_writes = no_writes
        elif len(item_writes) > 1:
            # LangGraph's `writes_sort_key` order, in Python: a collation could reorder task paths.
            item_writes.sort(key=_write_order)
        refs = row[7]
        if refs == _NO_REFS:
            loaded.append(_new_loaded((record, _EMPTY, item_writes, _EMPTY)))
            continue
        versions: dict[str, Any] = json.loads(refs)
        found_blobs: dict[str, BlobRecord] = {}
        scope = blobs.get((row[0], row[1]))
        if scope:
            for ch, v in versions.items():
                blob = scope.get((ch, v if isinstance(v, str) else version_key(v)))
                if blob is not None:
                    found_blobs[ch] = blob
        loaded.append(_new_loaded((record, found_blobs, item_writes, versions)))
    loaded.sort(key=_newest_first, reverse=True)
    return loaded


_new_write = functools.partial(tuple.__new__, WriteRecord)
_new_checkpoint = functools.partial(tuple.__new__, CheckpointRecord)
_new_loaded = functools.partial(tuple.__new__, LoadedCheckpoint)


def _newest_first(item: LoadedCheckpoint) -> str:
    return item[0][2]  # record.checkpoint_id


_write_owner = operator.itemgetter(0, 1, 2)
"""(thread_id, checkpoint_ns, checkpoint_id) of a write row."""
_scope_of = operator.itemgetter(0, 1)
"""(thread_id, checkpoint_ns) of a checkpoint row."""
_id_of = operator.itemgetter(2)
"""checkpoint_id of a checkpoint row."""
_write_order = operator.itemgetter(1, 0, 2)
"""(task_path, task_id, idx) of a `WriteRecord`: LangGraph's `writes_sort_key`, at C speed."""


def version_key(version: object) -> str:
    """The text form of a channel version used as the blob key (as SQL renders the JSON value)."""
    return str(version)


class CheckpointStore:
    """Rows of the LangGraph checkpointer. Every method is one transaction, retried while the
    database is unreachable (each is idempotent), and safe to call from any thread.

    Hot paths are one statement each on Postgres (sent in autocommit: one round trip). On SQLite
    a checkpoint without new blobs and a batch of writes are one autocommit statement each, and
    reads use the writer connection whenever it is free (its page cache survives our own commits).
    """

    def __init__(self, database: Database) -> None:
        self.db = database
        migrate_extension(database, CHECKPOINTS)
        self.dialect = database.sql_dialect
        self._sql_cache: dict[Any, str] = {}
        sql = database.sql
        self._upsert_checkpoint = sql(_UPSERT_CHECKPOINT)
        self._latest_id = sql(_LATEST_ID)
        self._load_memos = sql(_LOAD_MEMOS)
        self._delete_memos = sql(_DELETE_MEMOS)
        self._put_memo = sql(_PUT_MEMO)

    def _sql(self, key: Any, build: Callable[[], str]) -> str:
        statement = self._sql_cache.get(key)
        if statement is None:
            statement = self._sql_cache[key] = self.db.sql(build())
        return statement

    def _execute_write(self, statements: Sequence[tuple[str, dict[str, Any]]], what: str) -> None:
        """Write statements as one transaction through the database's raw path (a group commit on
        SQLite, one autocommit round trip per single statement on Postgres)."""
        self.db.execute(statements, what=what)

    def _query(self, statement: str, params: dict[str, Any], what: str) -> list[Any]:
        """One read statement (a statement is its own consistent snapshot)."""
        return self._read(lambda fetch: fetch(statement, params), what)

    def _read(self, run: Callable[[_Fetch], T], what: str, *, snapshot: bool = False) -> T:
        """`run(fetch)`, where `fetch(statement, params)` runs one read statement and returns its rows;
        with `snapshot` every statement sees one snapshot. Retried while the database is unreachable."""
        return self.db.read_with(
            lambda fetch: run(lambda statement, params: self._fetch(fetch, statement, params)),
            what=what,
            snapshot=snapshot,
        )

    def _fetch(self, target: _Fetch, statement: str, params: Any) -> list[Any]:
        """Every read statement of the store goes through here."""
        return target(statement, params)

    # -- writes ------------------------------------------------------------------------------

    def put(self, record: CheckpointRecord, blobs: Sequence[BlobRecord]) -> None:
        """Store a checkpoint (an upsert) and the blobs of its changed channels (first one wins)."""
        params: dict[str, Any] = {
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
        if not blobs:
            self._execute_write([(self._upsert_checkpoint, params)], "save LangGraph checkpoint")
            return
        for i, b in enumerate(blobs):
            params[f"channel_{i}"] = b.channel
            params[f"version_{i}"] = b.version
            params[f"btype_{i}"] = b.type
            params[f"blob_{i}"] = b.blob
        n = len(blobs)
        if self.dialect.writable_ctes:  # one atomic statement: the blobs ride in a data-modifying CTE
            statement = self._sql(
                ("put", n), lambda: f"WITH blobs AS ({_blob_insert(n)}) {_UPSERT_CHECKPOINT}"
            )
            self._execute_write([(statement, params)], "save LangGraph checkpoint")
            return
        insert_blobs = self._sql(("blobs", n), lambda: _blob_insert(n))
        self._execute_write(
            [(insert_blobs, params), (self._upsert_checkpoint, params)], "save LangGraph checkpoint"
        )

    def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        *,
        replace: bool,
    ) -> None:
        """Store pending writes: `replace` overwrites rows with the same key, else the first write wins."""
        if not writes:
            return
        params: dict[str, Any] = {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
        for i, w in enumerate(writes):
            params.update(zip(_write_keys(i), w, strict=True))
        n = len(writes)
        statement = self._sql(("writes", n, replace), lambda: _writes_insert(n, replace))
        self._execute_write([(statement, params)], "save LangGraph pending writes")

    # -- reads -------------------------------------------------------------------------------

    def get(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> LoadedCheckpoint | None:
        """The given checkpoint, or the latest of (thread, namespace) when `checkpoint_id` is None."""
        params: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "limit": 1}
        where = "thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns"
        if checkpoint_id:
            where += " AND checkpoint_id = :checkpoint_id"
            params["checkpoint_id"] = checkpoint_id
        loaded = self._load(where, params, True, "load LangGraph checkpoint", index_ordered=True)
        return loaded[0] if loaded else None

    def _load(
        self,
        where: str,
        params: dict[str, Any],
        limit: bool,
        what: str,
        *,
        index_ordered: bool = False,
        contiguous: bool = False,
    ) -> list[LoadedCheckpoint]:
        """Checkpoints matching `where` (newest first, `:limit` rows if `limit`) with their blobs and
        writes: one statement on Postgres (one round trip); on SQLite the rows, then their writes and
        (only if a row references any) blobs, in one read transaction. Never a query per checkpoint.

        `index_ordered`: `where` pins thread and namespace, so the primary key already yields rows
        newest first and a limited read needs no separate key sort.
        `contiguous`: `where` has no condition beyond thread, namespace and id bounds, so rows of
        one (thread, namespace) are all of its checkpoints between their oldest and newest id.
        """
        if not self.dialect.in_process:  # a server: everything in one round trip
            statement = self._sql(("load", where, limit), lambda: _load_statement(where, limit))
            return _assemble(*_split_union(self._query(statement, params, what)))

        paged = limit and not index_ordered
        rows_sql = self._sql(
            ("rows", where, limit, paged),
            lambda: _sqlite_rows_limited_statement(where) if paged else _rows_statement(where, limit),
        )

        def run(fetch: _Fetch) -> list[LoadedCheckpoint]:
            rows = fetch(rows_sql, params)
            if not rows:
                return []
            t, n = rows[0][0], rows[0][1]
            if len(rows) == 1:
                refs = rows[0][7]
                writes = fetch(_SQLITE_ONE_WRITES, (t, n, rows[0][2]))
                blobs = fetch(_SQLITE_ONE_BLOBS, (refs, t, n)) if refs != _NO_REFS else []
            elif len(set(map(_scope_of, rows))) == 1:  # one (thread, namespace)'s history
                ids = list(map(_id_of, rows))
                if contiguous:
                    writes = fetch(_SQLITE_WRITES_IN_RANGE, (t, n, min(ids), max(ids)))
                else:
                    writes = fetch(_SQLITE_WRITES_BY_IDS, (t, n, json.dumps(ids)))
                refs_list = [row[7] for row in rows if row[7] != _NO_REFS]
                blobs = fetch(_SQLITE_BLOBS_BY_REFS, (f"[{','.join(refs_list)}]", t, n)) if refs_list else []
            else:
                writes_sql = self._sql(
                    ("writes", where, limit), lambda: _sqlite_writes_statement(where, limit)
                )
                writes = fetch(writes_sql, params)
                blobs: list[Any] = []
                if any(row[7] != _NO_REFS for row in rows):
                    blobs_sql = self._sql(
                        ("blobs", where, limit), lambda: _sqlite_blobs_statement(where, limit)
                    )
                    blobs = fetch(blobs_sql, params)
            return _assemble(rows, blobs, writes)

        return self._read(run, what, snapshot=True)

    def latest_id(self, thread_id: str, checkpoint_ns: str = "") -> str | None:
        """The id of the latest checkpoint of (thread, namespace), or None: one indexed query."""
        params = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
        rows = self._query(self._latest_id, params, "read latest LangGraph checkpoint id")
        return rows[0][0] if rows else None

    def list(
        self,
        *,
        thread_id: str | None,
        checkpoint_ns: str | None,
        checkpoint_id: str | None,
        before: str | None,
        limit: int | None,
        accept: Callable[[CheckpointRecord], bool] | None = None,
        metadata_equals: dict[str, Any] | None = None,
    ) -> list[LoadedCheckpoint]:
        """Checkpoints, newest first, with their blobs and writes, in one statement.

        `metadata_equals` narrows rows in SQL (top-level scalar keys); `accept` then filters in
        Python with LangGraph's exact semantics, and `limit` applies after it.
        """
        if limit is not None and limit <= 0:
            return []
        conditions: list[str] = []
        params: dict[str, Any] = {}
        for column, value in (
            ("thread_id", thread_id),
            ("checkpoint_ns", checkpoint_ns),
            ("checkpoint_id", checkpoint_id),
        ):
            if value is not None:
                conditions.append(f"{column} = :{column}")
                params[column] = value
        if before is not None:
            conditions.append("checkpoint_id < :before")
            params["before"] = before
        for i, (key, value) in enumerate(sorted((metadata_equals or {}).items())):
            conditions.append(self.dialect.json_key_equals("metadata", key, value, f"m{i}", params))
        where = " AND ".join(conditions) or "1 = 1"
        sql_limit = limit is not None and accept is None
        if sql_limit:
            params["limit"] = limit
        loaded = self._load(
            where,
            params,
            sql_limit,
            "list LangGraph checkpoints",
            index_ordered=thread_id is not None and checkpoint_ns is not None,
            contiguous=not metadata_equals,
        )
        if accept is not None:
            loaded = [item for item in loaded if accept(item.record)]
        return loaded if limit is None else loaded[:limit]

    # -- maintenance -------------------------------------------------------------------------

    def delete_threads(self, thread_ids: Sequence[str]) -> None:
        """Remove every row of the threads, in all namespaces; unknown threads are a no-op."""
        ids = list(thread_ids)
        if not ids:
            return

        def run() -> None:
            with self.db.write_serialized() as conn:
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
            with self.db.write_serialized() as conn:
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
            with self.db.write_serialized() as conn:
                for table in _THREAD_TABLES:
                    rows = [
                        dict(r._mapping)
                        for r in conn.execute(sa.select(table).where(table.c.thread_id == source_thread_id))
                    ]
                    if not rows:
                        continue
                    for row in rows:
                        row["thread_id"] = target_thread_id
                    insert = self.dialect.insert_ignore(table)
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
            with self.db.write_serialized() as conn:
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
                    if r.checkpoint_ns in dropped_ns
                    or heads[r.checkpoint_ns].checkpoint_id != r.checkpoint_id
                ]
                self._delete_checkpoints(conn, doomed)
                for ns in dropped_ns:
                    for table in (lg_blobs, lg_writes):
                        conn.execute(
                            sa.delete(table).where(
                                table.c.thread_id == thread_id, table.c.checkpoint_ns == ns
                            )
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
                sa.delete(lg_writes).where(
                    sa.tuple_(w.thread_id, w.checkpoint_ns, w.checkpoint_id).in_(chunk)
                )
            )
        for (thread_id, ns), pairs in freed.items():
            rows = conn.execute(sa.select(c.versions).where(c.thread_id == thread_id, c.checkpoint_ns == ns))
            for r in rows:
                pairs.difference_update((ch, version_key(v)) for ch, v in json.loads(r.versions).items())
            garbage = sorted(pairs)
            for chunk in _chunks(garbage):
                conn.execute(
                    sa.delete(lg_blobs).where(
                        b.thread_id == thread_id,
                        b.checkpoint_ns == ns,
                        sa.tuple_(b.channel, b.version).in_(chunk),
                    )
                )

    def thread_stats(self, thread_id: str) -> dict[str, int]:
        """Row counts and payload bytes a thread holds, per table (for tests, benchmarks, dashboards)."""

        def run() -> dict[str, int]:
            stats: dict[str, int] = {}
            with self.db.read() as conn:
                for table, payload in (
                    (
                        lg_checkpoints,
                        (lg_checkpoints.c.checkpoint, lg_checkpoints.c.metadata, lg_checkpoints.c.versions),
                    ),
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

    def delete_memos(self, run_key: str) -> None:
        """Drop a finished run's step memos (nothing replays them once its outcome is recorded)."""
        self._execute_write([(self._delete_memos, {"run_key": run_key})], "delete step memos")

    def load_memos(self, run_key: str) -> dict[tuple[str, int], MemoRecord]:
        """Every step memo of a durable run, keyed (task namespace, call index), in one query."""
        params = {"run_key": run_key}

        def run() -> dict[tuple[str, int], MemoRecord]:
            with self.db.read() as conn:
                rows = conn.exec_driver_sql(self._load_memos, params).all()
            return {
                (r.task_ns, r.idx): MemoRecord(
                    r.name, r.type, None if r.blob is None else bytes(r.blob), bool(r.is_error)
                )
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
            with self.db.write_serialized() as conn:
                conn.exec_driver_sql(self._put_memo, params)

        self.db.retrying(run, what="record step memo")
