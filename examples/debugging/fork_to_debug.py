"""Debugging an agent run: find the step that went wrong, fix the prompt, fork from that step.

    python examples/debugging/fork_to_debug.py

The runs are recorded in `fork_to_debug.db` in the current directory (or `--database-url`, or env
`DURABLE_DATABASE_URL`); each invocation uses a new run id, so running it again tells the same story.

The story, in one command, offline (the "model" is scripted and reacts to the prompt):

1. The `schedule_meeting` agent reads a calendar and the attendees' preferences (two slow tool
   calls), asks the model for a booking as JSON, and calls the `book_meeting` tool with it.
   The prompt has a bug: it asks for "a friendly confirmation", so the model answers with
   prose around loosely formatted data, the booking does not validate, the tool fails and
   the run ends in ERROR.
2. `engine.list_steps(run)` shows every recorded step: the failed tool call, and just before
   it the model output that caused it.
3. The prompt is fixed (here by assigning the module's `PROMPT`; in real life you edit it and
   restart), and `engine.fork_workflow(run, model_step)` starts a new run that copies the
   recorded steps before the model call (the calendar and preferences are *not* fetched again)
   and runs the model call and everything after it live, with the new prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import Counter
from typing import Any

from pydantic import BaseModel, ValidationError

from durable_core import Engine, StepInfo, step, workflow, workflow_options

BAD_PROMPT = (
    "You schedule meetings. Given the calendar and preferences below, write the attendees a friendly "
    "confirmation of the meeting you would book."
)
FIXED_PROMPT = (
    "You schedule meetings. Given the calendar and preferences below, reply with only a JSON object "
    '{"title": str, "start": "YYYY-MM-DDTHH:MM", "duration_minutes": int, "attendees": [str]}.'
)
PROMPT = BAD_PROMPT  # the bug under investigation
DEFAULT_URL = "sqlite:///fork_to_debug.db"  # a file in the current directory
CALLS: Counter[str] = Counter()  # how many times each tool or model really ran in this process


class Booking(BaseModel):
    """What the booking tool accepts: the model's structured output must match it."""

    title: str
    start: str
    duration_minutes: int
    attendees: list[str]


@step()
def read_calendar(team: str) -> list[str]:
    """A slow tool call (an API): the fork must not repeat it."""
    CALLS["read_calendar"] += 1
    return ["2026-12-01T09:00 busy", "2026-12-01T10:00 free", "2026-12-01T11:00 free"]


@step()
def read_preferences(team: str) -> dict[str, str]:
    CALLS["read_preferences"] += 1
    return {"ada": "mornings", "grace": "no meetings before 10:00"}


def scripted_model(prompt: str, context: str) -> str:
    """Stands in for an LLM: follows the prompt's output instruction, as a real model would."""
    if "JSON object" in prompt:
        return json.dumps(
            {
                "title": "Design review",
                "start": "2026-12-01T10:00",
                "duration_minutes": 30,
                "attendees": ["ada", "grace"],
            }
        )
    return (
        "Hi Ada and Grace! I've booked our Design review for Dec 1st at 10am (30 min). "
        "{title: 'Design review', start: 10am, duration: '30 min', attendees: ada & grace}"
    )


@step(name="scheduler.model_request")
def ask_model(team: str, calendar: list[str], preferences: dict[str, str]) -> str:
    CALLS["scheduler.model_request"] += 1
    context = f"team={team}\ncalendar={calendar}\npreferences={preferences}"
    return scripted_model(PROMPT, context)


@step()
def book_meeting(model_output: str) -> str:
    """The tool: it needs a valid booking and fails loudly otherwise."""
    CALLS["book_meeting"] += 1
    match = re.search(r"\{.*\}", model_output, re.DOTALL)
    try:
        booking = Booking.model_validate_json(match.group(0) if match else model_output)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise ValueError(f"book_meeting got malformed structured output from the model: {problem}") from exc
    return f"booked {booking.title!r} at {booking.start} for {', '.join(booking.attendees)}"


@workflow()
def schedule_meeting(team: str) -> str:
    calendar = read_calendar(team)
    preferences = read_preferences(team)
    answer = ask_model(team, calendar, preferences)
    return book_meeting(answer)


def describe(steps: list[StepInfo]) -> str:
    lines = []
    for info in steps:
        outcome = f"ERROR {type(info.error).__name__}: {info.error}" if info.error else f"-> {info.output!r}"
        lines.append(f"  step {info.step_id} {info.name:<24} {outcome[:110]}")
    return "\n".join(lines)


def run_story(engine: Engine, run_id: str = "meeting-1") -> dict[str, Any]:
    """Run the whole story on a launched engine; return what a test checks."""
    global PROMPT
    PROMPT = BAD_PROMPT  # pyright: ignore[reportConstantRedefinition]
    CALLS.clear()
    print(f"1) run {run_id} with the current prompt:\n   {PROMPT!r}")
    try:
        with workflow_options(workflow_id=run_id):
            schedule_meeting("platform")
    except ValueError as exc:
        print(f"   the run failed: {exc}")
    status = engine.get_workflow_status(run_id)
    print(f"   status: {status.status}\n")

    steps = engine.list_steps(run_id)
    print(f"2) engine.list_steps({run_id!r}):\n{describe(steps)}")
    failed = next(info for info in steps if info.error is not None)
    model_steps = [
        info for info in steps if info.name == "scheduler.model_request" and info.step_id < failed.step_id
    ]
    cause = max(model_steps, key=lambda info: info.step_id)
    print(
        f"   step {failed.step_id} ({failed.name}) failed on the output of step {cause.step_id} ({cause.name}),"
    )
    print("   which followed the prompt's request for a friendly confirmation instead of JSON.\n")

    PROMPT = FIXED_PROMPT  # pyright: ignore[reportConstantRedefinition] - the fix, as an edit would make it
    fork_id = f"{run_id}-fixed"
    print(f"3) prompt fixed; engine.fork_workflow({run_id!r}, {cause.step_id}, new_workflow_id={fork_id!r}):")
    before = dict(CALLS)
    result = engine.fork_workflow(run_id, cause.step_id, new_workflow_id=fork_id).get_result(
        timeout_seconds=60
    )
    print(f"   {fork_id}: {engine.get_workflow_status(fork_id).status}: {result}")
    print(f"{describe(engine.list_steps(fork_id))}")
    ran_in_fork = {name: CALLS[name] - before.get(name, 0) for name in CALLS}
    print(f"   calls made by the fork: {ran_in_fork}")
    print("   (read_calendar and read_preferences were replayed from the record, not called again)")
    return {
        "status": status.status,
        "failed_step": failed.step_id,
        "fork_from": cause.step_id,
        "fork_status": engine.get_workflow_status(fork_id).status,
        "result": result,
        "ran_in_fork": ran_in_fork,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        help=f"where the runs are recorded (default: env DURABLE_DATABASE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument("--run-id", default=None, help="default: a new id per invocation")
    args = parser.parse_args()
    database_url = args.database_url or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_URL
    run_id = args.run_id or f"meeting-{os.getpid()}"
    print(f"database: {database_url}")
    with Engine(database_url) as engine:
        if engine.list_workflows(workflow_ids=[run_id]):
            raise SystemExit(f"run {run_id} already exists in this database: pick another --run-id")
        outcome = run_story(engine, run_id)
    if outcome["fork_status"] != "SUCCESS":
        raise SystemExit("the fork did not succeed")
    print(f"\nsee both runs: durable workflows list --database-url {database_url}")


if __name__ == "__main__":
    main()
