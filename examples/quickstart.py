"""A durable workflow that survives a crash.

    python examples/quickstart.py          # run it; kill it (Ctrl-C, kill -9) mid-way; run it again
    python examples/quickstart.py --auto   # does all of that by itself: crash at step 3, then resume

Each step takes half a second and prints whether it ran live or was replayed from the record
in `quickstart.db` in the current directory (embedded SQLite, no server needed; inspect it
afterwards with `durable workflows show report-1 --database-url sqlite:///quickstart.db`).
Run it again once it has finished and the recorded result comes back without running a step;
`--auto` starts clean each time (it removes that SQLite file first).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from durable_core import Engine, step, workflow, workflow_options

DEFAULT_URL = "sqlite:///quickstart.db"  # a file in the current directory
CRASH_AT = int(os.environ.get("QUICKSTART_CRASH_AT", "0"))
STEP_SECONDS = float(os.environ.get("QUICKSTART_STEP_SECONDS", "0.5"))  # tests set 0


@step()
def research(topic: str, n: int) -> str:
    if n == CRASH_AT:
        print(f"  step {n}: the process dies here (os._exit), as in a kill -9 or a power cut", flush=True)
        os._exit(1)
    time.sleep(STEP_SECONDS)
    note = f"note {n} on {topic}"
    print(f"  step {n}: ran live -> {note!r}", flush=True)
    return note


@workflow()
def write_report(topic: str) -> str:
    notes = [research(topic, n) for n in range(1, 6)]
    return " | ".join(notes)


def run_once(database_url: str) -> None:
    with Engine(database_url) as engine:  # launch() resumes unfinished workflows of a dead process
        before = engine.list_workflows(workflow_ids=["report-1"])
        if before and before[0].status == "SUCCESS":
            print(
                "report-1 already finished in this database: its result comes from the record, no step runs"
            )
        with workflow_options(workflow_id="report-1"):
            report = write_report("durable agents")
        steps = engine.list_steps("report-1")
        status = engine.get_workflow_status("report-1")
        print(f"\nreport-1 finished: {report!r}")
        print(f"recorded steps: {len(steps)}, recoveries: {status.recovery_attempts}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        help=f"where the workflow is recorded (default: env DURABLE_DATABASE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--auto", action="store_true", help="crash at step 3 in one process, resume in a new one"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr] - in order with the child processes
    url = args.database_url or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_URL
    if not args.auto:
        print(f"database: {url}")
        print("running workflow report-1; kill me and run me again to see it resume")
        run_once(url)
        return
    print(f"database: {url}")
    if url.startswith("sqlite:///"):
        database = Path(url.removeprefix("sqlite:///"))
        if database.exists():
            print(f"starting clean: removing {database} from an earlier run")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
    else:
        with Engine(url) as engine:
            if engine.list_workflows(workflow_ids=["report-1"]):
                sys.exit(f"report-1 already exists in {url}: --auto needs a fresh database")
    script = [sys.executable, __file__, "--database-url", url]
    print("1) first run, which crashes inside step 3:")
    first = subprocess.run(script, env={**os.environ, "QUICKSTART_CRASH_AT": "3"})
    print(f"   process exited with code {first.returncode}\n")
    print("2) second run, a new process on the same database:")
    print("   (steps 1-2 are replayed from the record: no 'ran live' line for them)")
    second = subprocess.run(script, env={**os.environ, "QUICKSTART_CRASH_AT": "0"})
    print(f"\nsee the record: durable workflows show report-1 --database-url {url}")
    sys.exit(second.returncode)


if __name__ == "__main__":
    main()
