"""`DurableCheckpointer`: a complete LangGraph `BaseCheckpointSaver` in the engine's database.

One class serves sync and async callers. Sync methods do their database work on the calling
thread (so they never wait on an event loop and cannot deadlock inside one); async methods
serialize on the caller's thread (LangGraph hands savers live containers, see
langchain-ai/langgraph#8748) and run the database work in a worker thread, so the event loop
never blocks and a write is committed before the awaitable returns.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from durable_core.extend import (
    BlobRecord,
    CheckpointRecord,
    CheckpointStore,
    LoadedCheckpoint,
    WriteRecord,
    version_key,
)

from ._errors import CheckpointDecodeError, CheckpointerNotReady

__all__ = ["DurableCheckpointer", "thread_id_of"]

T = TypeVar("T")


def _json_loads(text: str) -> Any:
    """Stored metadata back from JSON (once per checkpoint in every listing): orjson, faster than
    the stdlib, which takes over for what orjson refuses and `json.dumps` writes (integers beyond
    64 bits; NaN and infinities in rows written before metadata had to be strict JSON)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


_PRUNE_STRATEGIES = ("keep_latest", "delete")
_NOT_IN_BODY = frozenset({"channel_values", "channel_versions", "id"})
_VERSIONS = "cv"
"""Body key of the channel versions, stored as LangGraph gave them. (Bodies written before it
held `channel_versions` with the zero padding of each version stripped; they still load.)"""
_DELTA_MARKER = "counters_since_delta_snapshot"


class _HasDatabase(Protocol):
    @property
    def database(self) -> Any: ...


class _StoreHolder:
    """Shared by a saver and its `with_allowlist` copies (LangGraph copies savers shallowly)."""

    __slots__ = ("source", "store")

    def __init__(self, source: Any) -> None:
        self.source = source
        self.store: CheckpointStore | None = None

    def get(self) -> CheckpointStore:
        database = _database_of(self.source)
        store = self.store
        if store is None or store.db is not database:  # first use, or the engine was relaunched
            store = self.store = CheckpointStore(database)
        return store


def _database_of(source: Any) -> Any:
    database = getattr(source, "database", None)
    if database is None and hasattr(source, "sql") and hasattr(source, "write"):
        database = source  # a storage Database passed directly
    if database is None:
        raise CheckpointerNotReady(
            "DurableCheckpointer has no database yet: call engine.launch() before running the graph "
            "(build the graph and its DurableGraph first, then launch, so recovery can resume threads)."
        )
    return database


def thread_id_of(config: RunnableConfig) -> str:
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or thread_id == "":
        raise ValueError(
            "DurableCheckpointer needs a thread id: pass config={'configurable': {'thread_id': '...'}} "
            "to invoke/stream/get_state."
        )
    return str(thread_id)


class DurableCheckpointer(BaseCheckpointSaver[str]):
    """LangGraph checkpoints stored in the durable engine's database (SQLite or Postgres).

    ```python
    graph = builder.compile(checkpointer=DurableCheckpointer(engine))
    graph.invoke(inputs, {"configurable": {"thread_id": "t1"}})
    ```

    Channel values are stored once per (thread, namespace, channel, version), each payload next
    to its serializer type tag, so any `SerializerProtocol` (including `EncryptedSerializer`)
    round-trips. Besides the required methods it implements `delete_for_runs`, `copy_thread` and
    `prune`. Wrap the compiled graph in `DurableGraph` to have crashed runs resume by themselves.

    Args:
        engine: a `durable_core.Engine` (its database is used once it is launched).
        serde: the serializer for checkpoint bodies, channel values and writes
            (default: LangGraph's `JsonPlusSerializer`).
    """

    def __init__(self, engine: _HasDatabase | Any, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.engine = engine
        self._holder = _StoreHolder(engine)

    @property
    def store(self) -> CheckpointStore:
        """The storage object holding this saver's SQL (created on first use)."""
        return self._holder.get()

    # -- serialization -------------------------------------------------------------------------

    def _dump(self, value: Any, what: str) -> tuple[str, bytes]:
        try:
            return self.serde.dumps_typed(value)
        except Exception as error:
            raise TypeError(
                f"DurableCheckpointer cannot serialize {what} of type {type(value).__qualname__}: {error}. "
                "Store JSON-like values, pydantic models or dataclasses in the graph state, or pass a serde "
                "that handles this type (e.g. JsonPlusSerializer(pickle_fallback=True))."
            ) from error

    def _load(self, type_: str, data: bytes | None, what: str | Callable[[], str]) -> Any:
        if type_ == "null":
            return None
        try:
            return self.serde.loads_typed((type_, data if data is not None else b""))
        except Exception as error:
            if not isinstance(what, str):
                what = what()
            raise CheckpointDecodeError(
                f"DurableCheckpointer cannot decode {what} (serializer type {type_!r}): {error}. "
                "It was written by another serializer configuration (for example an EncryptedSerializer "
                "with another key) or by a newer LangGraph; use the same serde as the writer."
            ) from error

    def _prepare_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[CheckpointRecord, list[BlobRecord], RunnableConfig]:
        thread_id = thread_id_of(config)
        configurable = config.get("configurable") or {}
        checkpoint_ns = str(configurable.get("checkpoint_ns") or "")
        values = checkpoint["channel_values"]
        versions = checkpoint["channel_versions"]
        # Small values (scalars, short strings, small containers of them) ride in the checkpoint
        # row: cheaper than a row per version. Anything else, long strings included, is stored
        # once per version in a blob row, which the row references by (channel, version).
        inline: dict[str, Any] = {}
        refs: dict[str, Any] = {}
        for channel, value in values.items():
            if _inlinable(value):
                inline[channel] = value
            elif channel in versions:
                refs[channel] = versions[channel]
        blobs: list[BlobRecord] = []
        for channel, version in new_versions.items():
            # A version with no value (an emptied channel) needs no row: a missing blob reads as empty.
            if channel in values and channel not in inline:
                type_, data = self._dump(values[channel], f"channel {channel!r}")
                blobs.append(BlobRecord(channel, version_key(version), type_, data))
        # The id is the row's key column: not repeated in the body.
        body = {k: v for k, v in checkpoint.items() if k not in _NOT_IN_BODY}
        body["channel_values"] = inline
        body[_VERSIONS] = versions
        type_, data = self._dump(body, "the checkpoint")
        stored_metadata = get_serializable_checkpoint_metadata(config, metadata)
        try:
            # Strict JSON: NaN or Infinity would make every filtered listing of the database fail
            # (Postgres' jsonb and SQLite's json functions refuse them).
            metadata_json = json.dumps(stored_metadata, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Checkpoint metadata must be JSON-serializable (it is stored and filtered as JSON): {error}. "
                "Pass NaN or infinite numbers as strings, other objects as plain JSON values."
            ) from error
        run_id = stored_metadata.get("run_id")
        record = CheckpointRecord(
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint["id"],
            parent_checkpoint_id=configurable.get("checkpoint_id"),
            run_id=str(run_id) if run_id is not None else None,
            type=type_,
            checkpoint=data,
            versions=json.dumps(refs) if refs else "{}",
            metadata=metadata_json,
        )
        next_config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        return record, blobs, next_config

    def _prepare_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> tuple[str, str, str, list[WriteRecord], bool]:
        thread_id = thread_id_of(config)
        configurable = config.get("configurable") or {}
        checkpoint_id = configurable.get("checkpoint_id")
        if not checkpoint_id:
            raise ValueError(
                "put_writes needs config['configurable']['checkpoint_id'] (the checkpoint written to)."
            )
        records = [
            WriteRecord(
                task_id,
                task_path,
                WRITES_IDX_MAP.get(channel, idx),
                channel,
                *self._dump(value, f"a write to {channel!r}"),
            )
            for idx, (channel, value) in enumerate(writes)
        ]
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        return thread_id, str(configurable.get("checkpoint_ns") or ""), str(checkpoint_id), records, replace

    def _to_tuple(
        self, loaded: LoadedCheckpoint, versions_cache: dict[str, str] | None = None
    ) -> CheckpointTuple:
        """The tuple LangGraph expects; `versions_cache` shares unpacked versions across a listing
        (neighbouring checkpoints mostly hold the same versions).

        Hot in listings: payloads go straight to the serializer, and only when one fails is the
        item decoded again through `_load`, which raises the explained error.
        """
        record, blobs, writes, refs = loaded
        thread_id, checkpoint_ns, checkpoint_id, parent_id, _run, type_, data, _refs, meta = record
        loads = self.serde.loads_typed
        body: Any  # a Checkpoint once complete
        try:
            body = loads((type_, data))
        except Exception:
            body = self._load(type_, data, lambda: f"checkpoint {checkpoint_id!r} of thread {thread_id!r}")
        if blobs:
            values: dict[str, Any] = body.get("channel_values") or {}
            for channel, blob in blobs.items():
                if blob.type != "empty":
                    values[channel] = self._load(blob.type, blob.blob, f"channel {channel!r}")
            body["channel_values"] = values
        if "id" not in body:
            body["id"] = checkpoint_id
        versions = body.pop(_VERSIONS, None)
        if versions is not None:
            body["channel_versions"] = versions
        else:
            packed = body.get("channel_versions")
            if packed is None:  # a row written before versions moved into the body
                body["channel_versions"] = dict(refs)
            else:  # a body written with stripped versions
                body["channel_versions"] = _unpack_versions(
                    packed, {} if versions_cache is None else versions_cache
                )
        pending: list[tuple[str, str, Any]] = []
        if writes:
            try:
                pending = [
                    (task_id, channel, None if kind == "null" else loads((kind, blob or b"")))
                    for task_id, _path, _idx, channel, kind, blob in writes
                ]
            except Exception:
                pending = [
                    (w.task_id, w.channel, self._load(w.type, w.blob, "a pending write")) for w in writes
                ]
        config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint_id,
            }
        }
        parent_config: RunnableConfig | None = None
        if parent_id:
            parent_config = {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": checkpoint_ns,
                    "checkpoint_id": parent_id,
                }
            }
        metadata: Any = _json_loads(meta)
        return CheckpointTuple(config, body, metadata, parent_config, pending)

    def _to_tuples(self, loaded: list[LoadedCheckpoint]) -> list[CheckpointTuple]:
        versions_cache: dict[str, str] = {}
        return [self._to_tuple(item, versions_cache) for item in loaded]

    # -- sync API ------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id = thread_id_of(config)
        checkpoint_ns = str((config.get("configurable") or {}).get("checkpoint_ns") or "")
        loaded = self.store.get(thread_id, checkpoint_ns, get_checkpoint_id(config))
        return None if loaded is None else self._to_tuple(loaded)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return iter(self._to_tuples(self._list_loaded(config, filter, before, limit)))

    def _list_loaded(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> list[LoadedCheckpoint]:
        configurable = (config or {}).get("configurable") or {}
        thread_id = configurable.get("thread_id")
        checkpoint_ns = configurable.get("checkpoint_ns")
        accept: Callable[[CheckpointRecord], bool] | None = None
        narrow: dict[str, Any] = {}
        if filter:
            accept = _metadata_matcher(dict(filter))
            # Scalars also narrow the rows in SQL; `accept` keeps the exact semantics.
            narrow = {k: v for k, v in filter.items() if isinstance(v, str | float) or _is_int64(v)}
        return self.store.list(
            thread_id=None if thread_id is None else str(thread_id),
            checkpoint_ns=None if checkpoint_ns is None else str(checkpoint_ns),
            checkpoint_id=configurable.get("checkpoint_id"),
            before=get_checkpoint_id(before) if before else None,
            limit=limit,
            accept=accept,
            metadata_equals=narrow,
        )

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        record, blobs, next_config = self._prepare_put(config, checkpoint, metadata, new_versions)
        self.store.put(record, blobs)
        return next_config

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id, checkpoint_ns, checkpoint_id, records, replace = self._prepare_writes(
            config, writes, task_id, task_path
        )
        self.store.put_writes(thread_id, checkpoint_ns, checkpoint_id, records, replace=replace)

    def delete_thread(self, thread_id: str) -> None:
        self.store.delete_threads([str(thread_id)])

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.store.delete_for_runs([str(r) for r in run_ids])

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        if source_thread_id == target_thread_id:
            raise ValueError("copy_thread needs two different thread ids.")
        self.store.copy_thread(str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if isinstance(thread_ids, str):
            raise TypeError("prune takes a sequence of thread ids, not a single string: prune([thread_id]).")
        if strategy not in _PRUNE_STRATEGIES:
            raise ValueError(
                f"Unknown prune strategy {strategy!r}: use one of {', '.join(_PRUNE_STRATEGIES)}."
            )
        ids = [str(t) for t in thread_ids]
        if strategy == "delete":
            self.store.delete_threads(ids)
            return
        for thread_id in ids:
            self.store.prune_keep_latest(thread_id, refuse=_uses_delta_channel)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The next version of a channel: `<letter><number>.<random hex>`, e.g. `a7.3f09c2d41b6e`.

        The letter counts the number's digits (`a` one, `b` two, ...), so string order is number
        order, as LangGraph needs (`max()` of a checkpoint's versions), in 15 characters where the
        stock form takes about 50. Letters sort after digits: a version continuing a channel
        written in LangGraph's zero-padded form is greater than it. The random part keeps
        versions unique per channel across forks (update_state on an old checkpoint), so a fork's
        blob can never shadow the original branch's (langgraphjs#1812).
        """
        if current is None:
            number = 1
        elif type(current) is str:  # ours (`b12.…`) or LangGraph's zero-padded form
            head = current.partition(".")[0]
            number = int(head[1:] if head[:1].isalpha() else head) + 1
        else:  # int versions (LangGraph's default)
            number = int(current) + 1
        digits = str(number)
        return f"{chr(96 + len(digits))}{digits}.{random.getrandbits(48):012x}"

    # -- async API -----------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(
            lambda: self._to_tuples(self._list_loaded(config, filter, before, limit))
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        record, blobs, next_config = self._prepare_put(config, checkpoint, metadata, new_versions)
        await asyncio.to_thread(self.store.put, record, blobs)
        return next_config

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id, checkpoint_ns, checkpoint_id, records, replace = self._prepare_writes(
            config, writes, task_id, task_path
        )
        await asyncio.to_thread(
            lambda: self.store.put_writes(thread_id, checkpoint_ns, checkpoint_id, records, replace=replace)
        )

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, list(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if isinstance(thread_ids, str):
            raise TypeError("prune takes a sequence of thread ids, not a single string: prune([thread_id]).")
        await asyncio.to_thread(lambda: self.prune(list(thread_ids), strategy=strategy))


_SCALARS = (bool, int, float)
_INLINE_MAX_CHARS = 64
_INLINE_BUDGET = 160


def _inlinable(value: Any) -> bool:
    """Decided by the value alone, so every checkpoint holding one version agrees.

    Scalars, strings up to 64 characters, and lists, tuples and str-keyed dicts of those whose
    rough encoded size stays within a small budget (a counter, a short list of names, a small
    input dict): such values cost less inline in each checkpoint than as a row of their own.
    """
    kind = type(value)
    if value is None or kind in _SCALARS:
        return True
    if kind is str:
        return len(value) <= _INLINE_MAX_CHARS
    if kind is list or kind is tuple or kind is dict:
        return _inline_cost(value, _INLINE_BUDGET) >= 0
    return False


def _inline_cost(value: Any, budget: int) -> int:
    """`budget` minus the rough encoded size of `value`; negative once over (or not inlinable)."""
    kind = type(value)
    if value is None or kind is bool:
        return budget - 1
    if kind is int or kind is float:
        return budget - 9
    if kind is str:
        return budget - 2 - len(value) if len(value) <= _INLINE_MAX_CHARS else -1
    if kind is list or kind is tuple:
        budget -= 2
        for item in value:
            if budget < 0:
                return -1
            budget = _inline_cost(item, budget)
        return budget
    if kind is dict:
        budget -= 2
        for key, item in value.items():
            if budget < 0 or type(key) is not str or len(key) > _INLINE_MAX_CHARS:
                return -1
            budget = _inline_cost(item, budget - 2 - len(key))
        return budget
    return -1


def _unpack_versions(packed: dict[str, Any], cache: dict[str, str]) -> dict[str, Any]:
    """Versions of a body written with the zero padding stripped (a string is a stripped version,
    anything else a 1-item list); `cache` maps stripped strings to full ones across a listing."""
    get = cache.get
    return {
        channel: (get(version) or _unpack_one(version, cache)) if type(version) is str else version[0]
        for channel, version in packed.items()
    }


def _unpack_one(version: str, cache: dict[str, str]) -> str:
    full = cache[version] = _ZEROS[32 - version.index(".")] + version
    return full


_ZEROS = ["0" * n for n in range(33)]


def _is_int64(value: object) -> bool:
    """An int a database parameter can carry (a larger one is matched in Python only)."""
    return isinstance(value, int) and -(2**63) <= value < 2**63


def _metadata_matcher(wanted: dict[str, Any]) -> Callable[[CheckpointRecord], bool]:
    def accept(record: CheckpointRecord) -> bool:
        stored = _json_loads(record.metadata)
        # InMemorySaver semantics: exact equality on top-level keys; None also matches a missing key.
        return all(stored.get(key) == value for key, value in wanted.items())

    return accept


def _uses_delta_channel(record: CheckpointRecord) -> bool:
    return _DELTA_MARKER in record.metadata and _DELTA_MARKER in _json_loads(record.metadata)
