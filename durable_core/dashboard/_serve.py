"""`durable dashboard`: connect to the database and serve the app with uvicorn."""

from __future__ import annotations

import errno
import socket

import uvicorn

from .._inspection import DASHBOARD_PORT, client_engine
from ._app import create_app
from ._security import DashboardConfigError, check_bind, is_loopback

__all__ = ["bind", "serve"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or DashboardConfigError saying why not (port in use, ...)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DashboardConfigError(f"cannot serve on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise DashboardConfigError(
                f"port {port} on {host} is already in use (another dashboard or program); "
                "choose another with --port N (--port 0 picks a free one)"
            ) from None
        raise DashboardConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def serve(
    *, database_url: str | None, host: str = "127.0.0.1", port: int = DASHBOARD_PORT, token: str | None = None
) -> None:
    """Serve until interrupted. Refuses a non-loopback `host` without a `token`, and a port in use
    (DashboardConfigError), before anything claims to be serving."""
    check_bind(host, token)
    sock = bind(host, port)
    try:
        with client_engine(database_url, writes=False) as engine:
            app = create_app(engine, token=token, loopback_only=is_loopback(host))
            bound = sock.getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            suffix = f"/?token={token}" if token else "/"
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
            print(f"durable dashboard on http://{shown}:{bound}{suffix}  (Ctrl+C to stop)", flush=True)
            server.run(sockets=[sock])
    finally:
        sock.close()
