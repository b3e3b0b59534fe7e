"""The CLI and the dashboard reach the engine through one inspection module and the public API.

Each may import: public `durable_core` names (``from durable_core import ...``), the shared
inspection package `durable_core._inspection`, and its own modules. The dashboard never imports
the CLI; the CLI starts the dashboard through the public `durable_core.dashboard`, never its
private modules. Imports inside functions count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import durable_core

CORE = Path(durable_core.__file__).resolve().parent
TOOLS = ("cli", "dashboard")


def _durable_imports(source: str, package: str) -> list[str]:
    """Every durable_core module `source` (a module of `package`) imports, as absolute names,
    function-level imports included."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names = [alias.name for alias in node.names]
            if module.startswith("durable_core"):
                # `from . import _render` imports a module, `from .. import Engine` a name
                found += [f"{module}.{name}" if name.startswith("_") else module for name in names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("durable_core")]
    return found


def _allowed(tool: str, module: str) -> bool:
    own = f"durable_core.{tool}"
    if module in {"durable_core", "durable_core._inspection"}:
        return True
    if module == own or module.startswith(own + "."):
        return True
    return tool == "cli" and module == "durable_core.dashboard"  # the public entry point only


@pytest.mark.parametrize("tool", TOOLS)
def test_a_tool_imports_only_inspection_the_public_api_and_itself(tool: str) -> None:
    bad = []
    for path in sorted((CORE / tool).glob("*.py")):
        for module in _durable_imports(path.read_text(encoding="utf-8"), f"durable_core.{tool}"):
            if not _allowed(tool, module):
                bad.append(f"{path.relative_to(CORE.parent)}: {module}")
    assert not bad, "imports outside the public API and durable_core._inspection:\n" + "\n".join(bad)


def test_inspection_imports_neither_tool() -> None:
    bad = []
    for path in sorted((CORE / "_inspection").glob("*.py")):
        for module in _durable_imports(path.read_text(encoding="utf-8"), "durable_core._inspection"):
            if module.startswith(("durable_core.cli", "durable_core.dashboard")):
                bad.append(f"{path.name}: {module}")
    assert not bad, bad


def test_the_check_catches_private_and_cross_tool_imports() -> None:
    source = (
        "from .._engine import Engine\n"
        "from .. import Engine, _records\n"
        "def f():\n    from ..cli._parser import STATUSES\n"
        "from . import _pages\nfrom .._inspection import parse_time\n"
    )
    imports = _durable_imports(source, "durable_core.dashboard")
    assert [m for m in imports if not _allowed("dashboard", m)] == [
        "durable_core._engine",
        "durable_core._records",
        "durable_core.cli._parser",
    ]
