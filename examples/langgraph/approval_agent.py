"""A durable LangGraph agent: a tool call that needs approval, a crash, an automatic resume, a fork.

Offline by default (a scripted chat model), so it runs anywhere:

    python examples/langgraph/approval_agent.py

What happens:
  1. A worker process asks the agent about the weather. The model (a durable step) asks to call
     the `get_weather` tool; an approval node interrupts, and the run waits durably
     (`engine.list_workflows(waiting=True)` lists it).
  2. The worker approves with `Command(resume=...)`; the tool runs (a durable step) and the
     process dies right after it, inside the node (a crash: nothing is cleaned up).
  3. A new worker process builds the same graph and launches the engine, which resumes the
     thread by itself: the tool's recorded result is replayed, not fetched again, and the
     model writes the answer.
  4. Time travel: the thread is forked at the approval, the tool call is edited (another city)
     and the fork runs to its own answer; the original branch is untouched.

With a real model (needs `pip install langchain` plus the provider package and its API key):

    python examples/langgraph/approval_agent.py --model openai:gpt-4o-mini

The runs are recorded in `approval_agent.db` in the current directory (or `--database-url`, or env
`DURABLE_DATABASE_URL`); `durable workflows show weather-1 --database-url sqlite:///approval_agent.db`
shows the run afterwards. Running the demo again uses a new thread (weather-2, ...) and plays out
the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypedDict

from durable_langgraph import DurableCheckpointer, DurableGraph, durable_runnable, step
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt

from durable_core import Engine, workflow_options

DEFAULT_URL = "sqlite:///approval_agent.db"  # a file in the current directory


def thread(run: str) -> Any:
    """The LangGraph config of a demo run: its thread id is the run's name (weather-1, ...)."""
    return {"configurable": {"thread_id": run}}


class ScriptedChatModel(BaseChatModel):
    """Plays a tool-calling model offline: ask for the weather tool, then answer from its result."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        log_call("model call")
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(content=f"Here is the forecast: {last.content}")
        else:
            call = {"name": "get_weather", "args": {"city": "Berlin"}, "id": "call-1", "type": "tool_call"}
            reply = AIMessage(content="", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=reply)])


def log_call(entry: str) -> None:
    """Record an external call, to show which ones a resumed run repeats (none)."""
    with Path(os.environ.get("EXAMPLE_CALL_LOG", os.devnull)).open("a") as f:
        f.write(entry + "\n")


@step(name="get_weather")  # memoized per node task: a re-executed tool node replays it
def fetch_weather(city: str) -> str:
    log_call(f"weather API called for {city}")
    return f"{city}: 21 degrees, light wind"


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    result = fetch_weather(city)
    if os.environ.get("EXAMPLE_CRASH_AFTER_TOOL") == "1":
        print("  [worker] crashing inside the tool node, right after the weather call", flush=True)
        os._exit(17)
    return result


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build(engine: Engine, model_name: str | None) -> DurableGraph:
    chat: Any = ScriptedChatModel()
    if model_name:
        from langchain.chat_models import init_chat_model  # type: ignore[import-not-found]

        chat = init_chat_model(model_name)
    model = durable_runnable(chat.bind_tools([get_weather]), name="model")

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def approve(state: State) -> Command[Any]:
        call = state["messages"][-1].tool_calls[0]  # type: ignore[union-attr]
        answer = interrupt({"tool": call["name"], "args": call["args"], "question": "Run this tool call?"})
        if answer == "approve":
            return Command(goto="tools")
        return Command(goto=END, update={"messages": [AIMessage(content="The tool call was rejected.")]})

    def route(state: State) -> str:
        last = state["messages"][-1]
        return "approve" if isinstance(last, AIMessage) and last.tool_calls else END

    builder: StateGraph[Any] = StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("approve", approve, destinations=("tools", END))
    builder.add_node("tools", ToolNode([get_weather]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["approve", END])
    builder.add_edge("tools", "agent")
    graph = builder.compile(checkpointer=DurableCheckpointer(engine))
    return DurableGraph(graph, name="weather-agent")  # registered before engine.launch()


def worker(database_url: str, phase: str, model_name: str | None, run: str) -> None:
    engine = Engine(database_url, executor_id="example-worker")  # a restarted worker keeps its id
    agent = build(engine, model_name)
    engine.launch()  # in the resume phase this alone resumes the interrupted thread
    try:
        if phase == "start":
            with workflow_options(workflow_id=run):  # the durable run's id (default: derived from the thread)
                question = {"messages": [HumanMessage(content="What's the weather in Berlin?")]}
                out = agent.invoke(question, thread(run))
            print(f"  [worker] paused for approval: {out['__interrupt__'][0].value}")
            waiting = [w.workflow_id for w in engine.list_workflows(waiting=True, name=agent.workflow_name)]
            print(f"  [worker] waiting runs: {waiting}")
            os.environ["EXAMPLE_CRASH_AFTER_TOOL"] = "1"
            agent.invoke(Command(resume="approve"), thread(run))  # the process dies inside the tool node
        else:
            engine.retrieve_workflow(run).get_result(timeout_seconds=60)
            final = agent.get_state(thread(run)).values["messages"][-1].content
            print(f"  [worker] resumed by engine.launch() and finished: {final!r}")
    finally:
        engine.shutdown()


def fork(database_url: str, model_name: str | None, run: str) -> None:
    with Engine(database_url, executor_id="example-forker") as engine:
        agent = build(engine, model_name)
        history = list(agent.get_state_history(thread(run)))
        at_approval = next(h for h in history if h.next == ("approve",))
        call = dict(at_approval.values["messages"][-1].tool_calls[0])
        call["args"] = {"city": "Paris"}
        edited = AIMessage(content="", tool_calls=[call], id=at_approval.values["messages"][-1].id)
        fork_config = agent.update_state(at_approval.config, {"messages": [edited]})
        out = agent.invoke(None, fork_config)  # runs until the approval interrupt of the fork
        print(f"  [fork] edited tool call awaits approval: {out['__interrupt__'][0].value['args']}")
        out = agent.invoke(Command(resume="approve"), thread(run))
        print(f"  [fork] answer: {out['messages'][-1].content!r}")
        original = agent.get_state(history[0].config).values["messages"][-1].content
        print(f"  [original branch] still: {original!r}")


def next_run(database_url: str) -> str:
    """weather-1, or the next name no earlier run of this demo used in this database."""
    with Engine(database_url, app_version="example-observer") as engine:
        n = 1
        while engine.list_workflows(workflow_ids=[f"weather-{n}"]):
            n += 1
    return f"weather-{n}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a real model for init_chat_model, e.g. openai:gpt-4o-mini")
    parser.add_argument(
        "--database-url",
        help=f"where the runs are recorded (default: env DURABLE_DATABASE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument("--phase", choices=["start", "resume"], help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    database_url = args.database_url or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_URL
    if args.phase:
        worker(database_url, args.phase, args.model, args.run)
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr] - in order with the workers
    print(f"database: {database_url}")
    run = next_run(database_url)
    if run != "weather-1":
        print(f"(earlier runs of this demo are in the database; this one is {run}, on its own thread)")
    with tempfile.TemporaryDirectory(prefix="lg-example-") as tmp:  # the call log; removed at the end
        call_log = Path(tmp) / "calls.log"
        env = {**os.environ, "EXAMPLE_CALL_LOG": str(call_log)}
        base = [sys.executable, __file__, "--database-url", database_url, "--run", run] + (
            ["--model", args.model] if args.model else []
        )
        print("1-2. worker: ask, pause for approval, approve, crash inside the tool node")
        first = subprocess.run([*base, "--phase", "start"], env=env, check=False)
        print(f"     worker exited with code {first.returncode} (17 = the simulated crash)")
        print("3. a new worker launches the engine: the thread resumes by itself")
        subprocess.run([*base, "--phase", "resume"], env=env, check=True)
        calls = call_log.read_text().splitlines()
        print(f"   external calls across both processes: {json.dumps(calls)}")
        print("4. time travel: fork at the approval with another city")
        fork(database_url, args.model, run)
    print(f"\nsee the run again: durable workflows show {run} --database-url {database_url}")


if __name__ == "__main__":
    main()
