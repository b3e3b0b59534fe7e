"""examples/debugging: the failing step is visible, the fork after the prompt fix succeeds without redoing work."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest
from example_support import EXAMPLES, run_example

SCRIPT = EXAMPLES / "debugging" / "fork_to_debug.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fork_to_debug_example", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def story() -> ModuleType:
    return _load()


def test_fork_after_fixing_the_prompt_reuses_the_earlier_steps(engine: Any, story: ModuleType) -> None:
    outcome = story.run_story(engine, "meeting-test")
    assert outcome["status"] == "ERROR"
    assert outcome["failed_step"] == 4 and outcome["fork_from"] == 3
    assert outcome["fork_status"] == "SUCCESS"
    assert outcome["result"] == "booked 'Design review' at 2026-12-01T10:00 for ada, grace"
    # the fork replayed steps 1-2 from the record and ran only the model call and the tool live
    assert outcome["ran_in_fork"] == {
        "read_calendar": 0,
        "read_preferences": 0,
        "scheduler.model_request": 1,
        "book_meeting": 1,
    }
    original = engine.list_steps("meeting-test")
    forked = engine.list_steps("meeting-test-fixed")
    assert [s.name for s in forked] == [s.name for s in original]
    assert [s.output for s in forked[:2]] == [s.output for s in original[:2]]
    assert original[3].error is not None and forked[3].error is None
    assert engine.get_workflow_status("meeting-test-fixed").forked_from == "meeting-test"


@pytest.mark.backends("sqlite")
def test_the_one_command_story(database_url: str) -> None:
    result = run_example(SCRIPT, "--database-url", database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "status: ERROR" in result.stdout
    assert "SUCCESS: booked 'Design review'" in result.stdout
    assert "'read_calendar': 0, 'read_preferences': 0" in result.stdout


def test_module_prompt_is_the_bug(story: ModuleType) -> None:
    """Outside a workflow the steps are plain calls: the bad prompt alone reproduces the failure."""
    setattr(story, "PROMPT", story.BAD_PROMPT)  # noqa: B010 - a module loaded from a path
    with pytest.raises(ValueError, match="malformed structured output"):
        story.book_meeting(story.ask_model("t", [], {}))
    setattr(story, "PROMPT", story.FIXED_PROMPT)  # noqa: B010
    assert story.book_meeting(story.ask_model("t", [], {})).startswith("booked")
