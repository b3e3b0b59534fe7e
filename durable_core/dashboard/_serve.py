"""`durable dashboard`: connect to the database and serve the app with uvicorn."""

from __future__ import annotations

import uvicorn

from ..cli._client import client_engine
from ._app import create_app
from ._security import check_bind, is_loopback

__all__ = ["serve"]


def serve(
    *, database_url: str | None, host: str = "127.0.0.1", port: int = 8765, token: str | None = None
) -> None:
    """Serve until interrupted. Refuses a non-loopback `host` without a `token` (DashboardConfigError)."""
    check_bind(host, token)
    with client_engine(database_url) as engine:
        app = create_app(engine, token=token, loopback_only=is_loopback(host))
        shown = f"[{host}]" if ":" in host else host
        suffix = f"/?token={token}" if token else "/"
        print(f"durable dashboard on http://{shown}:{port}{suffix}  (Ctrl+C to stop)", flush=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
