"""A scripted, offline CrewAI setup shared by the CrewAI adapter tests and their crash subprocesses.

`ScriptedLLM` answers from the request alone (the task and the tool results so far), never from
a call counter, so a resumed process that replays the first calls from the record gets the same
answers for the calls it makes live. Every LLM and tool call is appended to a call log (a file
when `CALL_LOG` is set, for subprocesses), which is what the tests assert on.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crewai import Agent, BaseLLM, Crew, Process, Task
from crewai.tools import tool
from pydantic import BaseModel, Field

_lock = threading.Lock()
CALLS: list[str] = []


def log_call(entry: str) -> None:
    """Record one LLM or tool call (in memory, and in $CALL_LOG for subprocess tests)."""
    with _lock:
        CALLS.append(entry)
        path = os.environ.get("CALL_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(entry + "\n")


def read_log(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


# Which tool calls each task makes, by a word of its description. A list entry is one LLM turn:
# a tuple is one call, a list of tuples is several calls in one answer (parallel, native only).
Plan = list[tuple[str, dict[str, Any]] | list[tuple[str, dict[str, Any]]]]


def _task_word(from_task: Any, messages: Any) -> str:
    text = from_task.description if from_task is not None else json.dumps(messages, default=str)
    for word in ("Research", "Write", "Review", "Manage", "Summarize", "Plan", "Native"):
        if word.lower() in text.lower():
            return word
    return "Other"


def _contents(messages: Any) -> list[dict[str, Any]]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [m for m in messages if isinstance(m, dict)]


class ScriptedLLM(BaseLLM):
    """Answers per task from `plans`; ReAct text unless `native`, then OpenAI-style tool calls."""

    model: str = "scripted"
    native: bool = False
    plans: dict[str, Plan] = Field(default_factory=dict)
    finals: dict[str, str] = Field(default_factory=dict)

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        return self._answer(messages, tools, from_task, from_agent, response_model)

    async def acall(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        return self._answer(messages, tools, from_task, from_agent, response_model)

    def _answer(self, messages: Any, tools: Any, from_task: Any, from_agent: Any, response_model: Any) -> Any:
        word = _task_word(from_task, messages)
        role = getattr(from_agent, "role", "?")
        log_call(f"llm:{word}:{role}")
        if word in FAILING_LLM_TASKS:
            raise RuntimeError("provider unavailable")
        chat = [m for m in _contents(messages) if m.get("role") != "system"]
        plan = self.plans.get(f"{role}:{word}", self.plans.get(word, []))
        if self.native and tools:
            turn = sum(1 for m in chat if m.get("role") == "assistant" and m.get("tool_calls"))
            if turn < len(plan):
                entry = plan[turn]
                calls = entry if isinstance(entry, list) else [entry]
                return [
                    {
                        "id": f"call_{turn}_{i}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                    for i, (name, args) in enumerate(calls)
                ]
            results = [str(m.get("content")) for m in chat if m.get("role") == "tool"]
            return self._final(word, results)
        observations = [
            str(m.get("content")).split("Observation:", 1)[1].strip()
            for m in chat
            if "Observation:" in str(m.get("content"))
        ]
        if response_model is not None:
            return _structured(response_model, word, observations)
        turn = len(observations)
        if turn < len(plan):
            entry = plan[turn]
            name, args = entry[0] if isinstance(entry, list) else entry
            return f"Thought: I need {name}.\nAction: {name}\nAction Input: {json.dumps(args)}"
        revised = any(REVISION_REQUEST in str(m.get("content")) for m in chat)
        return (
            "Thought: I know the answer.\nFinal Answer: "
            + self._final(word, observations)
            + (" (revised)" if revised else "")
        )

    def _final(self, word: str, observations: list[str]) -> str:
        prefix = self.finals.get(word, f"{word} done")
        return f"{prefix} [{' | '.join(o.splitlines()[0][:60] for o in observations)}]"

    def supports_function_calling(self) -> bool:
        return self.native

    def get_context_window_size(self) -> int:
        return 200_000

    def get_input_tokens_count(self, *args: Any, **kwargs: Any) -> int:
        return 0


class SimulatedCrash(BaseException):
    """Stands for a process crash in in-process tests: nothing catches it, nothing is recorded."""


INPUTS = {"topic": "AI"}
# The recorded steps of a research_crew() kickoff: per task, its marker, LLM and tool calls, output.
KICKOFF_STEPS = [
    "crewai.task",
    "crewai.llm",
    "crewai.tool.search",
    "crewai.llm",
    "crewai.task.output",
    "crewai.task",
    "crewai.llm",
    "crewai.tool.fact_check",
    "crewai.llm",
    "crewai.task.output",
]
REVISION_REQUEST = "cite your sources"  # human feedback that makes the scripted writer revise its answer
RAISE_IN_TOOL: set[str] = set()
FAILING_LLM_TASKS: set[str] = set()  # task words whose LLM calls raise, like a provider outage


def _structured(response_model: Any, word: str, observations: list[str]) -> Any:
    """A structured answer: the planner's plan, or a `Report`."""
    if "list_of_plans_per_task" in response_model.model_fields:
        plans = [{"task_number": n, "task": f"task {n}", "plan": f" [plan {n}: be brief]"} for n in (1, 2)]
        return response_model.model_validate({"list_of_plans_per_task": plans})
    return response_model.model_validate({"title": f"{word} report", "points": observations or ["none"]})


def crash_if(tool_name: str) -> None:
    """Kill this process inside the tool when $CRASH_IN_TOOL names it (a real crash: no cleanup).

    In-process tests put the tool's name in `RAISE_IN_TOOL` instead, to raise `SimulatedCrash`.
    """
    if os.environ.get("CRASH_IN_TOOL") == tool_name:
        log_call(f"crash:{tool_name}")
        os._exit(17)
    if tool_name in RAISE_IN_TOOL:
        RAISE_IN_TOOL.discard(tool_name)
        log_call(f"crash:{tool_name}")
        raise SimulatedCrash(tool_name)


@tool("search")
def search(query: str) -> str:
    """Search the web for a query."""
    log_call(f"tool:search:{query}")
    crash_if("search")
    return f"results for {query}"


@tool("fact_check")
def fact_check(claim: str) -> str:
    """Check a claim against trusted sources."""
    log_call(f"tool:fact_check:{claim}")
    crash_if("fact_check")
    return f"'{claim}' is correct"


@tool("lookup")
def lookup(query: str, delay: float = 0.0) -> str:
    """Look a query up in the archive (slowly, when asked to)."""
    time.sleep(delay)
    log_call(f"tool:lookup:{query}")
    return f"archive entry for {query}"


class Report(BaseModel):
    title: str
    points: list[str]


def research_crew(
    *,
    native: bool = False,
    plans: dict[str, Plan] | None = None,
    callbacks: list[Callable[..., Any]] | None = None,
    task_callback: Callable[..., Any] | None = None,
    human_input: bool = False,
    process: Process = Process.sequential,
    write_description: str = "Write a report on {topic}",
    writer_backstory: str = "Clear.",
) -> Crew:
    """Two agents, two tasks: research (search) then write (fact_check), a tool call in each task."""
    llm = ScriptedLLM(
        model="scripted",
        native=native,
        plans=plans
        if plans is not None
        else {
            "Research": [("search", {"query": "AI agents"})],
            "Write": [("fact_check", {"claim": "agents work"})],
        },
    )
    researcher = Agent(
        role="Researcher", goal="Find facts", backstory="Thorough.", llm=llm, tools=[search, lookup]
    )
    writer = Agent(
        role="Writer", goal="Write reports", backstory=writer_backstory, llm=llm, tools=[fact_check]
    )
    research = Task(description="Research {topic}", expected_output="Facts", agent=researcher)
    write = Task(
        description=write_description,
        expected_output="A report",
        agent=writer,
        context=[research],
        human_input=human_input,
    )
    kwargs: dict[str, Any] = {}
    if process == Process.hierarchical:
        kwargs["manager_llm"] = llm
        research.agent = None
        write.agent = None
    return Crew(
        agents=[researcher, writer],
        tasks=[research, write],
        process=process,
        before_kickoff_callbacks=list(callbacks or []),
        task_callback=task_callback,
        **kwargs,
    )


# -- an LLM that reports usage the way CrewAI's providers do (usage and budget tests) ---------------

PROMPT_TOKENS = 100
COMPLETION_TOKENS = 20
CACHED_TOKENS = 30


class MeteredLLM(ScriptedLLM):
    """A `ScriptedLLM` that reports each response's usage like CrewAI's native providers do.

    Each answer passes an OpenAI-shaped ``usage`` dict to `BaseLLM._track_token_usage_internal`,
    the method every CrewAI provider (and the LiteLLM-backed `LLM`) calls with the provider
    response's usage, and from which `Crew.usage_metrics` is built.
    """

    def _answer(self, messages: Any, tools: Any, from_task: Any, from_agent: Any, response_model: Any) -> Any:
        answer = super()._answer(messages, tools, from_task, from_agent, response_model)
        self._track_token_usage_internal(
            {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
            }
        )
        return answer


def metered_crew(
    *, model: str = "openai/gpt-4o", provider: str | None = None, **kwargs: Any
) -> tuple[Crew, MeteredLLM]:
    """`research_crew(...)` whose agents share one `MeteredLLM` (returned with the crew).

    The default model names its provider (``"openai/"``), so its calls can be priced.
    """
    crew = research_crew(**kwargs)
    scripted = crew.agents[0].llm
    assert isinstance(scripted, ScriptedLLM)
    extra: dict[str, Any] = {"provider": provider} if provider is not None else {}
    llm = MeteredLLM(model=model, native=scripted.native, plans=scripted.plans, **extra)
    for agent in crew.agents:
        agent.llm = llm
    if crew.manager_llm is not None:
        crew.manager_llm = llm
    return crew, llm
