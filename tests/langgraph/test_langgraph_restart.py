"""The checkpointer and DurableGraph across a real PostgreSQL server restart (a private cluster
started for the test, never the shared server)."""

from __future__ import annotations

import threading
import time
from typing import Any

from durable_langgraph import DurableCheckpointer, DurableGraph
from lg_support import FRESH, cfg, chain_builder

from durable_core import Engine


def test_graph_runs_across_a_server_restart(private_postgres: Any) -> None:
    engine = Engine(private_postgres.url, heartbeat_seconds=0.5, lease_seconds=5.0).launch()
    try:
        _run_across_restart(engine, DurableCheckpointer(engine), private_postgres)
    finally:
        engine.shutdown()


def _run_across_restart(engine: Engine, saver: DurableCheckpointer, server: Any) -> None:
    def slow(_name: str) -> None:
        time.sleep(0.05)

    durable = DurableGraph(chain_builder(40, on_node=slow).compile(checkpointer=saver), name="restart-chain")
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(out=durable.invoke(FRESH, cfg("restart-thread"))))
    runner.start()
    time.sleep(0.5)
    server.restart()
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert result["out"]["count"] == 40 and result["out"]["items"] == [f"n{i}" for i in range(1, 41)]
    history = list(durable.get_state_history(cfg("restart-thread")))
    assert history[0].values["count"] == 40
    # every step checkpoint survived: one per node plus the input checkpoint
    assert len(history) >= 41
    runs = engine.list_workflows(name=durable.workflow_name)
    assert [r.status for r in runs] == ["SUCCESS"]
