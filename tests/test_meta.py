"""Invariants a reviewer would otherwise police by hand."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import durable_core

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "durable_core"
ADAPTERS = ROOT / "adapters"

DOCUMENTED = {  # DESIGN.md §5: the public surface of durable_core
    "Engine", "workflow", "step", "Queue", "RateLimit", "workflow_options", "WorkflowHandle",
    "WorkflowStatus", "StepInfo", "sleep", "sleep_async", "recv", "recv_async", "send", "send_async",
    "set_event", "set_event_async", "get_event", "get_event_async", "write_stream", "write_stream_async",
    "close_stream", "close_stream_async", "current_workflow_id", "PickleSerializer", "JsonSerializer",
    "DurableError", "EngineNotLaunched", "WorkflowConflictError", "WorkflowNotFoundError",
    "StepRetriesExceeded", "SerializationError", "QueueDeduplicatedError", "AwaitedWorkflowCancelled",
    "RecoveryAttemptsExceeded", "RecordedError", "WorkflowCancelled", "NondeterminismError",
}  # fmt: skip

SQL = re.compile(
    r"\b(INSERT\s+INTO|DELETE\s+FROM|CREATE\s+TABLE|ALTER\s+TABLE|UPDATE\s+\w+\s+SET|SELECT\s+.+\s+FROM)\b",
    re.I | re.S,
)
FRAMEWORKS = ("pydantic_ai", "crewai", "langgraph", "langchain", "langchain_core")


def python_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]


def test_all_matches_the_documented_surface() -> None:
    exported = set(durable_core.__all__)
    assert exported >= DOCUMENTED, sorted(DOCUMENTED - exported)
    for name in exported:
        assert hasattr(durable_core, name), name
    for error in ("WorkflowCancelled", "NondeterminismError"):
        cls = getattr(durable_core, error)
        assert issubclass(cls, BaseException) and not issubclass(cls, Exception)


def test_every_private_module_declares_all() -> None:
    for path in python_files(CORE):
        if path.name.startswith("_") and path.name != "__init__.py":
            tree = ast.parse(path.read_text())
            names = {
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            }
            assert "__all__" in names, f"{path.relative_to(ROOT)} has no __all__"


def test_only_storage_issues_sql() -> None:
    offenders = []
    for root in (CORE, ADAPTERS):
        for path in python_files(root):
            if (CORE / "storage") in path.parents:
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in ("exec_driver_sql", "execute")
                    and isinstance(node.value, ast.Name)
                    and node.value.id in ("conn", "connection", "cursor")
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_core_imports_no_agent_framework() -> None:
    for path in python_files(CORE):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            for module in modules:
                assert module.split(".")[0] not in FRAMEWORKS, f"{path.relative_to(ROOT)} imports {module}"


def test_adapters_export_their_public_names() -> None:
    expected = {
        "durable_pydantic_ai": {"DurableAgent", "Durability"},
        "durable_crewai": {"durable_kickoff", "instrument"},
        "durable_langgraph": {"DurableCheckpointer", "DurableGraph"},
    }
    for package, names in expected.items():
        module = importlib.import_module(package)
        assert names <= set(module.__all__), (package, names - set(module.__all__))
