"""DurableCheckpointer under real graphs: modes, history, writes, forks, subgraphs, concurrency."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from durable_langgraph import CheckpointDecodeError, DurableCheckpointer
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from lg_support import FRESH, ChainState, approval_builder, cfg, chain_builder

from durable_core import Engine


@contextmanager
def count_queries(saver: DurableCheckpointer) -> Generator[list[str]]:
    """Every read statement the saver's store sends (its single read entry point)."""
    store = saver.store
    statements: list[str] = []
    original = store._fetch

    def counting(target: Any, statement: str, params: Any) -> list[Any]:
        statements.append(statement)
        return original(target, statement, params)

    store._fetch = counting  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        del store._fetch


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_every_durability_mode_saves_a_resumable_history(saver: DurableCheckpointer, durability: str) -> None:
    graph = chain_builder().compile(checkpointer=saver)
    out = graph.invoke(FRESH, cfg("t"), durability=durability)
    assert out == {"count": 5, "items": ["n1", "n2", "n3", "n4", "n5"]}
    history = list(graph.get_state_history(cfg("t")))
    assert len(history) == (1 if durability == "exit" else 7)
    assert history[0].values == out and history[0].next == ()
    steps = [h.metadata["step"] for h in history if h.metadata]
    assert steps == sorted(steps, reverse=True)  # newest first
    again = graph.invoke(FRESH, cfg("t"), durability=durability)  # a second run continues the thread
    assert again["count"] == 5 and len(again["items"]) == 10


def test_one_saver_serves_sync_and_async_callers_across_event_loops(saver: DurableCheckpointer) -> None:
    graph = chain_builder(3).compile(checkpointer=saver)
    assert graph.invoke(FRESH, cfg("s"))["count"] == 3
    for thread in ("a1", "a2"):  # two successive asyncio.run() calls on one saver instance
        out = asyncio.run(graph.ainvoke(FRESH, cfg(thread)))
        assert out["count"] == 3

    async def sync_calls_inside_a_running_loop() -> int:
        # A sync call on the loop thread must neither deadlock nor raise.
        state = graph.get_state(cfg("a1"))
        return int(state.values["count"])

    assert asyncio.run(sync_calls_inside_a_running_loop()) == 3
    assert [t.config["configurable"]["thread_id"] for t in saver.list(None, limit=1)]


async def test_async_methods_do_not_block_the_event_loop(saver: DurableCheckpointer) -> None:
    graph = chain_builder(5).compile(checkpointer=saver)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(graph.ainvoke(FRESH, cfg(f"nb{i}")) for i in range(8)))
    stop.set()
    await task
    assert ticks > 50  # the loop kept running while database work happened in threads
    tuples = [t async for t in saver.alist(cfg("nb0"))]
    assert len(tuples) == 7


def test_limited_listings_match_the_full_history_checkpoint_by_checkpoint(saver: DurableCheckpointer) -> None:
    """`limit` / `before` pages of one thread (read by key after the page's rows) and of all threads
    carry exactly what the full listing and `get_tuple` carry: values from blobs, versions, writes."""
    graph = chain_builder(10).compile(checkpointer=saver)
    for _ in range(5):  # `items` outgrows the inline budget: later checkpoints reference a blob
        graph.invoke(FRESH, cfg("page"))
    graph.invoke(FRESH, cfg("page-other"))
    history = list(saver.list(cfg("page")))
    assert len(history) == 5 * 12
    with count_queries(saver) as statements:
        assert list(saver.list(cfg("page"), limit=20)) == history[:20]
    assert any("lg_blobs" in statement for statement in statements)  # values came from blob rows
    assert sum(len(t.pending_writes or []) for t in history) >= 5 * 10
    for limit in (1, 2, 7, 59, 100):  # keys sorted first (namespace open), or the primary key's order
        assert list(saver.list(cfg("page"), limit=limit)) == history[:limit]
        assert list(saver.list(cfg("page", checkpoint_ns=""), limit=limit)) == history[:limit]
    assert list(saver.list(cfg("page"), before=history[9].config, limit=6)) == history[10:16]
    # Rows scattered through the history (a metadata filter): their writes are read by id, not by range.
    inputs = list(saver.list(cfg("page"), filter={"source": "input"}))  # one per run
    assert len(inputs) == 5
    assert inputs == [t for t in history if t.metadata["source"] == "input"]
    assert all(t.pending_writes for t in inputs)
    for item in history:  # one checkpoint at a time: another statement path, the oracle
        assert saver.get_tuple(item.config) == item
    everything = list(saver.list(None))  # two threads' rows: read back through `where` again
    assert [t for t in everything if t.config["configurable"]["thread_id"] == "page"] == history
    assert list(saver.list(None, limit=9)) == everything[:9]
    assert everything[0] == next(saver.list(cfg("page-other"), limit=1))


def test_list_filters_before_limit_and_issues_no_query_per_checkpoint(saver: DurableCheckpointer) -> None:
    graph = chain_builder(10).compile(checkpointer=saver)
    for _ in range(4):
        graph.invoke(FRESH, cfg("h"))
    graph.invoke(FRESH, cfg("other"))
    with count_queries(saver) as statements:
        history = list(saver.list(cfg("h")))
    assert len(history) == 4 * 12
    # Rows, blobs and writes: one statement on Postgres (one round trip); on SQLite rows, then writes
    # (blobs only when a row references one), whatever the number of checkpoints.
    assert len(statements) == (1 if saver.store.db.dialect == "postgresql" else 3), statements
    # ...and each tuple came back complete: values, versions and its own pending writes.
    assert sum(len(t.pending_writes or []) for t in history) >= 4 * 10
    assert all(t.checkpoint["channel_versions"] for t in history[:-1])
    ids = [t.config["configurable"]["checkpoint_id"] for t in history]
    assert ids == sorted(ids, reverse=True)
    inputs = list(saver.list(cfg("h"), filter={"source": "input"}))
    assert len(inputs) == 4 and all(t.metadata["source"] == "input" for t in inputs)
    assert [t.metadata["step"] for t in saver.list(cfg("h"), filter={"source": "loop", "step": 3})] == [3]
    assert list(saver.list(cfg("h"), filter={"missing": None}, limit=2)) == history[:2]  # None matches absent
    before = list(saver.list(cfg("h"), before=history[5].config, limit=3))
    assert [t.config for t in before] == [t.config for t in history[6:9]]
    assert list(saver.list(cfg("h"), limit=0)) == []
    everything = list(saver.list(None))
    assert len(everything) == len(history) + 12
    last = history[0]
    assert last.parent_config == history[1].config
    assert last.checkpoint["channel_values"]["count"] == 10


def test_pending_writes_are_idempotent_and_special_channels_replaced(saver: DurableCheckpointer) -> None:
    config = saver.put(cfg("w", checkpoint_ns=""), empty_checkpoint(), {"source": "input", "step": -1}, {})
    saver.put_writes(config, [("a", 1), ("b", 2)], "task-2", "~b")
    saver.put_writes(config, [("a", 99), ("b", 98)], "task-2", "~b")  # a re-sent regular write: first wins
    saver.put_writes(config, [("__error__", "first")], "task-1", "~a")
    saver.put_writes(config, [("__error__", "second")], "task-1", "~a")  # special: replaced
    saver.put_writes(config, [("x", "z")], "task-0", "~c")
    tup = saver.get_tuple(config)
    assert tup is not None
    assert tup.pending_writes == [
        ("task-1", "__error__", "second"),
        ("task-2", "a", 1),
        ("task-2", "b", 2),
        ("task-0", "x", "z"),
    ]


def test_channel_values_are_stored_once_per_version(saver: DurableCheckpointer) -> None:
    big = "x" * 10_000

    class S(ChainState):
        doc: str

    def set_doc(state: S) -> dict[str, Any]:
        return {"doc": big, "count": 1}

    def bump(state: S) -> dict[str, Any]:
        return {"count": state["count"] + 1}

    builder: StateGraph[Any] = StateGraph(S)
    builder.add_node("set_doc", set_doc)
    builder.add_node("b1", bump)
    builder.add_node("b2", bump)
    builder.add_node("b3", bump)
    builder.add_edge(START, "set_doc")
    builder.add_edge("set_doc", "b1")
    builder.add_edge("b1", "b2")
    builder.add_edge("b2", "b3")
    builder.add_edge("b3", END)
    graph = builder.compile(checkpointer=saver)
    graph.invoke({"count": 0, "items": []}, cfg("big"))
    stats = saver.store.thread_stats("big")
    assert stats["lg_checkpoints_rows"] == 6
    # The 10 KB string exists once, not once per checkpoint (the stock Postgres saver inlines it in all 6).
    assert 10_000 < stats["lg_blobs_bytes"] < 2 * 10_000
    assert stats["lg_checkpoints_bytes"] < 6 * 1_000
    assert graph.get_state(cfg("big")).values["doc"] == big


def test_interrupt_and_resume_through_the_saver(saver: DurableCheckpointer) -> None:
    graph = approval_builder().compile(checkpointer=saver)
    out = graph.invoke(FRESH, cfg("i"))
    assert out["__interrupt__"][0].value == {"question": "publish?", "count": 1}
    state = graph.get_state(cfg("i"))
    assert state.next == ("approve",) and state.interrupts
    out = graph.invoke(Command(resume="yes"), cfg("i"))
    assert out["items"] == ["draft", "approved:yes", "publish"]


def test_update_state_fork_does_not_corrupt_the_original_branch(saver: DurableCheckpointer) -> None:
    graph = chain_builder(5).compile(checkpointer=saver)
    graph.invoke(FRESH, cfg("tt"))
    history = list(graph.get_state_history(cfg("tt")))
    after_two = next(h for h in history if h.values.get("count") == 2)
    assert after_two.next == ("n3",)
    fork_config = graph.update_state(after_two.config, {"count": 100, "items": ["edited"]})
    forked = graph.invoke(None, fork_config)
    assert forked["count"] == 103 and forked["items"][-4:] == ["edited", "n3", "n4", "n5"]
    # The original branch still reads its own values at every checkpoint.
    for h in history:
        assert graph.get_state(h.config).values == h.values
    replay = graph.invoke(None, after_two.config)  # time travel from the original checkpoint
    assert replay["count"] == 5 and "edited" not in replay["items"]


def test_subgraph_checkpoints_live_in_their_namespaces(saver: DurableCheckpointer) -> None:
    def inner_ask(state: ChainState) -> dict[str, Any]:
        answer = interrupt("inner?")
        return {"items": [f"inner:{answer}"], "count": state["count"] + 1}

    inner: StateGraph[Any] = StateGraph(ChainState)
    inner.add_node("inner_ask", inner_ask)
    inner.add_edge(START, "inner_ask")
    inner.add_edge("inner_ask", END)
    outer: StateGraph[Any] = StateGraph(ChainState)
    outer.add_node("child", inner.compile())
    outer.add_node("after", lambda s: {"items": ["after"]})
    outer.add_edge(START, "child")
    outer.add_edge("child", "after")
    outer.add_edge("after", END)
    graph = outer.compile(checkpointer=saver)
    out = graph.invoke(FRESH, cfg("sub"))
    assert out["__interrupt__"][0].value == "inner?"
    state = graph.get_state(cfg("sub"), subgraphs=True)
    sub_state = state.tasks[0].state
    assert sub_state is not None and sub_state.next == ("inner_ask",)  # type: ignore[union-attr]
    namespaces = {t.config["configurable"]["checkpoint_ns"] for t in saver.list(cfg("sub"))}
    assert "" in namespaces and any(ns.startswith("child:") for ns in namespaces)
    assert all(
        t.config["configurable"]["checkpoint_ns"] == "" for t in saver.list(cfg("sub", checkpoint_ns=""))
    )
    out = graph.invoke(Command(resume="ok"), cfg("sub"))
    assert out["items"] == ["inner:ok", "after"]
    saver.prune(["sub"])
    assert len(list(saver.list(cfg("sub", checkpoint_ns="")))) == 1
    assert graph.get_state(cfg("sub")).values["items"] == ["inner:ok", "after"]


def test_thirty_two_threads_in_parallel(saver: DurableCheckpointer) -> None:
    graph = chain_builder(5).compile(checkpointer=saver)
    barrier = threading.Barrier(32)

    def run(i: int) -> dict[str, Any]:
        barrier.wait(timeout=30)
        return graph.invoke({"count": i, "items": []}, cfg(f"p{i}"), durability="sync")

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(run, range(32)))
    assert [r["count"] for r in results] == [i + 5 for i in range(32)]

    async def run_async() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(graph.ainvoke({"count": i, "items": []}, cfg(f"q{i}")) for i in range(32))
        )

    assert [r["count"] for r in asyncio.run(run_async())] == [i + 5 for i in range(32)]
    for i in range(32):
        assert len(list(saver.list(cfg(f"p{i}")))) == 7
        assert graph.get_state(cfg(f"q{i}")).values["items"] == ["n1", "n2", "n3", "n4", "n5"]


class _XorCipher:
    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        return "xor", bytes(b ^ 0x5A for b in plaintext)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        assert ciphername == "xor"
        return bytes(b ^ 0x5A for b in ciphertext)


def test_encrypted_serializer_round_trips_and_wrong_serde_fails_clearly(engine: Engine) -> None:
    encrypted = DurableCheckpointer(engine, serde=EncryptedSerializer(_XorCipher()))
    graph = chain_builder(3).compile(checkpointer=encrypted)
    assert graph.invoke(FRESH, cfg("enc"))["count"] == 3
    assert graph.get_state(cfg("enc")).values["items"] == ["n1", "n2", "n3"]
    plain = DurableCheckpointer(engine)
    with pytest.raises(CheckpointDecodeError, match="serializer"):
        plain.get_tuple(cfg("enc"))


def test_bad_input_fails_with_clear_errors(saver: DurableCheckpointer) -> None:
    with pytest.raises(ValueError, match="thread_id"):
        saver.get_tuple({"configurable": {}})
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"lock": threading.Lock()}
    checkpoint["channel_versions"] = {"lock": 1}
    with pytest.raises(TypeError, match="cannot serialize"):
        saver.put(cfg("bad", checkpoint_ns=""), checkpoint, {}, {"lock": 1})
    assert saver.get_tuple(cfg("bad")) is None  # nothing half-written
    with pytest.raises(TypeError):
        saver.prune("bad")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strategy"):
        saver.prune(["bad"], strategy="everything")


def test_copy_thread_prune_and_delete_on_graph_threads(saver: DurableCheckpointer) -> None:
    graph = approval_builder().compile(checkpointer=saver)
    graph.invoke(FRESH, cfg("src"))
    saver.copy_thread("src", "dst")
    assert [t.checkpoint["id"] for t in saver.list(cfg("dst"))] == [
        t.checkpoint["id"] for t in saver.list(cfg("src"))
    ]
    out = graph.invoke(Command(resume="copy"), cfg("dst"))  # the copy resumes on its own
    assert out["items"][-2:] == ["approved:copy", "publish"]
    assert graph.get_state(cfg("src")).next == ("approve",)  # the source is untouched
    saver.prune(["dst"], strategy="keep_latest")
    assert len(list(saver.list(cfg("dst")))) == 1
    assert graph.get_state(cfg("dst")).values == out
    saver.delete_thread("src")
    assert saver.get_tuple(cfg("src")) is None
    assert saver.store.thread_stats("src")["lg_blobs_rows"] == 0


def test_with_allowlist_copy_shares_storage(saver: DurableCheckpointer) -> None:
    copy = saver.with_allowlist([("lg_support", "ChainState")])
    assert copy.store is saver.store if copy is not saver else True
    graph = chain_builder(2).compile(checkpointer=copy)
    graph.invoke(FRESH, cfg("allow"))
    assert saver.get_tuple(cfg("allow")) is not None


def test_delete_for_runs_removes_only_that_runs_checkpoints(saver: DurableCheckpointer) -> None:
    graph = chain_builder(2).compile(checkpointer=saver)
    for run_id in ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"):
        graph.invoke(FRESH, {"configurable": {"thread_id": "r"}, "metadata": {"run_id": run_id}})
    runs = {t.metadata.get("run_id") for t in saver.list(cfg("r"))}
    assert runs == {"11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"}
    saver.delete_for_runs(["11111111-1111-4111-8111-111111111111"])
    assert {t.metadata.get("run_id") for t in saver.list(cfg("r"))} == {
        "22222222-2222-4222-8222-222222222222"
    }
    assert graph.get_state(cfg("r")).values["count"] == 2


def test_small_values_ride_inline_and_versions_round_trip_exactly(saver: DurableCheckpointer) -> None:
    graph = chain_builder(5).compile(checkpointer=saver)
    graph.invoke(FRESH, cfg("small"))
    stats = saver.store.thread_stats("small")
    assert stats["lg_checkpoints_rows"] == 7
    assert stats["lg_blobs_rows"] == 0  # a counter, a short list of names, the input dict: all inline
    history = list(saver.list(cfg("small")))
    assert history[0].checkpoint["channel_values"] == {"count": 5, "items": ["n1", "n2", "n3", "n4", "n5"]}
    versions = history[0].checkpoint["channel_versions"]
    assert all(isinstance(v, str) and len(v) == 15 for v in versions.values())  # e.g. "a7.3f09c2d41b6e"
    seen = history[0].checkpoint["versions_seen"]
    assert seen["n5"]["branch:to:n5"] in {
        h.checkpoint["channel_versions"].get("branch:to:n5") for h in history
    }
    assert history[0].checkpoint["id"] == history[0].config["configurable"]["checkpoint_id"]
    # Any other version shape (ints, odd strings) is stored as it is.
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"a": [1, 2], "b": "x" * 100}
    checkpoint["channel_versions"] = {"a": 3, "b": "7.odd", "c": "00000000000000000000000000000001.x"}
    checkpoint["versions_seen"] = {"node": {"a": 2, "b": "0000000000000000000000000000000٣.0.5"}}
    config = saver.put(
        cfg("odd", checkpoint_ns=""), checkpoint, {"source": "input", "step": -1}, {"a": 3, "b": "7.odd"}
    )
    tup = saver.get_tuple(config)
    assert tup is not None
    assert tup.checkpoint["channel_versions"] == checkpoint["channel_versions"]
    assert tup.checkpoint["versions_seen"] == checkpoint["versions_seen"]
    assert tup.checkpoint["channel_values"] == {"a": [1, 2], "b": "x" * 100}
    assert saver.store.thread_stats("odd")["lg_blobs_rows"] == 1  # only the long string


def test_large_containers_are_stored_once_per_version(saver: DurableCheckpointer) -> None:
    names = [f"name-{i}" for i in range(40)]  # over the inline budget
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"names": names, "meta": {"k": "v"}}
    checkpoint["channel_versions"] = {"names": "00000000000000000000000000000001.0.1", "meta": "1"}
    config = saver.put(cfg("large", checkpoint_ns=""), checkpoint, {}, checkpoint["channel_versions"])
    assert saver.store.thread_stats("large")["lg_blobs_rows"] == 1
    second = empty_checkpoint()
    second["channel_values"] = {"names": names, "meta": {"k": "v"}}
    second["channel_versions"] = checkpoint["channel_versions"]
    saver.put(config, second, {}, {})  # nothing changed: no new blob, the first one is shared
    assert saver.store.thread_stats("large")["lg_blobs_rows"] == 1
    for tup in saver.list(cfg("large")):
        assert tup.checkpoint["channel_values"] == {"names": names, "meta": {"k": "v"}}


def test_rows_written_before_versions_moved_into_the_body_still_load(saver: DurableCheckpointer) -> None:
    from durable_core.storage.checkpoints import BlobRecord, CheckpointRecord

    # The previous layout: body without channel values, ids or versions; every version in `versions`.
    version = "00000000000000000000000000000002.0.25"
    body = {
        "v": 4,
        "id": "1f0-old",
        "ts": "2024-01-01T00:00:00+00:00",
        "versions_seen": {"n": {"x": version}},
    }
    body["channel_values"] = {"count": 3}
    type_, data = saver.serde.dumps_typed(body)
    blob_type, blob = saver.serde.dumps_typed(["a", "b"])
    record = CheckpointRecord(
        "old",
        "",
        "1f0-old",
        None,
        None,
        type_,
        data,
        json.dumps({"count": version, "items": version}),
        json.dumps({"source": "loop", "step": 1}),
    )
    saver.store.put(record, [BlobRecord("items", version, blob_type, blob)])
    for tup in (saver.get_tuple(cfg("old")), next(iter(saver.list(cfg("old"))))):
        assert tup is not None
        assert tup.checkpoint["channel_values"] == {"count": 3, "items": ["a", "b"]}
        assert tup.checkpoint["channel_versions"] == {"count": version, "items": version}
        assert tup.checkpoint["versions_seen"] == {"n": {"x": version}}
        assert tup.checkpoint["id"] == "1f0-old"


def test_versions_sort_as_numbers_and_continue_the_zero_padded_form(saver: DurableCheckpointer) -> None:
    versions = [saver.get_next_version(None, None)]
    for _ in range(120):  # across 1, 2 and 3 digits
        versions.append(saver.get_next_version(versions[-1], None))
    assert [v.split(".")[0] for v in versions[:3]] == ["a1", "a2", "a3"]
    assert versions[9].startswith("b10.") and versions[99].startswith("c100.")
    assert versions == sorted(versions)  # string order is number order (LangGraph takes max())
    # A channel written in LangGraph's zero-padded form (threads of earlier releases, other savers)
    padded = "00000000000000000000000000000041.0.5488135039273248"
    after = saver.get_next_version(padded, None)
    assert after.startswith("b42.") and after > padded
    assert max([padded, after, "00000000000000000000000000000040.0.1"]) == after
    assert saver.get_next_version(7, None).startswith("a8.")  # int versions (other savers)
    forks = {saver.get_next_version("a4.000000000000", None) for _ in range(50)}
    assert len(forks) == 50  # unique across forks of one checkpoint


def test_metadata_beyond_int64_round_trips_and_non_finite_numbers_are_refused(
    saver: DurableCheckpointer,
) -> None:
    big = 2**70  # valid JSON that the fast decoder refuses: the stdlib decodes it instead
    metadata: Any = {"source": "input", "step": -1, "big": big, "note": "é\u2028"}
    config = saver.put(cfg("meta", checkpoint_ns=""), empty_checkpoint(), metadata, {})
    tup = saver.get_tuple(config)
    assert tup is not None
    listed = next(iter(saver.list(cfg("meta"))))
    for got in (dict(tup.metadata), dict(listed.metadata)):
        assert got["big"] == big and got["note"] == "é\u2028"
    assert [dict(t.metadata)["big"] for t in saver.list(cfg("meta"), filter={"big": big})] == [big]
    # NaN/Infinity are not JSON: stored, they would break every filtered listing (jsonb, json_extract).
    with pytest.raises(TypeError, match="NaN or infinite numbers as strings"):
        saver.put(cfg("meta", checkpoint_ns=""), empty_checkpoint(), {"score": float("inf")}, {})
    assert len(list(saver.list(cfg("meta"), filter={"source": "input"}))) == 1


def test_bodies_written_with_stripped_versions_still_load(saver: DurableCheckpointer) -> None:
    from durable_core.storage.checkpoints import CheckpointRecord

    # The previous body layout: `channel_versions` with each version's zero padding stripped
    # (a string) or, for any other version, wrapped in a 1-item list.
    full = "00000000000000000000000000000002.0.25"
    body = {
        "v": 4,
        "ts": "2024-01-01T00:00:00+00:00",
        "channel_values": {"count": 3},
        "channel_versions": {"count": "2.0.25", "odd": [7]},
        "versions_seen": {"n": {"count": full}},
    }
    type_, data = saver.serde.dumps_typed(body)
    meta = json.dumps({"source": "loop", "step": 1})
    for checkpoint_id in ("1f0-a", "1f0-b"):
        record = CheckpointRecord("stripped", "", checkpoint_id, None, None, type_, data, "{}", meta)
        saver.store.put(record, [])
    listed = list(saver.list(cfg("stripped")))
    for tup in (saver.get_tuple(cfg("stripped")), *listed):
        assert tup is not None
        assert tup.checkpoint["channel_versions"] == {"count": full, "odd": 7}
        assert tup.checkpoint["versions_seen"] == {"n": {"count": full}}
        assert tup.checkpoint["channel_values"] == {"count": 3}
    assert [t.checkpoint["id"] for t in listed] == ["1f0-b", "1f0-a"]


def test_sqlite_get_tuple_of_a_new_thread_is_one_query(saver: DurableCheckpointer) -> None:
    graph = chain_builder(2).compile(checkpointer=saver)
    graph.invoke(FRESH, cfg("known"))
    with count_queries(saver) as statements:
        assert saver.get_tuple(cfg("unknown")) is None
        missing = len(statements)
        assert saver.get_tuple(cfg("known")) is not None
    assert missing == 1
    one_round_trip = saver.store.db.dialect == "postgresql"
    assert len(statements) - missing == (1 if one_round_trip else 2)  # row, then its writes


@pytest.mark.backends("sqlite")  # the group commit is SQLite's (Postgres writes are single statements)
def test_sqlite_group_commit_shares_one_transaction_and_isolates_a_failure(
    saver: DurableCheckpointer,
) -> None:
    store = saver.store
    config = saver.put(cfg("g", checkpoint_ns=""), empty_checkpoint(), {"source": "input", "step": -1}, {})
    errors: list[Exception] = []
    commits: list[int] = []
    raw = store.db.raw  # the database's group commit
    original = raw._commit  # type: ignore[attr-defined]

    def counting(batch: Any) -> None:
        commits.append(len(batch))
        original(batch)

    raw._commit = counting  # type: ignore[attr-defined]

    def write(i: int) -> None:
        try:
            if i == 3:
                store._execute_write([("INSERT INTO no_such_table VALUES (1)", {})], "a broken write")
            else:
                saver.put_writes(config, [("c", i)], f"task-{i}")
        except Exception as error:
            errors.append(error)

    with raw.serialized():  # writers queue up while another commit holds the lock
        threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(raw._pending) < 6 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.001)
        assert len(raw._pending) == 6  # type: ignore[attr-defined]
    for thread in threads:
        thread.join(timeout=10)
    del raw._commit  # type: ignore[attr-defined]
    assert commits[0] == 6  # one leader took every queued write...
    assert len(errors) == 1 and "no_such_table" in str(errors[0])  # ...and only the broken one failed
    tup = saver.get_tuple(config)
    assert tup is not None
    assert sorted(value for _, _, value in tup.pending_writes or []) == [0, 1, 2, 4, 5]


@pytest.mark.backends("postgres")
def test_checkpoint_reads_are_prepared_on_first_use_of_a_connection(saver: DurableCheckpointer) -> None:
    """Planning the one-statement load costs more than running it, and a pool spreads reads over many
    connections: each connection prepares it the first time, not after psycopg's default 5 uses."""
    graph = chain_builder(2).compile(checkpointer=saver)
    graph.invoke(FRESH, cfg("prep"))
    store = saver.store
    with store.db.raw.cursor() as (_, cursor):  # type: ignore[attr-defined]  # the pool's most recent connection
        cursor.execute("DEALLOCATE ALL")
    assert saver.get_tuple(cfg("prep")) is not None  # one read on that connection
    with store.db.raw.cursor() as (_, cursor):  # type: ignore[attr-defined]  # LIFO pool: the same connection again
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("lg_checkpoints" in statement for statement in prepared), prepared
