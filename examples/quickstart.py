"""A durable workflow that survives a crash.

    python examples/quickstart.py          # run it; kill it (Ctrl-C, kill -9) mid-way; run it again
    python examples/quickstart.py --auto   # does all of that by itself: crash at step 3, then resume

Each step takes half a second and prints whether it ran live or was replayed from the record
in `quickstart.db` (embedded SQLite, no server needed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from durable_core import Engine, step, workflow, workflow_options

DB = Path(__file__).with_name("quickstart.db")
CRASH_AT = int(os.environ.get("QUICKSTART_CRASH_AT", "0"))


@step()
def research(topic: str, n: int) -> str:
    if n == CRASH_AT:
        print(f"  step {n}: the process dies here (os._exit), as in a kill -9 or a power cut", flush=True)
        os._exit(1)
    time.sleep(0.5)
    note = f"note {n} on {topic}"
    print(f"  step {n}: ran live -> {note!r}", flush=True)
    return note


@workflow()
def write_report(topic: str) -> str:
    notes = [research(topic, n) for n in range(1, 6)]
    return " | ".join(notes)


def run_once() -> None:
    with Engine(f"sqlite:///{DB}") as engine:  # launch() resumes unfinished workflows of a dead process
        with workflow_options(workflow_id="report-1"):
            report = write_report("durable agents")
        steps = engine.list_steps("report-1")
        status = engine.get_workflow_status("report-1")
        print(f"\nreport-1 finished: {report!r}")
        print(f"recorded steps: {len(steps)}, recoveries: {status.recovery_attempts}")


def main() -> None:
    if "--auto" not in sys.argv:
        print(f"running workflow report-1 (database {DB.name}); kill me and run me again to see it resume")
        run_once()
        return
    DB.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(DB) + suffix).unlink(missing_ok=True)
    script = [sys.executable, __file__]
    print("1) first run, which crashes inside step 3:")
    first = subprocess.run(script, env={**os.environ, "QUICKSTART_CRASH_AT": "3"})
    print(f"   process exited with code {first.returncode}\n")
    print("2) second run, a new process on the same database:")
    print("   (steps 1-2 are replayed from the record: no 'ran live' line for them)")
    second = subprocess.run(script, env={**os.environ, "QUICKSTART_CRASH_AT": "0"})
    sys.exit(second.returncode)


if __name__ == "__main__":
    main()
