"""How the dashboard may be served: loopback by default, a token anywhere else (no browser needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dash_app import dashboard_server, http


def test_refuses_a_public_bind_without_a_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("durable")),
            "--database-url",
            f"sqlite:///{tmp_path / 'd.db'}",
            "dashboard",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "refusing to serve the dashboard on '0.0.0.0' without a token" in result.stderr


def test_loopback_without_a_token_rejects_foreign_hosts_and_forged_posts(tmp_path: Path) -> None:
    with dashboard_server(f"sqlite:///{tmp_path / 'd.db'}", token=None) as base:
        assert http("GET", f"{base}/workflows")[0] == 200
        status, body = http("GET", f"{base}/workflows", headers={"Host": "attacker.example:8765"})
        assert status == 403 and "not a loopback name" in body
        assert http("POST", f"{base}/workflows/x/cancel", data=b"csrf=guess")[0] == 403
