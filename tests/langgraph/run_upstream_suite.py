"""Run LangGraph's own graph-level test suite against DurableCheckpointer (optional, not collected by pytest).

LangGraph's tests (`libs/langgraph/tests`, shipped in the sdist) parametrize `sync_checkpointer` and
`async_checkpointer` over their savers. This script downloads the sdist matching the installed
langgraph with pip, swaps those fixtures for InMemorySaver and DurableCheckpointer (SQLite; also
`durable_aes`, an EncryptedSerializer), and runs the checkpointer-heavy files. The bar: DurableCheckpointer
fails exactly the tests InMemorySaver fails. Last run (langgraph 1.2.24, `--params durable,durable_aes`):
1048 passed, 0 failed.

    python tests/langgraph/run_upstream_suite.py                   # memory + durable
    python tests/langgraph/run_upstream_suite.py --params durable_aes
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    "test_pregel.py",
    "test_pregel_async.py",
    "test_time_travel.py",
    "test_time_travel_async.py",
    "test_subgraph_persistence.py",
    "test_subgraph_persistence_async.py",
    "test_interruption.py",
    "test_checkpoint_migration.py",
    "test_large_cases.py",
    "test_large_cases_async.py",
]
TEST_DEPENDENCIES = ["pytest-mock", "syrupy", "redis"]

FIXTURES = """

# --- durable-agents: the checkpointer fixtures, swapped for InMemorySaver and DurableCheckpointer ---
import sys as _sys
import tempfile as _tempfile
from contextlib import contextmanager as _cm

_sys.path[:0] = [{root!r}, {adapters!r}]


@_cm
def _durable_saver(kind):
    from durable_core.storage import Database
    from durable_core.storage.checkpoints import migrate_checkpoints
    from durable_langgraph import DurableCheckpointer
    from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

    class _Xor:
        def encrypt(self, plaintext):
            return "xor", bytes(b ^ 0x5A for b in plaintext)

        def decrypt(self, name, ciphertext):
            return bytes(b ^ 0x5A for b in ciphertext)

    with _tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{{tmp}}/lg.db")
        with db.write() as conn:
            migrate_checkpoints(conn)
        serde = EncryptedSerializer(_Xor()) if kind == "durable_aes" else None
        try:
            yield DurableCheckpointer(db, serde=serde)
        finally:
            db.dispose()


_PARAMS = os.environ["DURABLE_PARAMS"].split(",")


@pytest.fixture(scope="function", params=_PARAMS)
def sync_checkpointer(request):
    if request.param == "memory":
        with _checkpointer_memory() as checkpointer:
            yield checkpointer
    else:
        with _durable_saver(request.param) as checkpointer:
            yield checkpointer


@pytest.fixture(scope="function", params=_PARAMS)
async def async_checkpointer(request):
    if request.param == "memory":
        with _checkpointer_memory() as checkpointer:
            yield checkpointer
    else:
        with _durable_saver(request.param) as checkpointer:
            yield checkpointer
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", default="memory,durable", help="comma list: memory, durable, durable_aes")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args()
    version = importlib.metadata.version("langgraph")
    with tempfile.TemporaryDirectory(prefix="lg-upstream-") as tmp:
        work = Path(tmp)
        pip = [sys.executable, "-m", "pip", "--quiet"]
        subprocess.run(
            [*pip, "download", f"langgraph=={version}", "--no-deps", "--no-binary", ":all:", "-d", str(work)],
            check=True,
        )
        extras = work / "extras"
        subprocess.run(
            [*pip, "install", "--target", str(extras), "--no-deps", *TEST_DEPENDENCIES], check=True
        )
        with tarfile.open(next(work.glob("langgraph-*.tar.gz"))) as archive:
            archive.extractall(work, filter="data")
        source = work / f"langgraph-{version}"
        conftest = source / "tests" / "conftest.py"
        fixtures = FIXTURES.format(root=str(ROOT), adapters=str(ROOT / "adapters"))
        conftest.write_text(conftest.read_text() + fixtures)
        env = {
            **os.environ,
            "NO_DOCKER": "true",
            "DURABLE_PARAMS": args.params,
            "PYTHONPATH": os.pathsep.join([str(extras), os.environ.get("PYTHONPATH", "")]),
        }
        command = [
            sys.executable,
            "-m",
            "pytest",
            *[f"tests/{f}" for f in FILES],
            "-q",
            "-p",
            "no:cacheprovider",
            # Only some of the files that own snapshots run here: unused snapshots are expected,
            # and must not turn a fully passing run into exit code 1.
            "--snapshot-warn-unused",
        ]
        command += ["-o", "addopts=", *args.pytest_args]
        return subprocess.run(command, cwd=source, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
