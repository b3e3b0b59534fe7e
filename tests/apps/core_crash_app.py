"""A small durable application that tests run in subprocesses and crash for real.

Usage: python core_crash_app.py DATABASE_URL MODE LEDGER WORKFLOW_ID [options as env]

Every step appends "start <name>" and "done <name>" lines to LEDGER (fsynced), so a test can
count how often each step body really ran across processes. With CRASH_IN_STEP=<n>, the
process dies with os._exit(1) inside step n (after its "start" line), once per ledger.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from durable_core import Engine, Queue, step, workflow, workflow_options

URL, MODE, LEDGER, WORKFLOW_ID = sys.argv[1:5]
CRASH_IN_STEP = int(os.environ.get("CRASH_IN_STEP", "0"))
ALWAYS_CRASH = os.environ.get("ALWAYS_CRASH") == "1"
HOLD_SECONDS = float(os.environ.get("HOLD_SECONDS", "0"))


def log(line: str) -> None:
    with open(LEDGER, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def crashed_before() -> bool:
    try:
        with open(LEDGER) as f:
            return "crashed" in f.read().split("\n")
    except FileNotFoundError:
        return False


def body(index: int) -> str:
    log(f"start step{index}")
    if index == CRASH_IN_STEP and (ALWAYS_CRASH or not crashed_before()):
        log("crashed")
        os._exit(1)
    if HOLD_SECONDS and index == 2:
        time.sleep(HOLD_SECONDS)
    log(f"done step{index}")
    return f"result{index}"


@step(name="step")
def sync_step(index: int) -> str:
    return body(index)


@step(name="astep")
async def async_step(index: int) -> str:
    return body(index)


@workflow(name="ledger_flow", max_recovery_attempts=int(os.environ.get("MAX_RECOVERY", "50")))
def ledger_flow(n: int) -> list[str]:
    log("body")
    return [sync_step(i) for i in range(1, n + 1)]


@workflow(name="async_ledger_flow")
async def async_ledger_flow(n: int) -> list[str]:
    log("body")
    results = []
    for i in range(1, n + 1):
        results.append(await async_step(i))
    return results


crash_queue = Queue("crashq", worker_concurrency=1)
CRASH_CHILD = int(os.environ.get("CRASH_CHILD", "0"))


@step(name="child_work")
def child_work(i: int) -> int:
    log(f"start child{i}")
    if i == CRASH_CHILD and not crashed_before():
        log("crashed")
        os._exit(1)
    log(f"done child{i}")
    return i * i


@workflow(name="child_job")
def child_job(i: int) -> int:
    return child_work(i)


@workflow(name="fanout_parent")
def fanout_parent(n: int) -> int:
    log("parent body")
    handles = [crash_queue.enqueue(child_job, i) for i in range(1, n + 1)]
    return sum(h.get_result() for h in handles)


def main() -> None:
    engine = Engine(
        URL,
        heartbeat_seconds=float(os.environ.get("HEARTBEAT", "0.2")),
        lease_seconds=float(os.environ.get("LEASE", "2.0")),
        executor_id=os.environ.get("EXECUTOR_ID"),
    )
    engine.launch()
    flow = async_ledger_flow if os.environ.get("ASYNC") == "1" else ledger_flow
    if MODE == "fanout":
        with workflow_options(workflow_id=WORKFLOW_ID):
            result = fanout_parent(5)
    elif MODE == "run":
        with workflow_options(workflow_id=WORKFLOW_ID):
            result = asyncio.run(flow(5)) if flow is async_ledger_flow else flow(5)
    elif MODE == "wait":
        result = engine.retrieve_workflow(WORKFLOW_ID).get_result(timeout_seconds=60)
    elif MODE == "recover":
        handles = engine.recover([os.environ["RECOVER_FROM"]])
        assert [h.workflow_id for h in handles] == [WORKFLOW_ID], handles
        result = handles[0].get_result(timeout_seconds=60)
    elif MODE == "resume":
        result = engine.resume_workflow(WORKFLOW_ID).get_result(timeout_seconds=60)
    elif MODE == "serve":
        # stay alive (heartbeating, able to take over dead executors' work) until told to stop
        deadline = time.monotonic() + float(os.environ.get("SERVE_SECONDS", "30"))
        while time.monotonic() < deadline and not os.path.exists(LEDGER + ".stop"):
            time.sleep(0.05)
        result = None
    else:
        raise SystemExit(f"unknown mode {MODE}")
    print(json.dumps({"result": result, "executor": engine.executor_id}))
    engine.shutdown()


if __name__ == "__main__":
    main()
