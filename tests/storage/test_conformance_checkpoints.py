"""CheckpointStore conformance, on both databases (the rows under the LangGraph saver).

Protocol: a checkpoint is an upsert; blobs are stored once per (channel, version), first one wins,
and come back with every checkpoint that references them; pending writes are first-wins unless
`replace`; reads return the newest first, with their writes in LangGraph's order; step memos are
first-wins; deleting or copying a thread covers every table; concurrent writers all land.
"""

from __future__ import annotations

import json
import threading

from durable_core.storage import Database
from durable_core.storage.checkpoints import (
    BlobRecord,
    CheckpointRecord,
    CheckpointStore,
    MemoRecord,
    WriteRecord,
)


def _checkpoint(
    checkpoint_id: str, versions: dict[str, str], *, thread: str = "t", run_id: str | None = None
) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=thread,
        checkpoint_ns="",
        checkpoint_id=checkpoint_id,
        parent_checkpoint_id=None,
        run_id=run_id,
        type="json",
        checkpoint=json.dumps({"id": checkpoint_id}).encode(),
        versions=json.dumps(versions),
        metadata=json.dumps({"step": int(checkpoint_id), "source": "loop"}),
    )


def _write(task: str, idx: int, value: bytes, path: str = "") -> WriteRecord:
    return WriteRecord(task_id=task, task_path=path, idx=idx, channel="c", type="bytes", blob=value)


def test_checkpoints_blobs_and_writes_round_trip(db: Database) -> None:
    store = CheckpointStore(db)
    store.put(_checkpoint("1", {"a": "1"}), [BlobRecord("a", "1", "bytes", b"first")])
    store.put(
        _checkpoint("2", {"a": "1", "b": "1"}),
        [BlobRecord("a", "1", "bytes", b"ignored"), BlobRecord("b", "1", "bytes", b"b1")],
    )
    store.put_writes(
        "t", "", "2", [_write("task-b", 0, b"x", "~b"), _write("task-a", 0, b"y", "~a")], replace=False
    )
    latest = store.get("t", "", None)
    assert latest is not None and latest.record.checkpoint_id == "2"
    assert {ch: blob.blob for ch, blob in latest.blobs.items()} == {
        "a": b"first",
        "b": b"b1",
    }  # first blob wins
    assert [w.task_id for w in latest.writes] == ["task-a", "task-b"]  # (task_path, task_id, idx) order
    assert store.latest_id("t") == "2"
    listed = store.list(thread_id="t", checkpoint_ns="", checkpoint_id=None, before=None, limit=None)
    assert [c.record.checkpoint_id for c in listed] == ["2", "1"]
    assert [
        c.record.checkpoint_id
        for c in store.list(thread_id="t", checkpoint_ns="", checkpoint_id=None, before="2", limit=None)
    ] == ["1"]
    filtered = store.list(
        thread_id=None,
        checkpoint_ns=None,
        checkpoint_id=None,
        before=None,
        limit=None,
        metadata_equals={"step": 1},
    )
    assert [c.record.checkpoint_id for c in filtered] == ["1"]
    # a checkpoint is an upsert
    store.put(_checkpoint("2", {"a": "1"}), [])
    again = store.get("t", "", "2")
    assert again is not None and set(again.blobs) == {"a"}


def test_pending_writes_are_first_wins_unless_replaced(db: Database) -> None:
    store = CheckpointStore(db)
    store.put(_checkpoint("1", {}), [])
    store.put_writes("t", "", "1", [_write("task", 0, b"first")], replace=False)
    store.put_writes("t", "", "1", [_write("task", 0, b"second")], replace=False)
    assert [w.blob for w in store.get("t", "", "1").writes] == [b"first"]  # type: ignore[union-attr]
    store.put_writes("t", "", "1", [_write("task", 0, b"third")], replace=True)
    assert [w.blob for w in store.get("t", "", "1").writes] == [b"third"]  # type: ignore[union-attr]


def test_step_memos_are_first_wins_per_run(db: Database) -> None:
    store = CheckpointStore(db)
    store.put_memo("run-1", "node:1", 0, "t", MemoRecord("s", "json", b"1", False))
    store.put_memo("run-1", "node:1", 0, "t", MemoRecord("s", "json", b"2", False))
    store.put_memo("run-1", "node:1", 1, "t", MemoRecord("s", "json", None, True))
    assert store.load_memos("run-1") == {
        ("node:1", 0): MemoRecord("s", "json", b"1", False),
        ("node:1", 1): MemoRecord("s", "json", None, True),
    }
    store.delete_memos("run-1")
    assert store.load_memos("run-1") == {}


def test_threads_are_copied_and_deleted_across_every_table(db: Database) -> None:
    store = CheckpointStore(db)
    store.put(_checkpoint("1", {"a": "1"}, run_id="r1"), [BlobRecord("a", "1", "bytes", b"v")])
    store.put_writes("t", "", "1", [_write("task", 0, b"w")], replace=False)
    store.put_memo("run-1", "n", 0, "t", MemoRecord("s", "json", b"1", False))
    store.copy_thread("t", "copy")
    store.copy_thread("t", "copy")  # a retried copy is harmless
    copied = store.get("copy", "", None)
    assert copied is not None and copied.blobs["a"].blob == b"v" and len(copied.writes) == 1
    store.delete_threads(["t"])
    assert store.get("t", "", None) is None
    assert store.thread_stats("t") == {
        f"{table}_{kind}": 0
        for table in ("lg_checkpoints", "lg_blobs", "lg_writes", "lg_memos")
        for kind in ("rows", "bytes")
    }
    assert store.get("copy", "", None) is not None
    store.delete_for_runs(["r1"])
    assert store.get("copy", "", None) is None
    assert store.thread_stats("copy")["lg_blobs_rows"] == 0  # orphaned blobs go too


def test_concurrent_writers_all_land(db: Database) -> None:
    store = CheckpointStore(db)
    store.put(_checkpoint("1", {}), [])
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            store.put_writes("t", "", "1", [_write(f"task-{n}", 0, str(n).encode())], replace=False)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert sorted(w.blob for w in store.get("t", "", "1").writes) == [str(n).encode() for n in range(6)]  # type: ignore[union-attr]


def test_stores_of_one_database_share_its_connection_layer(db: Database) -> None:
    """No store keeps a writer or lock of its own: two stores on one database commit through the
    database's group commit (SQLite) or pool (Postgres), and each sees the other's rows."""
    first, second = CheckpointStore(db), CheckpointStore(db)
    first.put(_checkpoint("1", {}), [])
    loaded = second.get("t", "", None)
    assert loaded is not None and loaded.record.checkpoint_id == "1"
    assert not any(name in vars(first) for name in ("_writer", "_pending", "_lock", "_sqlite_lock"))
