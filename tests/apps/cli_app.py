"""Workflows that the CLI and dashboard tests inspect and repair.

`SETTINGS.prompt` is the module-level setting of the debugging story: with the bad prompt
the model step fails; the user fixes the setting and forks from that step.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durable_core import recv, sleep, step, workflow

BAD_PROMPT = "bad prompt"
GOOD_PROMPT = "Summarize the documents in three bullet points."
HUGE_SIZE = 20_000


@dataclass
class Settings:
    prompt: str = BAD_PROMPT


SETTINGS = Settings()
CALLS: collections.Counter[str] = collections.Counter()


@step(name="cli_test.fetch_documents")
def fetch_documents(topic: str) -> dict[str, Any]:
    CALLS["fetch_documents"] += 1
    return {"topic": topic, "documents": [f"{topic} doc {i}" for i in range(3)]}


@step(name="cli_test.ask_model")
def ask_model(prompt: str, documents: dict[str, Any]) -> str:
    CALLS["ask_model"] += 1
    if prompt == BAD_PROMPT:
        raise ValueError(f"the model refused the prompt {prompt!r}")
    return f"summary of {len(documents['documents'])} documents about {documents['topic']}"


@step(name="cli_test.publish")
def publish(summary: str) -> str:
    CALLS["publish"] += 1
    return f"published: {summary}"


@workflow(name="cli_test.research")
def research(topic: str) -> str:
    documents = fetch_documents(topic)
    summary = ask_model(SETTINGS.prompt, documents)
    return publish(summary)


@step(name="cli_test.huge")
def huge_step() -> str:
    return "x" * HUGE_SIZE


@workflow(name="cli_test.child")
def child(n: int) -> int:
    return n * 2


@workflow(name="cli_test.parent")
def parent(n: int) -> dict[str, Any]:
    text = huge_step()
    doubled = child(n)
    return {"doubled": doubled, "size": len(text)}


@workflow(name="cli_test.approval")
def approval(request: str) -> dict[str, Any]:
    answer = recv(topic="approval", timeout_seconds=600)
    return {"request": request, "answer": answer}


@workflow(name="cli_test.napper")
def napper() -> str:
    sleep(600)
    return "rested"


def durable_bin() -> str:
    """The installed console script (the real entry point)."""
    script = Path(sys.executable).with_name("durable")
    if not script.exists():
        raise RuntimeError(
            f"{script} is missing: install the project (pip install -e . --no-deps) so the "
            f"`durable` script exists"
        )
    return str(script)


def run_cli(database_url: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `durable --database-url URL ARGS...` in a subprocess; wide terminal so tables do not wrap."""
    env = {**os.environ, "COLUMNS": "220", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("DURABLE_DATABASE_URL", None)
    return subprocess.run(
        [durable_bin(), "--database-url", database_url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def run_cli_many(database_url: str, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run several read-only CLI commands at once (each is its own process); results in order."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda args: run_cli(database_url, *args), commands))
