#!/usr/bin/env python3
"""LangGraph baseline for `conclave bench orchestration`.

Runs the same topology as Conclave's "full" workflow, plan → (retrieve ∥ reason) → validate →
respond, as a LangGraph StateGraph with instant node functions and an in-memory checkpointer, so
the numbers are the framework's own cost: scheduling, state channels, checkpoints.

Concurrency 1 uses the sync `graph.invoke`; concurrency C > 1 runs C asyncio workers, each calling
`graph.ainvoke` N/C times in sequence (as the Swift benchmark runs C tasks of N/C runs each).
Latencies are per run (time.perf_counter); percentiles use the same nearest-rank rule as the
Swift side: sorted[min(n - 1, int(n * p))].

Prints exactly one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import sys
import time
import uuid
from typing import TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

WARMUP_RUNS = 200
QUESTION = "How many days of annual leave do full-time employees get?"


class State(TypedDict, total=False):
    question: str
    query: str
    passages: list[str]
    form: str
    facts: list[str]
    answer: str


# Counts validate calls so the script can check that validate ran exactly once per run (i.e. the
# join on ["retrieve", "reason"] fired once, after both branches, not once per branch).
validate_calls = 0


def plan(state: State) -> dict:
    return {"query": state["question"].lower()}


def retrieve(state: State) -> dict:
    return {"passages": [
        "Full-time employees receive 25 days of annual leave per calendar year.",
        "Part-time employees receive leave pro rata to their contracted hours.",
    ]}


def reason(state: State) -> dict:
    return {"form": "lookup: annual leave, full-time"}


def validate(state: State) -> dict:
    global validate_calls
    validate_calls += 1
    passages, form = state.get("passages"), state.get("form")
    if not passages or not form:
        raise RuntimeError("validate ran before both retrieve and reason had written their results")
    return {"facts": [passages[0]]}


def respond(state: State) -> dict:
    return {"answer": "Full-time employees get 25 days of annual leave. " + state["facts"][0]}


def build_graph():
    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("retrieve", retrieve)
    graph.add_node("reason", reason)
    graph.add_node("validate", validate)
    graph.add_node("respond", respond)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "retrieve")
    graph.add_edge("plan", "reason")
    graph.add_edge(["retrieve", "reason"], "validate")  # waits for both branches
    graph.add_edge("validate", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=InMemorySaver())


def new_config() -> dict:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def check_result(result: dict) -> None:
    if not result.get("answer") or len(result.get("passages", [])) != 2:
        raise RuntimeError(f"unexpected final state: {result!r}")


def run_sync(graph, runs: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    start = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        result = graph.invoke({"question": QUESTION}, config=new_config())
        latencies.append((time.perf_counter() - t0) * 1000)
        check_result(result)
    return latencies, time.perf_counter() - start


async def run_async(graph, runs: int, concurrency: int) -> tuple[list[float], float]:
    per_worker = max(1, runs // concurrency)

    async def worker() -> list[float]:
        samples: list[float] = []
        for _ in range(per_worker):
            t0 = time.perf_counter()
            result = await graph.ainvoke({"question": QUESTION}, config=new_config())
            samples.append((time.perf_counter() - t0) * 1000)
            check_result(result)
        return samples

    start = time.perf_counter()
    chunks = await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return [x for chunk in chunks for x in chunk], elapsed


def measure(graph, runs: int, concurrency: int) -> tuple[list[float], list[float], float]:
    """Warm-up latencies, measured latencies and the measured wall time, on one event loop."""
    if concurrency == 1:
        warm, _ = run_sync(graph, WARMUP_RUNS)
        return (warm, *run_sync(graph, runs))

    async def both():
        warm, _ = await run_async(graph, WARMUP_RUNS, concurrency)
        return (warm, *await run_async(graph, runs, concurrency))

    return asyncio.run(both())


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000, help="runs per concurrency level (default 2000)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64], help="concurrency levels (default 1 64)")
    args = parser.parse_args()
    if args.runs < 1 or any(c < 1 for c in args.concurrency):
        parser.error("--runs and --concurrency must be positive")

    version = importlib.metadata.version("langgraph")
    graph = build_graph()
    results = []
    for level in args.concurrency:
        calls_before = validate_calls
        print(f"langgraph {version}: c={level} warming up ({WARMUP_RUNS} runs)", file=sys.stderr, flush=True)
        warm, latencies, elapsed = measure(graph, args.runs, level)
        completed = len(warm) + len(latencies)
        if validate_calls - calls_before != completed:
            raise RuntimeError(f"validate ran {validate_calls - calls_before} times for {completed} runs")
        ordered = sorted(latencies)
        entry = {
            "system": "langgraph",
            "concurrency": level,
            "runs": len(ordered),
            "p50_ms": percentile(ordered, 0.5),
            "p99_ms": percentile(ordered, 0.99),
            "runs_per_second": len(ordered) / elapsed,
        }
        results.append(entry)
        print(f"langgraph c={level:<3d} p50 {entry['p50_ms']:.3f} ms  p99 {entry['p99_ms']:.3f} ms  "
              f"{entry['runs_per_second']:.0f} runs/s  (validate once per run: {completed} calls)",
              file=sys.stderr, flush=True)

    json.dump({"system": "langgraph", "langgraph_version": version, "results": results}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
