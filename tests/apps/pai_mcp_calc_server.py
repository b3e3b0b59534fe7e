"""A tiny stdio MCP server for test_pai_mcp.py: its tools append each real call to a file.

The file is `$MCP_CALLS_FILE` (one line per call, `{tool}:{args}`); without it calls are not logged.
Each server process also logs `server-start` once, so a test can tell whether a server was spawned.
"""

from __future__ import annotations

import os

from mcp.server.fastmcp import FastMCP

server = FastMCP("calc", instructions="Use add for arithmetic.")


def _log(line: str) -> None:
    path = os.environ.get("MCP_CALLS_FILE")
    if not path:
        return
    with open(path, "a") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    _log(f"add:{a},{b}")
    return a + b


@server.tool()
def record(text: str) -> str:
    """Record a line of text (a side effect that must happen once)."""
    _log(f"record:{text}")
    return f"recorded {text}"


if __name__ == "__main__":
    _log("server-start")
    server.run("stdio")
