"""What the services (starting, recovery, queues, comms, management, ...) see of the engine.

`EngineHost` extends the runtime's `RunHost` with the configuration and the plumbing the services
share; `Engine` (the facade, one layer up) implements it. The services never import `Engine`: they
receive the host, or find it with `resolve_host()` (the running workflow's engine, else the most
recently launched one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, cast

from ._context import current_context
from ._records import WorkflowStatus
from ._run import RunHost, WorkflowRun
from .errors import EngineNotLaunched
from .storage import Database, ExecutorStore
from .storage.queues import QueueStore

__all__ = ["EngineHost", "host_of", "launched", "resolve_host"]


class EngineHost(RunHost, Protocol):
    """The engine as the services use it: configuration, stores, background plumbing."""

    @property
    def app_version(self) -> str: ...
    @property
    def hostname(self) -> str: ...
    @property
    def pid(self) -> int: ...
    @property
    def launched(self) -> bool: ...
    @property
    def is_client(self) -> bool: ...
    @property
    def queue_names(self) -> list[str] | None: ...
    @property
    def heartbeat_seconds(self) -> float: ...
    @property
    def lease_seconds(self) -> float: ...
    @property
    def database(self) -> Database: ...
    @property
    def executors(self) -> ExecutorStore: ...
    @property
    def queues(self) -> QueueStore: ...

    def ensure_executor(self) -> None: ...
    def add_service(self, stop: Callable[[], None], /) -> None: ...
    def submit(self, fn: Callable[[], Any], /) -> Future[Any]: ...
    def submit_coroutine(self, coro: Coroutine[Any, Any, Any], /) -> Future[Any]: ...
    def wake_queues(self, queue_name: str, *, remote: bool = True) -> None: ...
    def resume_interrupted(self) -> Sequence[Any]: ...
    def get_workflow_status(self, workflow_id: str, /) -> WorkflowStatus: ...
    def get_event(self, workflow_id: str, key: str, timeout_seconds: float | None = 60.0) -> Any: ...
    async def get_event_async(
        self, workflow_id: str, key: str, timeout_seconds: float | None = 60.0
    ) -> Any: ...
    def send(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None: ...
    async def send_async(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None: ...


class _Launched:
    """The launched engines of this process, most recent last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: list[EngineHost] = []

    def add(self, engine: EngineHost) -> None:
        with self._lock:
            self._engines.append(engine)

    def remove(self, engine: EngineHost) -> None:
        with self._lock:
            if engine in self._engines:
                self._engines.remove(engine)

    def current(self) -> EngineHost:
        with self._lock:
            if not self._engines:
                raise EngineNotLaunched()
            return self._engines[-1]


launched = _Launched()


def host_of(run: WorkflowRun) -> EngineHost:
    """The engine running `run` (a run's host is always a full engine; the runtime sees less of it)."""
    return cast(EngineHost, run.engine)


def resolve_host() -> EngineHost:
    """The engine running the current workflow, else the most recently launched one."""
    ctx = current_context()
    if ctx is not None:
        return host_of(ctx)
    return launched.current()
