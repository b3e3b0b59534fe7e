"""A small local web dashboard: workflows, their steps, fork/cancel/resume, an inbox (messages to
answer, budgets to raise), and what model calls cost (per run, and a per-day chart).

Example:
    ```console
    $ durable dashboard                       # http://127.0.0.1:8790, loopback only
    $ durable dashboard --host 0.0.0.0 --token "$(openssl rand -hex 16)"
    ```

Or mount `create_app(engine)` in your own ASGI server. Server-rendered pages, no scripts, no
build step. Needs ``starlette`` and ``uvicorn`` (the ``dashboard`` extra).
"""

from __future__ import annotations

import importlib.util

if (
    importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None
):  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "The durable dashboard needs starlette and uvicorn: pip install 'durable-agents[dashboard]'"
    )

from ._app import create_app
from ._security import DashboardConfigError
from ._serve import serve

__all__ = ["DashboardConfigError", "create_app", "serve"]
