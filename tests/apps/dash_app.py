"""Workflows, a dashboard server and a headless Chromium for the dashboard tests.

The dashboard runs as `durable dashboard` (the real console script) in a subprocess, which
has no workflow code; the test process holds an engine that has it.
"""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durable_core import recv, step, workflow

BAD_PROMPT = "bad prompt"
GOOD_PROMPT = "Answer in one sentence."
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Settings:
    prompt: str = BAD_PROMPT


SETTINGS = Settings()
CALLS: collections.Counter[str] = collections.Counter()


@step(name="dash_test.search")
def search(question: str) -> list[dict[str, Any]]:
    CALLS["search"] += 1
    return [{"title": f"Result {i} for {question}", "score": round(1 - i / 10, 2)} for i in range(3)]


@step(name="dash_test.llm")
def llm(prompt: str, results: list[dict[str, Any]]) -> str:
    CALLS["llm"] += 1
    if prompt == BAD_PROMPT:
        raise ValueError(f"the model refused the prompt {prompt!r}")
    return f"{results[0]['title']} is the best match."


@step(name="dash_test.save")
def save(answer: str) -> dict[str, Any]:
    CALLS["save"] += 1
    return {"saved": True, "answer": answer}


@workflow(name="dash_test.agent")
def agent(question: str) -> dict[str, Any]:
    results = search(question)
    answer = llm(SETTINGS.prompt, results)
    return save(answer)


@workflow(name="dash_test.approval")
def approval(action: str) -> dict[str, Any]:
    answer = recv(topic="approval", timeout_seconds=900)
    return {"action": action, "answer": answer}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(
    method: str, url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """A plain HTTP request without cookies (status, body); errors are returned, not raised."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextmanager
def dashboard_server(database_url: str, *, token: str | None) -> Generator[str]:
    """`durable dashboard` on a free loopback port; yields its base URL once it answers."""
    port = free_port()
    args = [
        str(Path(sys.executable).with_name("durable")),
        "--database-url",
        database_url,
        "dashboard",
        "--port",
        str(port),
    ]
    if token:
        args += ["--token", token]
    env = {
        k: v for k, v in os.environ.items() if k not in ("DURABLE_DATABASE_URL", "DURABLE_DASHBOARD_TOKEN")
    }
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"the dashboard exited with {proc.returncode}: "
                    f"{proc.stdout.read() if proc.stdout else ''}"
                )
            try:
                status, _ = http("GET", f"{base}/workflows", headers={"X-Durable-Token": token or ""})
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the dashboard did not answer within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
