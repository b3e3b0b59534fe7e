"""The checkpointer and DurableGraph across a real PostgreSQL server restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from durable_langgraph import DurableCheckpointer, DurableGraph
from lg_support import FRESH, cfg, chain_builder

from durable_core import Engine

pytestmark = pytest.mark.backends("postgres")


def _cluster() -> list[str] | None:
    clusters = Path("/etc/postgresql")
    if not shutil.which("pg_ctlcluster") or not clusters.is_dir() or os.geteuid() != 0:
        return None
    return [sorted(p.name for p in clusters.iterdir())[0], "main"]


def test_graph_runs_across_a_server_restart(engine: Engine, saver: DurableCheckpointer) -> None:
    cluster = _cluster()
    if cluster is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs pg_ctlcluster (run as root) for the server-restart test")
        pytest.skip("needs pg_ctlcluster and root to restart the local PostgreSQL server")

    def slow(_name: str) -> None:
        time.sleep(0.05)

    durable = DurableGraph(chain_builder(40, on_node=slow).compile(checkpointer=saver), name="restart-chain")
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(out=durable.invoke(FRESH, cfg("restart-thread"))))
    runner.start()
    time.sleep(0.5)
    try:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart"], check=True, timeout=120
        )
    finally:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "start"], timeout=120)
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert result["out"]["count"] == 40 and result["out"]["items"] == [f"n{i}" for i in range(1, 41)]
    history = list(durable.get_state_history(cfg("restart-thread")))
    assert history[0].values["count"] == 40
    # every step checkpoint survived: one per node plus the input checkpoint
    assert len(history) >= 41
    runs = engine.list_workflows(name=durable.workflow_name)
    assert [r.status for r in runs] == ["SUCCESS"]
