"""Usage of CrewAI LLM calls and budgets on kickoffs (both databases).

`MeteredLLM` reports each response's usage through `BaseLLM._track_token_usage_internal`, as
CrewAI's providers do; nothing reaches a model provider.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from crewai import Process
from crewai_support import (
    CACHED_TOKENS,
    COMPLETION_TOKENS,
    INPUTS,
    PROMPT_TOKENS,
    MeteredLLM,
    metered_crew,
    read_log,
    research_crew,
)
from durable_crewai import crew_workflow_id, durable_kickoff, instrument
from genai_prices import Usage as PricedUsage
from genai_prices import calc_price

from durable_core import Budget, BudgetExceeded, Engine, workflow, workflow_options
from durable_core.testing import run_script, wait_until_waiting

HERE = Path(__file__).parent
ADAPTERS = HERE.parent.parent / "adapters"
LLM_CALLS = ["llm:Research:Researcher", "llm:Research:Researcher", "llm:Write:Writer", "llm:Write:Writer"]
CALL_PRICE = float(
    calc_price(
        PricedUsage(
            input_tokens=PROMPT_TOKENS, output_tokens=COMPLETION_TOKENS, cache_read_tokens=CACHED_TOKENS
        ),
        "gpt-4o",
        provider_id="openai",
    ).total_price
)


def _llm_calls(call_log: list[str]) -> list[str]:
    return [entry for entry in call_log if entry.startswith("llm:")]


# -- usage -------------------------------------------------------------------------------------


@pytest.mark.parametrize("native", [False, True], ids=["react", "native"])
def test_llm_steps_record_the_usage_crewai_responses_report(
    engine: Engine, call_log: list[str], native: bool
) -> None:
    crew, llm = metered_crew(native=native, callbacks=[durable_kickoff])

    crew.kickoff(inputs=INPUTS)

    workflow_id = crew_workflow_id(crew, INPUTS)
    usage = engine.get_workflow_status(workflow_id).usage
    assert usage is not None
    assert usage.model_calls == 4 and usage.requests == 4
    assert (usage.input_tokens, usage.output_tokens) == (4 * PROMPT_TOKENS, 4 * COMPLETION_TOKENS)
    assert usage.cache_read_tokens == 4 * CACHED_TOKENS and usage.cache_write_tokens == 0
    assert usage.unknown_tokens == 0 and usage.unpriced == 0
    assert usage.cost_usd == pytest.approx(4 * CALL_PRICE)
    assert set(usage.by_model) == {"gpt-4o"}
    # the same numbers as CrewAI's own counters (what `Crew.usage_metrics` is built from)
    summary = llm.get_token_usage_summary()
    assert (summary.prompt_tokens, summary.completion_tokens) == (usage.input_tokens, usage.output_tokens)
    assert (summary.cached_prompt_tokens, summary.successful_requests) == (
        usage.cache_read_tokens,
        usage.requests,
    )

    # a re-run of the finished kickoff makes no call and counts nothing more
    call_log.clear()
    again, _ = metered_crew(native=native, callbacks=[durable_kickoff])
    again.kickoff(inputs=INPUTS)
    assert call_log == []
    assert engine.get_workflow_status(workflow_id).usage == usage


def test_an_llm_that_reports_nothing_records_its_model_only(engine: Engine) -> None:
    crew = research_crew(callbacks=[durable_kickoff])  # ScriptedLLM: no usage reported
    crew.kickoff(inputs=INPUTS)

    usage = engine.get_workflow_status(crew_workflow_id(crew, INPUTS)).usage
    assert usage is not None
    assert usage.model_calls == 4 and usage.requests == 4
    assert usage.tokens == 0 and usage.unknown_tokens == 4  # unknown, not zero
    assert usage.cost_usd == 0 and usage.unpriced == 4
    assert set(usage.by_model) == {"scripted"}


@pytest.mark.parametrize(
    ("model", "provider", "extra"),
    [
        ("gpt-4o", None, {}),
        ("gpt-4o", "openai", {}),
        ("openai/gpt-4o", None, {"base_url": "http://127.0.0.1:9/v1"}),
        ("gpt-4o", "nobody-knows", {}),
    ],
    ids=["no-provider", "default-provider", "other-server", "unknown-provider"],
)
def test_cost_is_unknown_unless_it_can_be_priced_reliably(
    engine: Engine, model: str, provider: str | None, extra: dict[str, Any]
) -> None:
    crew, llm = metered_crew(model=model, provider=provider, callbacks=[durable_kickoff])
    for key, value in extra.items():
        setattr(llm, key, value)
    crew.kickoff(inputs=INPUTS)

    usage = engine.get_workflow_status(crew_workflow_id(crew, INPUTS)).usage
    assert usage is not None
    assert usage.tokens == 4 * (PROMPT_TOKENS + COMPLETION_TOKENS)  # tokens are known
    # a custom LLM whose provider is BaseLLM's default, an OpenAI-compatible server of another
    # kind, a provider genai-prices does not know: no price is guessed
    assert usage.unpriced == 4 and usage.cost_usd == 0
    assert set(usage.by_model) == {"gpt-4o"}


def test_kickoffs_inside_a_workflow_count_in_its_tree(engine: Engine, call_log: list[str]) -> None:
    @workflow(name="crew_usage_parent")
    def parent() -> int:
        first, _ = metered_crew(callbacks=[durable_kickoff])
        second, _ = metered_crew(callbacks=[durable_kickoff])
        first.kickoff(inputs={"topic": "AI"})
        second.kickoff(inputs={"topic": "databases"})
        return 2

    with workflow_options(workflow_id="crew-parent"):
        parent()

    children = [s for s in engine.list_workflows() if s.parent_workflow_id == "crew-parent"]
    assert len(children) == 2 and all(c.usage is not None and c.usage.model_calls == 4 for c in children)
    tree = engine.get_workflow_status("crew-parent").usage
    assert tree is not None and tree.model_calls == 8
    assert tree.input_tokens == 8 * PROMPT_TOKENS and tree.cost_usd == pytest.approx(8 * CALL_PRICE)
    assert engine.usage(group_by="name")["crew_usage_parent"].model_calls == 8


def test_planning_is_one_model_call_with_the_usage_of_the_planners_llm_calls(
    engine: Engine, call_log: list[str]
) -> None:
    crew, _ = metered_crew(callbacks=[durable_kickoff])
    crew.planning = True
    crew.planning_llm = MeteredLLM(model="openai/gpt-4o")
    crew.kickoff(inputs=INPUTS)

    planner_calls = [e for e in call_log if e.startswith("llm:") and e not in LLM_CALLS]
    assert planner_calls  # the planner asked its LLM
    usage = engine.get_workflow_status(crew_workflow_id(crew, INPUTS)).usage
    assert usage is not None
    assert usage.model_calls == 5  # the planning step and the four agent calls
    assert usage.requests == 4 + len(planner_calls)
    assert usage.input_tokens == (4 + len(planner_calls)) * PROMPT_TOKENS
    assert usage.unknown_tokens == 0 and usage.unpriced == 0


# -- budgets -----------------------------------------------------------------------------------


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as error:
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def _wait_for(engine: Engine, workflow_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.workflows.get(workflow_id) is not None:
            return
        time.sleep(0.02)
    raise AssertionError(f"{workflow_id} did not start")


@pytest.mark.parametrize("form", ["instrument", "workflow_options"])
def test_a_budget_pause_waits_durably_and_raise_budget_resumes_the_kickoff(
    engine: Engine, call_log: list[str], form: str
) -> None:
    crew, _ = metered_crew(callbacks=[durable_kickoff])
    budget = Budget(max_tokens=2 * (PROMPT_TOKENS + COMPLETION_TOKENS))  # reached after two calls
    if form == "instrument":
        instrument(crew, budget=budget)
        thread, result = _in_thread(lambda: crew.kickoff(inputs=INPUTS))
    else:

        def kickoff() -> Any:
            with workflow_options(budget=budget):
                return crew.kickoff(inputs=INPUTS)

        thread, result = _in_thread(kickoff)
    workflow_id = crew_workflow_id(crew, INPUTS)
    _wait_for(engine, workflow_id)

    status = wait_until_waiting(engine, workflow_id)
    assert status.waiting is not None and status.waiting.kind == "budget"
    assert "max_tokens=240" in (status.waiting.detail or "")
    assert _llm_calls(call_log) == LLM_CALLS[:2]  # the third call was not made
    assert thread.is_alive()  # kickoff() blocks while its kickoff is paused

    engine.raise_budget(workflow_id, max_tokens=10_000)
    thread.join(60)
    assert not thread.is_alive() and "error" not in result, result
    assert result["value"].raw == "Write done ['agents work' is correct]"
    assert _llm_calls(call_log) == LLM_CALLS  # each LLM call made once
    final = engine.get_workflow_status(workflow_id)
    assert final.status == "SUCCESS" and final.usage is not None and final.usage.model_calls == 4
    names = [s.name for s in engine.list_steps(workflow_id)]
    assert names.count("durable.budget") == 4 and names.count("crewai.llm") == 4


@pytest.mark.parametrize("asynchronous", [False, True], ids=["kickoff", "akickoff"])
def test_a_fail_budget_ends_the_kickoff_with_budget_exceeded(
    engine: Engine, call_log: list[str], asynchronous: bool
) -> None:
    crew, _ = metered_crew(callbacks=[durable_kickoff])
    instrument(crew, budget=Budget(max_model_calls=3, on_exceeded="fail"))

    with pytest.raises(BudgetExceeded, match="max_model_calls=3"):
        if asynchronous:
            asyncio.run(crew.akickoff(inputs=INPUTS))
        else:
            crew.kickoff(inputs=INPUTS)

    # CrewAI's task retries did not ask the budget (or the LLM) again
    assert _llm_calls(call_log) == LLM_CALLS[:3]
    status = engine.get_workflow_status(crew_workflow_id(crew, INPUTS))
    assert status.status == "ERROR" and isinstance(status.error, BudgetExceeded)
    assert status.usage is not None and status.usage.model_calls == 3
    assert [s.name for s in engine.list_steps(status.workflow_id)].count("durable.budget") == 4

    # the recorded error is the kickoff's outcome: running it again raises it, calling nothing
    call_log.clear()
    again, _ = metered_crew(callbacks=[durable_kickoff])
    with pytest.raises(BudgetExceeded):
        if asynchronous:
            asyncio.run(again.akickoff(inputs=INPUTS))
        else:
            again.kickoff(inputs=INPUTS)
    assert call_log == []


def test_a_kickoff_named_by_the_caller_keeps_the_crews_budget(engine: Engine, call_log: list[str]) -> None:
    crew, _ = metered_crew(callbacks=[durable_kickoff])
    instrument(crew, budget=Budget(max_model_calls=1, on_exceeded="fail"))
    with workflow_options(workflow_id="named-kickoff"), pytest.raises(BudgetExceeded):
        crew.kickoff(inputs=INPUTS)
    assert _llm_calls(call_log) == LLM_CALLS[:1]
    assert engine.get_workflow_status("named-kickoff").status == "ERROR"


def test_a_budget_refuses_a_delegated_coworkers_call(engine: Engine, call_log: list[str]) -> None:
    delegate = "Delegate work to coworker"
    plans: dict[str, Any] = {
        "Crew Manager:Research": [
            (delegate, {"task": "Research AI", "context": "facts", "coworker": "Researcher"})
        ],
        "Researcher:Research": [("search", {"query": "AI agents"})],
    }
    crew, _ = metered_crew(process=Process.hierarchical, plans=plans, callbacks=[durable_kickoff])
    instrument(crew, budget=Budget(max_model_calls=2, on_exceeded="fail"))

    with pytest.raises(BudgetExceeded):
        crew.kickoff(inputs=INPUTS)

    # manager, coworker, the coworker's tool; the coworker's second call is refused inside the
    # delegation, and neither the coworker nor the manager retries
    assert call_log == ["llm:Research:Crew Manager", "llm:Research:Researcher", "tool:search:AI agents"]
    [status] = engine.list_workflows()
    assert status.status == "ERROR" and isinstance(status.error, BudgetExceeded)
    assert status.usage is not None and status.usage.model_calls == 2


def test_an_enclosing_workflow_budget_governs_its_kickoffs(engine: Engine, call_log: list[str]) -> None:
    @workflow(name="crew_budget_parent")
    def parent() -> str:
        crew, _ = metered_crew(callbacks=[durable_kickoff])
        instrument(crew, budget=Budget(max_model_calls=100))  # the parent's budget wins
        return crew.kickoff(inputs=INPUTS).raw

    with (
        workflow_options(workflow_id="budgeted-parent", budget=Budget(max_model_calls=1, on_exceeded="fail")),
        pytest.raises(BudgetExceeded),
    ):
        parent()
    assert _llm_calls(call_log) == LLM_CALLS[:1]
    assert engine.get_workflow_status("budgeted-parent").usage.model_calls == 1


# -- real process crashes ----------------------------------------------------------------------


def _app_env(log: Path, crash: str | None = None) -> dict[str, str | None]:
    return {"CALL_LOG": str(log), "CRASH_IN_TOOL": crash}


def _run_app(
    database_url: str, log: Path, *args: str, crash: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_script(
        HERE.parent / "apps" / "crewai_usage_app.py",
        database_url,
        *args,
        env=_app_env(log, crash),
        import_paths=[HERE, ADAPTERS],
    )


def _spawn_app(database_url: str, log: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CALL_LOG": str(log)}
    env.pop("CRASH_IN_TOOL", None)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ADAPTERS), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.Popen(
        [sys.executable, str(HERE.parent / "apps" / "crewai_usage_app.py"), database_url, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(stdout: str) -> dict[str, Any]:
    [line] = [line for line in stdout.splitlines() if line.startswith("RESULT:")]
    return json.loads(line.removeprefix("RESULT:"))


@pytest.mark.crash
def test_a_crash_and_resume_count_each_llm_call_once(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    crashed = _run_app(database_url, log, crash="fact_check")
    assert crashed.returncode == 17, crashed.stderr[-3000:]
    assert [e for e in read_log(log) if e.startswith("llm:")] == LLM_CALLS[:3]

    resumed = _run_app(database_url, log)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = _result(resumed.stdout)
    # task 1 and the first call of task 2 replayed from the record (not counted again); one live call
    assert [e for e in read_log(log) if e.startswith("llm:")] == LLM_CALLS
    assert result["usage"] == {"model_calls": 4, "input": 4 * PROMPT_TOKENS, "output": 4 * COMPLETION_TOKENS}


@pytest.mark.crash
def test_a_budget_pause_survives_sigkill_and_a_rerun_resumes_after_raise_budget(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    workflow_id = crew_workflow_id(metered_crew()[0], INPUTS)
    worker = _spawn_app(database_url, log, "budget")
    try:
        with Engine(database_url).connect() as client:
            _wait_for(client, workflow_id)
            status = wait_until_waiting(client, workflow_id, timeout_seconds=60)
            assert status.waiting is not None and status.waiting.kind == "budget"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert [e for e in read_log(log) if e.startswith("llm:")] == LLM_CALLS[:2]

    rerun = _spawn_app(database_url, log, "budget")  # the same kickoff again: paused where it stopped
    try:
        with Engine(database_url).connect() as client:
            time.sleep(1.0)
            status = wait_until_waiting(client, workflow_id, timeout_seconds=60)
            assert status.waiting is not None and status.waiting.kind == "budget"
            assert status.usage is not None and status.usage.model_calls == 2
            client.raise_budget(workflow_id, max_model_calls=10)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err[-3000:]
    finally:
        if rerun.poll() is None:
            rerun.kill()
    result = _result(out)
    assert result["raw"] == "Write done ['agents work' is correct]"
    assert [e for e in read_log(log) if e.startswith("llm:")] == LLM_CALLS
    assert result["usage"]["model_calls"] == 4
