"""Adapters reach durable_core only through its public surface (DESIGN.md §1, issue 19).

Every import of ``durable_core`` in ``adapters/`` (module level and inside functions, under
``TYPE_CHECKING`` too) names ``durable_core`` (only names in its ``__all__``),
``durable_core.errors`` or ``durable_core.extend`` (only names in its ``__all__``): nothing
private, no ``durable_core.storage``, no attribute read off a private core module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import durable_core
import durable_core.errors
import durable_core.extend

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = ROOT / "adapters"
PUBLIC: dict[str, set[str]] = {
    "durable_core": set(durable_core.__all__),
    "durable_core.errors": {name for name in vars(durable_core.errors) if not name.startswith("_")},
    "durable_core.extend": set(durable_core.extend.__all__),
}


def _adapter_packages() -> list[str]:
    return sorted(p.name for p in ADAPTERS.iterdir() if (p / "__init__.py").exists())


def _offences(source: str, where: str) -> list[str]:
    """Every use of durable_core in `source` outside the public surface, as ``where:line: what``."""
    offences: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            module = node.module
            if module != "durable_core" and not module.startswith("durable_core."):
                continue
            allowed = PUBLIC.get(module)
            for alias in node.names:
                if allowed is None:
                    offences.append((node.lineno, f"from {module} import {alias.name}"))
                elif alias.name not in allowed:
                    offences.append((node.lineno, f"{module}.{alias.name} is not public"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("durable_core") and alias.name not in PUBLIC:
                    offences.append((node.lineno, f"import {alias.name}"))
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "durable_core"
            and node.attr.startswith("_")
        ):
            offences.append((node.lineno, f"durable_core.{node.attr}"))
    return [f"{where}:{line}: {what}" for line, what in sorted(offences)]


@pytest.mark.parametrize("package", _adapter_packages())
def test_adapters_import_only_public_durable_core(package: str) -> None:
    offences = [
        offence
        for path in sorted((ADAPTERS / package).rglob("*.py"))
        for offence in _offences(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert offences == []


def test_every_adapter_package_is_checked() -> None:
    assert {"durable_crewai", "durable_langgraph", "durable_pydantic_ai"} <= set(_adapter_packages())


def test_extend_all_names_exist_and_are_documented() -> None:
    extend = durable_core.extend
    assert extend.__doc__
    for name in extend.__all__:
        assert hasattr(extend, name), name
        assert f"`{name}" in extend.__doc__, f"{name} is not described in the module docstring"


def test_the_checker_sees_private_imports() -> None:
    source = (
        "from durable_core import step, _context\n"
        "from durable_core.storage.checkpoints import CheckpointStore\n"
        "from durable_core.extend import LiveHandoff, not_there\n"
        "def f():\n"
        "    from durable_core._budget import gate_sync\n"
        "    import durable_core._context\n"
        "    import durable_core\n"
        "    return durable_core._current\n"
    )
    assert [offence.split(": ", 1)[1] for offence in _offences(source, "probe.py")] == [
        "durable_core._context is not public",
        "from durable_core.storage.checkpoints import CheckpointStore",
        "durable_core.extend.not_there is not public",
        "from durable_core._budget import gate_sync",
        "import durable_core._context",
        "durable_core._current",
    ]
