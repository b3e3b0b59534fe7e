"""Who may use the dashboard: loopback only by default, a token everywhere else.

- Without a token the server must bind a loopback address, and requests must name a
  loopback host (a web page cannot reach it through DNS rebinding).
- With a token every request carries it (``Authorization: Bearer``, ``X-Durable-Token``,
  ``?token=``, or the cookie set after a ``?token=`` visit), else 401 and nothing runs.
- State changes are POST only, with a per-server form secret (no cross-site form posts).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["COOKIE", "DashboardConfigError", "Guard", "check_bind", "form_secret_ok", "is_loopback"]

COOKIE = "durable_dashboard_token"
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


class DashboardConfigError(ValueError):
    """The dashboard was asked to run in an unsafe way (for example on a public address without a token)."""


def is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise DashboardConfigError(
            f"refusing to serve the dashboard on {host!r} without a token: anyone who can reach it "
            "could cancel or fork workflows. Pass --token (or set DURABLE_DASHBOARD_TOKEN), "
            "or bind 127.0.0.1."
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[: host_header.find("]") + 1]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Guard:
    """ASGI middleware enforcing the rules of this module before any page or action runs."""

    def __init__(self, app: ASGIApp, *, token: str | None, loopback_only: bool) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only
        self.form_secret = secrets.token_urlsafe(24)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["form_secret"] = self.form_secret
        host = _host_name(_header(scope, b"host") or "")
        if self.loopback_only and not self.token and host not in _LOOPBACK_NAMES:
            await _deny(403, f"host {host!r} is not a loopback name; open http://127.0.0.1 instead")(
                scope, receive, send
            )
            return
        if self.token is None:
            await self.app(scope, receive, send)
            return
        given, from_query = self._token_of(scope)
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            await _deny(
                401, "a valid dashboard token is required (Authorization: Bearer, X-Durable-Token or ?token=)"
            )(scope, receive, send)
            return
        if not from_query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())],
                }
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    def _token_of(scope: Scope) -> tuple[str | None, bool]:
        auth = _header(scope, b"authorization")
        if auth and auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        header = _header(scope, b"x-durable-token")
        if header:
            return header, False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        if query:
            return query[0], True
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(_header(scope, b"cookie") or "")
        except CookieError:
            return None, False
        if COOKIE in cookies:
            return cookies[COOKIE].value, False
        return None, False


def _deny(status: int, message: str) -> Response:
    return PlainTextResponse(
        f"{status} {message}\n", status_code=status, headers={"Cache-Control": "no-store"}
    )


def form_secret_ok(scope: Scope, given: str | None) -> bool:
    expected: str = scope.get("state", {}).get("form_secret", "")
    return bool(given) and hmac.compare_digest((given or "").encode(), expected.encode())
