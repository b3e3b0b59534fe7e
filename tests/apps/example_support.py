"""Helpers for the example tests: run an example as a newcomer would (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_env(**extra: str) -> dict[str, str]:
    """The environment of an example subprocess: the repository on the path, no leaked database URL."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DURABLE_DATABASE_URL", "DURABLE_CRASH_BEFORE_STEP")
    }
    root = str(EXAMPLES.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, str(EXAMPLES.parent / "adapters"), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def run_example(
    script: Path, *args: str, timeout: float = 90, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an example script to completion in its own process, capturing its output."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=example_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
