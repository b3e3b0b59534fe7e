"""Workflows for the crash-safety kit's own tests: safe ones, and deliberately unsafe ones.

Module-level (importable), so the kit can run them in child processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from durable_core import Queue, current_engine, recv, set_event, step, workflow, workflow_options
from durable_core.testing import crash_ledger

# -- safe ---------------------------------------------------------------------------------------


@step()
def reserve(order_id: str) -> str:
    return f"reserved {order_id}"


@step()
def price(order_id: str) -> int:
    return 40 + len(order_id)


@step()
def ship(order_id: str, total: int) -> str:
    return f"shipped {order_id} for {total}"


@workflow()
def place_order(order_id: str) -> str:
    reserve(order_id)
    total = price(order_id)
    return ship(order_id, total)


def payments_file() -> Path:
    """The "payment provider" of these tests: a file shared by every process of a check."""
    return Path(os.environ["CRASH_KIT_PAYMENTS"])


@step()
def charge_idempotent(order_id: str, amount: int) -> str:
    """A charge with an idempotency key: the provider charges once per key, whatever the retries."""
    path = payments_file()
    charged = json.loads(path.read_text()) if path.exists() else {}
    if order_id not in charged:
        charged[order_id] = amount
        path.write_text(json.dumps(charged))
        crash_ledger.record("charge-card", order_id)  # the effect really happened
    return f"charged {charged[order_id]}"


@workflow()
def checkout_idempotent(order_id: str) -> str:
    reserve(order_id)
    return charge_idempotent(order_id, price(order_id))


@step()
async def fetch(n: int) -> int:
    await asyncio.sleep(0.005)
    return n * 10


@workflow()
async def gather_twice(n: int) -> int:
    first = await asyncio.gather(fetch(n), fetch(n + 1))
    return sum(first) + await fetch(n + 2)


indexing = Queue("crash-kit-indexing", worker_concurrency=4)


@step()
def index_one(doc: str) -> int:
    return len(doc)


@workflow()
def index_text(doc: str) -> int:
    return index_one(doc) + index_one(doc.upper())


@workflow()
def index_texts(docs: list[str]) -> int:
    handles = []
    for doc in docs:
        with workflow_options(workflow_id=f"doc-{doc}"):
            handles.append(indexing.enqueue(index_text, doc))
    return sum(handle.get_result() for handle in handles)


@workflow()
def ask_approval(action: str) -> str:
    draft = reserve(action)
    set_event("approval_request", draft)
    answer = recv("approval", timeout_seconds=60)
    if not isinstance(answer, dict) or not answer.get("approved"):
        return f"{action} rejected"
    return ship(action, 1)


def approve(engine: Any, status: Any) -> dict[str, Any]:
    return {"approved": True, "by": "crash-kit"}


def start_two_orders() -> list[str]:
    """A driver (not a workflow) that starts two workflows with fixed ids and waits for both."""
    engine = current_engine()
    handles = []
    for order_id in ("o-1", "o-2"):
        with workflow_options(workflow_id=f"order-{order_id}"):
            handles.append(engine.start_workflow(place_order, order_id))
    return [handle.get_result(timeout_seconds=60) for handle in handles]


# -- unsafe ---------------------------------------------------------------------------------------


@step()
def charge_card(order_id: str, amount: int) -> str:
    """NOT idempotent: every execution charges again."""
    crash_ledger.record("charge-card", order_id)
    return f"charged {amount}"


@workflow()
def checkout(order_id: str) -> str:
    reserve(order_id)
    return charge_card(order_id, price(order_id))


@step()
def measure() -> int:
    time.sleep(0.12)
    return 1


@step()
def quick_answer() -> str:
    return "quick"


@step()
def careful_answer() -> str:
    return "careful"


@workflow()
def branches_on_wall_time() -> str:
    """Branches on the wall clock outside any step: a replay of `measure` is instant."""
    started = time.monotonic()
    measure()
    if time.monotonic() - started > 0.06:
        return careful_answer()
    return quick_answer()


def send_email(to: str) -> str:
    """A tool, called outside any step: every replay sends the email again."""
    crash_ledger.record("send-email", to)
    return f"sent to {to}"


@step()
def draft_email(to: str) -> str:
    return f"Hello {to}"


@step()
def log_email(to: str) -> str:
    return f"logged {to}"


@workflow()
def tool_outside_a_step(to: str) -> str:
    draft_email(to)
    send_email(to)
    return log_email(to)


def start_with_random_id() -> str:
    """A driver whose workflow id changes on every call: its runs cannot be matched after a crash."""
    with workflow_options(workflow_id=f"random-{uuid.uuid4().hex[:8]}"):
        return place_order("o-9")
