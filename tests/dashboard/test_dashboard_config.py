"""How the dashboard may be served: loopback by default, a token anywhere else (no browser needed)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from dash_app import dashboard_server, free_port, http

from durable_core import Engine
from durable_core._inspection import DASHBOARD_PORT

INBOX_EXAMPLE_PORT = 8765  # examples/agent_inbox/inbox.py serves its page here


def _database(tmp_path: Path) -> str:
    """An existing (empty) database: the dashboard never creates one."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    Engine(url).connect().shutdown()
    return url


def _durable(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("durable")), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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
    with dashboard_server(_database(tmp_path), token=None) as base:
        assert http("GET", f"{base}/workflows")[0] == 200
        status, body = http("GET", f"{base}/workflows", headers={"Host": "attacker.example:8765"})
        assert status == 403 and "not a loopback name" in body
        assert http("POST", f"{base}/workflows/x/cancel", data=b"csrf=guess")[0] == 403


def test_the_default_port_is_not_the_inbox_example_port() -> None:
    assert DASHBOARD_PORT != INBOX_EXAMPLE_PORT
    assert f"default {DASHBOARD_PORT}" in _durable("dashboard", "--help").stdout


def test_a_port_in_use_is_a_one_line_error_before_anything_claims_to_serve(tmp_path: Path) -> None:
    url = _database(tmp_path)
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        started = time.monotonic()
        result = _durable("dashboard", "--database-url", url, "--port", str(port))
    assert result.returncode == 2
    assert result.stdout == ""  # nothing claimed to be serving
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: port {port} on 127.0.0.1 is already in use (another dashboard or program); "
        "choose another with --port N (--port 0 picks a free one)"
    ]
    assert time.monotonic() - started < 30


def test_a_missing_database_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    result = _durable("dashboard", "--database-url", f"sqlite:///{tmp_path / 'typo.db'}", "--port", "0")
    assert result.returncode == 1
    assert "no database exists at" in result.stderr and result.stdout == ""
    assert not (tmp_path / "typo.db").exists()
