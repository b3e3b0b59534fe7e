"""The README: the per-framework programs run offline exactly as printed, the quickstart is two
commands, and nothing links outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from example_support import example_env

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def _programs() -> dict[str, str]:
    """The README's complete programs: python blocks whose first line names their file."""
    found: dict[str, str] = {}
    for language, body in BLOCK.findall(README):
        first = body.splitlines()[0] if body else ""
        match = re.match(r"# (agent_\w+\.py):", first)
        if language == "python" and match:
            found[match.group(1)] = body
    return found


def _run_twice(name: str, tmp_path: Path) -> tuple[str, str]:
    (tmp_path / name).write_text(_programs()[name], encoding="utf-8")
    (tmp_path / "tmp").mkdir()
    outputs: list[str] = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, name],
            cwd=tmp_path,
            env=example_env(TMPDIR=str(tmp_path / "tmp"), CREWAI_STORAGE_DIR=str(tmp_path / "crewai")),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        outputs.append(result.stdout)
    # CrewAI's own file locks (crewai_core.lock_store, any kickoff) are the only temp files left
    left = [p.name for p in (tmp_path / "tmp").iterdir() if not re.fullmatch(r"crewai:\w+\.lock", p.name)]
    assert left == []
    assert (tmp_path / name.replace(".py", ".db")).exists()
    return outputs[0], outputs[1]


def test_one_program_per_framework() -> None:
    assert sorted(_programs()) == ["agent_crewai.py", "agent_langgraph.py", "agent_pydantic_ai.py"]


def test_pydantic_ai_program(tmp_path: Path) -> None:
    pytest.importorskip("durable_pydantic_ai")
    first, second = _run_twice("agent_pydantic_ai.py", tmp_path)
    assert "tool ran: order_status" in first
    assert "tool ran" not in second  # the finished run_id: its recorded result, no model or tool call
    assert first.splitlines()[-1] == second.splitlines()[-1]


def test_crewai_program(tmp_path: Path) -> None:
    pytest.importorskip("durable_crewai")
    first, second = _run_twice("agent_crewai.py", tmp_path)
    assert "LLM called" in first and "LLM called" not in second
    assert second.strip() == "Durable execution records every step."


def test_langgraph_program(tmp_path: Path) -> None:
    pytest.importorskip("durable_langgraph")
    first, second = _run_twice("agent_langgraph.py", tmp_path)
    turn = "['Can I get a refund?', 'Refund approved.', 'reviewer said: yes'"
    assert first.splitlines()[-1] == turn + "]"
    assert second.splitlines()[-1] == turn + ", " + turn.removeprefix("[") + "]"  # a second turn
    assert "send this answer?" in first and "done" in first


def test_quickstart_is_two_commands() -> None:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    [(language, body)] = BLOCK.findall(section)
    commands = [line.split("#")[0].strip() for line in body.splitlines() if line.strip()]
    assert (language, commands) == ("bash", ["python3 tasks.py demo", "python3 tasks.py test"])


def test_nothing_links_outside_the_repository() -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", README):
        assert not re.match(r"[a-z]+:", target), f"external link {target}"
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"link outside the repository: {target}"
    outside_code = re.sub(r"```.*?```", "", README, flags=re.S)
    outside_code = re.sub(r"`[^`\n]*`", "", outside_code)
    assert not re.search(r"https?://|www\.", outside_code), "a bare URL (rendered as a link)"
    for url in re.findall(r"https?://[^\s`'\"]+", README):
        assert re.match(r"https?://(127\.0\.0\.1|localhost)[:/]", url), f"external URL {url}"
    assert "DESIGN.md" not in README and "../" not in README
