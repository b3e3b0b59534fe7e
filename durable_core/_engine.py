"""`Engine`: configuration, launch and shutdown, and the management API.

One explicit object holds the configuration and the connections. Workflow code reaches the
launched engine through its context; code outside workflows through `Engine.current()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar, cast

from . import _comms, _management, _recovery, _starting
from ._budget import ModelCallsInFlight
from ._context import current_context
from ._handle import WorkflowHandle
from ._host import host_of, launched
from ._keys import QUEUE_PREFIX, wake_key, workflow_key
from ._outage import Interruptions
from ._queues import enqueue_by_name, start_dispatcher
from ._records import StepInfo, WorkflowStatus
from ._run import ActiveRuns, WorkflowRun
from ._serialization import JsonSerializer, Serializer
from ._usage import Budget, UsageTotals
from ._usage_report import raise_budget, usage_report
from ._waits import Waiters
from .errors import EngineNotLaunched, SerializationError
from .storage import (
    Database,
    ExecutorStore,
    MessageStore,
    StepStore,
    UsageStore,
    WorkflowStore,
    WriteWouldWait,
    migrate,
)
from .storage.listener import Listener
from .storage.queues import QueueStore

__all__ = ["Engine", "current_engine"]

T = TypeVar("T")
log = logging.getLogger("durable_core")


_instance_counter = itertools.count(1)


class Engine:
    """The durable execution engine of one process.

    Example:
        ```python
        engine = Engine("sqlite:///agents.db")
        engine.launch()          # migrate, heartbeat, resume unfinished workflows
        result = my_workflow(x)  # runs durably
        engine.shutdown()
        ```

    Args:
        database_url: explicit URL, else env ``DURABLE_DATABASE_URL``, else ``sqlite:///durable.db``.
        app_version: explicit, else env ``DURABLE_APP_VERSION``, else ``"default"``. Executors only
            recover workflows of their own version.
        executor_id: explicit, else env ``DURABLE_EXECUTOR_ID``, else ``"<hostname>:<pid>"``.
        serializer: defaults to readable JSON; ``PickleSerializer()`` is the opt-in for arbitrary objects.
        heartbeat_seconds: how often this executor renews its lease.
        lease_seconds: how long after its last heartbeat an executor's workflows may be claimed by
            others. An executor on the same host whose process is gone is claimed at once.
        sqlite_synchronous: ``"FULL"`` (default, power-loss safe) or ``"NORMAL"`` (faster).
        schema: the Postgres schema of the engine's tables.
        db_retry_seconds: how long a statement is retried while the database is unreachable.
        write_timeout: PostgreSQL: seconds one checkpoint write from an async workflow's event loop
            may take (lock waits included) before it is abandoned and retried as an outage, so a
            hung network or a held lock never stalls the loop for longer.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        app_version: str | None = None,
        executor_id: str | None = None,
        serializer: Serializer | None = None,
        heartbeat_seconds: float = 5.0,
        lease_seconds: float = 30.0,
        sqlite_synchronous: str = "FULL",
        schema: str = "durable",
        queues: Sequence[str] | None = None,
        db_retry_seconds: float = 120.0,
        write_timeout: float = 10.0,
    ) -> None:
        if not write_timeout > 0:
            raise ValueError("write_timeout must be a positive number of seconds")
        if heartbeat_seconds <= 0 or lease_seconds <= 0:
            raise ValueError("heartbeat_seconds and lease_seconds must be positive")
        if lease_seconds <= heartbeat_seconds:
            raise ValueError(
                "lease_seconds must be longer than heartbeat_seconds, or live executors lose their work"
            )
        self.database_url = database_url or os.environ.get("DURABLE_DATABASE_URL") or "sqlite:///durable.db"
        self.app_version = app_version or os.environ.get("DURABLE_APP_VERSION") or "default"
        number = next(_instance_counter)
        default_id = f"{socket.gethostname()}:{os.getpid()}" + ("" if number == 1 else f":{number}")
        self.executor_id = executor_id or os.environ.get("DURABLE_EXECUTOR_ID") or default_id
        self.serializer: Serializer = serializer or JsonSerializer()
        self._serializers: dict[str, Serializer] = {
            "json": JsonSerializer(),
            self.serializer.name: self.serializer,
        }
        self.heartbeat_seconds = heartbeat_seconds
        self.lease_seconds = lease_seconds
        self.sqlite_synchronous = sqlite_synchronous
        self.schema = schema
        self.queue_names = list(queues) if queues is not None else None
        self.db_retry_seconds = db_retry_seconds
        self.write_timeout = write_timeout
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.launched = False
        self.stopping = False
        self.is_client = False  # opened with connect(): heartbeats only while it runs workflows
        self._heartbeating = False
        self._heartbeat_lock = threading.Lock()
        self._model_calls = ModelCallsInFlight()
        self._db: Database | None = None
        self.workflows: WorkflowStore
        self.steps: StepStore
        self.executors: ExecutorStore
        self.messages: MessageStore
        self.queues: QueueStore
        self._dispatcher: Any = None
        self._listener: Listener | None = None
        self.waiters = Waiters()
        self.active = ActiveRuns(self.waiters)  # the workflow runs executing in this process
        self._interruptions = Interruptions(self, self._database_name)
        self._pool: ThreadPoolExecutor | None = None
        self._io_pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._background: set[Future[Any]] = set()
        self._services: list[Callable[[], None]] = []  # stop callbacks of background services

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def database(self) -> Database:
        if self._db is None:
            raise EngineNotLaunched("This Engine is not launched: call engine.launch() first.")
        return self._db

    def connect(self) -> Engine:
        """A client engine: migrate and open the database, but take over nobody's work.

        No recovery, no queue workers: for processes that inspect, enqueue, send or fork but must
        never take over other executors' work (the CLI, a web front end). Workflows started
        directly from a client engine still run in its process; from the first one on, the client
        heartbeats as an executor (advertising nothing it could run for others), so launched
        engines never judge it dead while it runs them.
        """
        return self.launch(_client=True)

    def launch(self, *, _client: bool = False) -> Engine:
        """Migrate the schema, start the heartbeat, resume this executor's unfinished workflows."""
        if self.launched:
            return self
        db = Database(
            self.database_url,
            schema=self.schema,
            sqlite_synchronous=self.sqlite_synchronous,
            retry_seconds=self.db_retry_seconds,
            write_timeout=self.write_timeout,
        )
        try:
            db.check_connection()
            migrate(db)
        except BaseException:
            db.dispose()
            raise
        self._db = db
        self.workflows = WorkflowStore(db)
        self.steps = StepStore(db)
        self.executors = ExecutorStore(db)
        self.messages = MessageStore(db)
        self.queues = QueueStore(db)
        self.usage_records = UsageStore(db)
        self.stopping = False
        self._pool = ThreadPoolExecutor(max_workers=512, thread_name_prefix="durable-wf")
        self._io_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="durable-io")
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="durable-loop", daemon=True)
        self._loop_thread.start()
        self.launched = True
        self.is_client = _client
        self._heartbeating = False
        launched.add(self)
        if _client:
            return self
        self._heartbeating = True
        if db.dialect == "postgresql":
            self._listener = Listener(db, self._deliver)
            self._listener.start()
            self.add_service(self._listener.stop)
        _recovery.heartbeat_once(self)
        _recovery.recover_own(self)
        _recovery.start_monitor(self)
        self._dispatcher = start_dispatcher(self)
        return self

    def shutdown(self, timeout_seconds: float = 10.0) -> None:
        """Stop background work. Workflows still running stop at their next step and stay PENDING,
        owned by this executor: a relaunch (or, after the lease, another executor) resumes them."""
        if not self.launched:
            return
        self.stopping = True  # running workflows stop at their next step; dispatchers claim nothing new
        self.waiters.wake_all()
        for future in list(self._background):
            with contextlib.suppress(BaseException):
                future.result(timeout=timeout_seconds)
        for stop in reversed(self._services):  # the dispatcher releases queue work still claimed
            try:
                stop()
            except Exception:  # pragma: no cover - best effort
                log.exception("stopping a background service failed")
        self._services.clear()
        launched.remove(self)
        assert self._pool is not None and self._io_pool is not None and self._loop is not None
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._loop_thread is not None:
            self._loop_thread.join(timeout=timeout_seconds)
        self._io_pool.shutdown(wait=True)
        self.launched = False
        if self._db is not None:
            self._db.dispose()

    def __enter__(self) -> Engine:
        return self.launch()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    async def __aenter__(self) -> Engine:
        return self.launch()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()

    @staticmethod
    def current() -> Engine:
        """The most recently launched engine of this process."""
        return cast(Engine, launched.current())

    @property
    def poll_interval(self) -> float:
        """How often a wait re-checks the database for work from other processes."""
        if self._listener is not None and self._listener.healthy:
            return 1.0
        return 0.02

    @property
    def cancel_poll_interval(self) -> float:
        return 1.0 if self._listener is not None and self._listener.healthy else 0.25

    def _deliver(self, key: str) -> None:
        self.waiters.notify(key)
        if key.startswith(QUEUE_PREFIX) and self._dispatcher is not None:
            self._dispatcher.wake.set()

    def wake_queues(self, queue_name: str, *, remote: bool = True) -> None:
        """Tell dispatchers (here and, with `remote`, in other processes) that queue work arrived."""
        if self._dispatcher is not None:
            self._dispatcher.wake.set()
        if remote:
            self.queues.notify(queue_name)

    def notify_remote(self, kind: str, workflow_id: str) -> None:
        if self._db is not None and self._db.dialect == "postgresql":
            self.messages.notify([workflow_key(kind, workflow_id), wake_key(workflow_id)])

    def _database_name(self) -> str:
        return self._db.safe_url if self._db is not None else self.database_url

    def storage_interrupted(self, ctx: WorkflowRun) -> None:
        """A body stopped because the database was unreachable (or its disk full) for longer than
        `db_retry_seconds`: nothing is recorded as its outcome, and the heartbeat loop resumes it
        in this process once storage answers again (an outage is never a terminal outcome)."""
        self._interruptions.stopped(ctx)

    def resume_interrupted(self) -> list[WorkflowHandle[Any]]:
        """Resume the workflows that stopped on a storage outage (called once storage answers)."""
        return self._interruptions.resume()

    # -- usage and budgets ---------------------------------------------------------------

    def model_call_started(self, budget_owner: str | None) -> Callable[[], None]:
        """Count a live model call against its budget until it is recorded; returns the release."""
        return self._model_calls.started(budget_owner)

    def model_calls_in_flight(self, budget_owner: str) -> int:
        return self._model_calls.count(budget_owner)

    def usage(
        self,
        workflow_ids: Sequence[str] | None = None,
        name: str | Sequence[str] | None = None,
        since: datetime | int | None = None,
        group_by: str = "workflow",
    ) -> dict[str, UsageTotals]:
        """What model calls consumed, from recorded steps (a replay never counts twice).

        Trees: each workflow counts with its descendants. Without `workflow_ids`, every top-level
        workflow (optionally only those named `name`). `since`: steps completed since then.
        `group_by`: ``"workflow"`` (the top workflow's id), ``"name"`` (its name), ``"model"`` or
        ``"day"`` (UTC date of the step, ``YYYY-MM-DD``).
        """
        return usage_report(self, workflow_ids=workflow_ids, name=name, since=since, group_by=group_by)

    def raise_budget(
        self,
        workflow_id: str,
        *,
        max_cost_usd: float | None = None,
        max_tokens: int | None = None,
        max_model_calls: int | None = None,
    ) -> Budget:
        """Raise the limits of the budget governing `workflow_id` (set on it or inherited); a run
        paused by that budget continues once it allows a model call again. Returns the new budget."""
        return raise_budget(self, workflow_id, max_cost_usd, max_tokens, max_model_calls)

    def ensure_executor(self) -> None:
        """A process that runs workflow bodies is an executor with a heartbeat (client engines too)."""
        if self._heartbeating:
            return
        with self._heartbeat_lock:
            if self._heartbeating or not self.launched:
                return
            _recovery.heartbeat_once(self, advertise=False)
            _recovery.start_monitor(self, takeover=False)
            self._heartbeating = True

    def add_service(self, stop: Callable[[], None]) -> None:
        self._services.append(stop)

    # -- execution plumbing --------------------------------------------------------------

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run a blocking callable on a workflow thread."""
        assert self._pool is not None
        future = self._pool.submit(fn)
        self._track(future)
        return future

    def submit_coroutine(self, coro: Any) -> Future[Any]:
        """Run a coroutine on the engine's event loop thread."""
        assert self._loop is not None
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        self._track(future)
        return future

    def _track(self, future: Future[Any]) -> None:
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    async def run_io(self, fn: Callable[[], T]) -> T:
        """Run blocking database work off the event loop."""
        loop = asyncio.get_running_loop()
        pool = self._io_pool
        if pool is None:
            raise EngineNotLaunched("This Engine is not launched: call engine.launch() first.")
        return await loop.run_in_executor(pool, fn)

    async def run_write(self, fn: Callable[[], T]) -> T:
        """Run a workflow's checkpoint write (a step, its start or finish) from its event loop.

        On PostgreSQL over the loop's own connection; on SQLite inline when the workflow runs
        alone and the write lock is free (`Database.write_on_loop`). Otherwise, or when the write
        would wait, it runs on an IO thread like any other database work.
        """
        db = self._db
        if self.launched and db is not None:
            try:
                return await db.write_on_loop(fn, alone=len(self.active) <= 1)
            except WriteWouldWait:
                pass
        return await self.run_io(fn)

    def serializer_for(self, name: str) -> Serializer:
        try:
            return self._serializers[name]
        except KeyError:
            if name == "pickle":
                raise SerializationError(
                    "This row was written with pickle; reading it needs Engine(serializer=PickleSerializer())."
                ) from None
            raise SerializationError(f"Unknown serialization {name!r} in the database.") from None

    # -- starting workflows --------------------------------------------------------------

    def start_workflow(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Start a workflow in the background; return once its row exists."""
        return _starting.start_background(self, fn, args, kwargs)

    async def start_workflow_async(
        self, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> WorkflowHandle[Any]:
        return await _starting.start_background_async(self, fn, args, kwargs)

    def retrieve_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        return _management.retrieve(self, workflow_id)

    async def retrieve_workflow_async(self, workflow_id: str) -> WorkflowHandle[Any]:
        return await self.run_io(lambda: self.retrieve_workflow(workflow_id))

    # -- management ----------------------------------------------------------------------

    def list_workflows(
        self,
        *,
        status: str | Sequence[str] | None = None,
        name: str | Sequence[str] | None = None,
        queue_name: str | Sequence[str] | None = None,
        workflow_ids: Sequence[str] | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        waiting: bool | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[WorkflowStatus]:
        """Workflows matching every given filter, oldest first unless `newest_first`.

        `waiting=True` lists exactly the workflows blocked in recv, sleep or get_event now.
        Times are datetimes or epoch milliseconds.
        """
        return _management.list_workflows(
            self,
            status=status,
            name=name,
            queue_name=queue_name,
            workflow_ids=workflow_ids,
            created_after=created_after,
            created_before=created_before,
            waiting=waiting,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )

    async def list_workflows_async(self, **filters: Any) -> list[WorkflowStatus]:
        return await self.run_io(lambda: self.list_workflows(**filters))

    def count_workflows(
        self,
        *,
        status: str | None = None,
        queue_name: str | None = None,
        name: str | None = None,
        parent_workflow_id: str | None = None,
    ) -> int:
        """How many workflows match (cheap: one COUNT, for progress bars and dashboards)."""
        return self.workflows.count(
            status=status, queue_name=queue_name, name=name, parent_workflow_id=parent_workflow_id
        )

    async def count_workflows_async(self, **filters: Any) -> int:
        return await self.run_io(lambda: self.count_workflows(**filters))

    def list_steps(self, workflow_id: str) -> list[StepInfo]:
        return _management.list_steps(self, workflow_id)

    async def list_steps_async(self, workflow_id: str) -> list[StepInfo]:
        return await self.run_io(lambda: self.list_steps(workflow_id))

    def get_workflow_status(self, workflow_id: str) -> WorkflowStatus:
        return _management.get_status(self, workflow_id)

    async def get_workflow_status_async(self, workflow_id: str) -> WorkflowStatus:
        return await self.run_io(lambda: self.get_workflow_status(workflow_id))

    def cancel_workflow(self, workflow_id: str) -> None:
        """Cancel a workflow and its unfinished children; the body stops at its next step."""
        _management.cancel(self, workflow_id)

    async def cancel_workflow_async(self, workflow_id: str) -> None:
        await self.run_io(lambda: self.cancel_workflow(workflow_id))

    def resume_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        """Run a cancelled, parked, stranded or failed workflow again from its last completed step.

        A workflow in ERROR runs again from the step that failed (its recorded error is dropped; every
        earlier step replays from its record), so a fixed bug can be resumed past. SUCCESS: a no-op.
        """
        return _management.resume(self, workflow_id)

    async def resume_workflow_async(self, workflow_id: str) -> WorkflowHandle[Any]:
        return await self.run_io(lambda: self.resume_workflow(workflow_id))

    def fork_workflow(
        self,
        workflow_id: str,
        start_step: int,
        *,
        new_workflow_id: str | None = None,
        app_version: str | None = None,
        name: str | None = None,
    ) -> WorkflowHandle[Any]:
        """A new workflow with `workflow_id`'s inputs and its steps below `start_step`; steps from there run live.

        `name`: run the fork under another workflow name (the function was renamed since).
        """
        return _management.fork(
            self, workflow_id, start_step, new_workflow_id=new_workflow_id, app_version=app_version, name=name
        )

    async def fork_workflow_async(
        self,
        workflow_id: str,
        start_step: int,
        *,
        new_workflow_id: str | None = None,
        app_version: str | None = None,
        name: str | None = None,
    ) -> WorkflowHandle[Any]:
        return await self.run_io(
            lambda: self.fork_workflow(
                workflow_id, start_step, new_workflow_id=new_workflow_id, app_version=app_version, name=name
            )
        )

    def enqueue(self, queue_name: str, workflow_name: str, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Queue a workflow by name, from a process that need not import its code (a web front end).

        Raises `DurableError` when no engine of this database has registered that workflow or queue.
        """
        return enqueue_by_name(self, queue_name, workflow_name, args, kwargs)

    async def enqueue_async(
        self, queue_name: str, workflow_name: str, *args: Any, **kwargs: Any
    ) -> WorkflowHandle[Any]:
        return await self.run_io(lambda: self.enqueue(queue_name, workflow_name, *args, **kwargs))

    def recover(self, executor_ids: Sequence[str] | None = None) -> list[WorkflowHandle[Any]]:
        """Claim and resume the PENDING workflows of the given executors (default: this one)."""
        return _recovery.recover(self, executor_ids)

    async def recover_async(self, executor_ids: Sequence[str] | None = None) -> list[WorkflowHandle[Any]]:
        return await self.run_io(lambda: self.recover(executor_ids))

    # -- communication -------------------------------------------------------------------

    def send(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Send a message to a workflow (for example a human's answer to an agent waiting in `recv`).

        With an `idempotency_key`, sending the same key to the same workflow again is a no-op.
        """
        _comms.engine_send(self, destination_id, message, topic, idempotency_key)

    async def send_async(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        await self.run_io(lambda: _comms.engine_send(self, destination_id, message, topic, idempotency_key))

    def get_event(self, workflow_id: str, key: str, timeout_seconds: float | None = 60.0) -> Any:
        """A workflow's event value, waiting up to `timeout_seconds` for it (None if never set)."""
        return _comms.engine_get_event(self, workflow_id, key, timeout_seconds)

    async def get_event_async(self, workflow_id: str, key: str, timeout_seconds: float | None = 60.0) -> Any:
        return await _comms.engine_get_event_async(self, workflow_id, key, timeout_seconds)

    def read_stream(self, workflow_id: str, key: str) -> Iterator[Any]:
        """Yield a workflow's stream values in order until it is closed (or the workflow ends)."""
        return _comms.engine_read_stream(self, workflow_id, key)

    def read_stream_async(self, workflow_id: str, key: str) -> AsyncIterator[Any]:
        return _comms.engine_read_stream_async(self, workflow_id, key)

    def copy_events_for_fork(self, source_id: str, target_id: str, start_step: int) -> None:
        self.messages.copy_events_for_fork(source_id, target_id, start_step)


def current_engine() -> Engine:
    """The engine running the current workflow, else the most recently launched one."""
    ctx = current_context()
    if ctx is not None:
        return cast(Engine, host_of(ctx))
    return Engine.current()
