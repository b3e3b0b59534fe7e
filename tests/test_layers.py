"""The layering of durable_core, checked on the source (AST), imports made inside functions and
under `TYPE_CHECKING` included.

Each module has a layer; a module imports only modules of lower layers, or of its own layer
without forming a cycle. No import cycle exists anywhere in the package. Only the top (the
package `__init__`, the CLI, the dashboard, the testing kit) imports the `Engine` facade.
A new module must be given its layer here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "durable_core"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# Layer of each module; a package listed here covers its submodules (one unit).
LAYERS: dict[str, int] = {
    # 0: values, errors, serialization, records, storage: no runtime behaviour
    "durable_core.errors": 0,
    "durable_core._status": 0,
    "durable_core._keys": 0,
    "durable_core._usage": 0,
    "durable_core._records": 0,
    "durable_core._serialization": 0,
    "durable_core.storage": 0,
    # 1: the registry, options, in-process waiters, the retry policy
    "durable_core._retry": 1,
    "durable_core._registry": 1,
    "durable_core._inputs": 1,
    "durable_core._options": 1,
    "durable_core._waits": 1,
    # 2: the runtime: one workflow run (seen through the `RunHost` Protocol), context variables,
    #    tracing, durable waits, budget checks, running steps and workflow bodies
    "durable_core._run": 2,
    "durable_core._context": 2,
    "durable_core._tracing": 2,
    "durable_core._waiting": 2,
    "durable_core._budget": 2,
    "durable_core._runtime": 2,
    # 3: services, which see the engine as the `EngineHost` Protocol
    "durable_core._host": 3,
    "durable_core._handle": 3,
    "durable_core._ownership": 3,
    "durable_core._stranded": 3,
    "durable_core._starting": 3,
    "durable_core._queues": 3,
    "durable_core._recovery": 3,
    "durable_core._outage": 3,
    "durable_core._comms": 3,
    "durable_core._usage_report": 3,
    "durable_core._management": 3,
    "durable_core._current": 3,
    "durable_core._workflow": 3,
    "durable_core._extension_live": 3,
    "durable_core._extension_retry": 3,
    "durable_core._extension_usage": 3,
    # 4: the facade
    "durable_core._engine": 4,
    # 5: the top: public API, extension surface, tools
    "durable_core": 5,
    "durable_core.extend": 5,
    "durable_core.testing": 5,
    "durable_core.pytest_plugin": 5,
    "durable_core._inspection": 5,
    "durable_core.cli": 5,
    "durable_core.dashboard": 5,
}

ENGINE = "durable_core._engine"
MAY_IMPORT_ENGINE = {
    "durable_core",
    "durable_core.cli",
    "durable_core.dashboard",
    "durable_core.testing",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _all_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _unit(module: str) -> str:
    """The `LAYERS` entry covering `module` (itself, or the listed package it belongs to)."""
    candidate = module
    while candidate:
        if candidate in LAYERS:
            return candidate
        candidate = candidate.rpartition(".")[0]
    raise AssertionError(f"{module} has no layer: add it to LAYERS in {__file__}")


def _imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """Every durable_core module `module` imports (anywhere in the file), with the line."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            submodules = [
                f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules
            ]
            yield from ((sub, node.lineno) for sub in submodules)
            if len(submodules) < len(node.names):  # names defined in `target` itself
                yield target, node.lineno


def _graph() -> dict[str, dict[str, int]]:
    """unit -> {imported unit: first line}, within durable_core, between distinct units."""
    modules = _all_modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        unit = _unit(module)
        edges = graph.setdefault(unit, {})
        for target, line in _imports(module, path, modules):
            if target not in modules:
                continue
            target_unit = _unit(target)
            if target_unit != unit:
                edges.setdefault(target_unit, line)
    return graph


def _module_graph() -> dict[str, set[str]]:
    """module -> imported modules, every module of the package (sub-packages included)."""
    modules = _all_modules()
    return {
        module: {
            target for target, _ in _imports(module, path, modules) if target in modules and target != module
        }
        for module, path in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer() -> None:
    missing = [
        module
        for module in _all_modules()
        if not any(module == unit or module.startswith(unit + ".") for unit in LAYERS)
    ]
    assert not missing, f"modules without a layer (add them to LAYERS): {missing}"
    stale = [unit for unit in LAYERS if unit not in _all_modules()]
    assert not stale, f"LAYERS names modules that do not exist: {stale}"


def test_no_module_imports_a_higher_layer() -> None:
    violations = [
        f"{unit} (layer {LAYERS[unit]}) imports {target} (layer {LAYERS[target]}) at line {line}"
        for unit, edges in _graph().items()
        for target, line in edges.items()
        if LAYERS[target] > LAYERS[unit]
    ]
    assert not violations, "\n".join(violations)


def test_no_import_cycle_between_layers_units() -> None:
    cycles = _cycles({unit: set(edges) for unit, edges in _graph().items()})
    assert not cycles, f"import cycles: {cycles}"


def test_no_import_cycle_between_modules() -> None:
    """Inside sub-packages too (a package `__init__` and its submodules included)."""
    cycles = _cycles(_module_graph())
    assert not cycles, f"import cycles: {cycles}"


def test_only_the_top_imports_the_engine_facade() -> None:
    importers = sorted(unit for unit, edges in _graph().items() if ENGINE in edges)
    assert set(importers) <= MAY_IMPORT_ENGINE, (
        f"only {sorted(MAY_IMPORT_ENGINE)} may import {ENGINE}: {importers}"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ._engine import Engine\n", [("durable_core._engine", 1)]),
        ("from . import _runtime\n", [("durable_core._runtime", 1)]),
        ("def f():\n    from .storage import StepRow\n", [("durable_core.storage", 2)]),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._engine import Engine\n",
            [("durable_core._engine", 3)],
        ),
        ("import durable_core._comms\n", [("durable_core._comms", 1)]),
    ],
)
def test_the_checker_sees_every_kind_of_import(
    tmp_path: Path, source: str, expected: list[tuple[str, int]]
) -> None:
    path = tmp_path / "_probe.py"
    path.write_text(source)
    modules = _all_modules()
    assert list(_imports("durable_core._probe", path, modules)) == expected


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
