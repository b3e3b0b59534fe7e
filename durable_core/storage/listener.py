"""Postgres LISTEN: wake-ups from other processes (messages, events, streams, cancellations).

One dedicated connection outside the pool listens on channel ``durable_core``; each payload is
a waiter key (``msg:<workflow>:<topic>``, ``event:<workflow>:<key>``, ...). If the connection
drops, waits fall back to short polling until it is re-established.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ._database import NOTIFY_CHANNEL, Database

__all__ = ["Listener"]

log = logging.getLogger("durable_core.listener")
CHANNEL = NOTIFY_CHANNEL


class Listener:
    def __init__(self, db: Database, deliver: Callable[[str], None]) -> None:
        self.db = db
        self.deliver = deliver
        self.healthy = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="durable-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def _run(self) -> None:
        import psycopg

        url = self.db.sa_engine.url
        delay = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    host=url.host or "localhost",
                    port=url.port or 5432,
                    user=url.username,
                    password=url.password,
                    dbname=url.database,
                    autocommit=True,
                    connect_timeout=10,
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.healthy = True
                    delay = 0.1
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            self.deliver(notify.payload)
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("LISTEN connection lost (%s); polling until it is back", exc)
            self.healthy = False
            self._stop.wait(delay)
            delay = min(delay * 2, 5.0)
