"""Per-tool-call overhead of the `python` environment's sandboxed session against a fresh
process per call.

A trivial cell (``x = x + 1``, then its value printed) is run `--calls` times in one
`PythonSession` (persistent interpreter, state kept) and as many times as a tool call through
`PythonEnv` (the whole path an episode takes), and `--fresh` times as a fresh sandboxed
process per call (`payoff.sandbox.run`, the fork server) and as a plain ``python -c`` per call
(no sandbox). Reports the median and p99 wall time per call in milliseconds; each figure is the
median over `--repeats` runs.

    nice -n 5 python benchmarks/env_python_session.py [--calls 200] [--fresh 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from payoff.envs.python import PythonEnv, PythonSession
from payoff.sandbox import Limits, run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def session_calls(n: int) -> list[float]:
    session = PythonSession(Limits(timeout_s=10.0, cpu_s=60))
    try:
        session.run("x = 0")
        return timed(lambda: session.run("x = x + 1\nprint(x)"), n)
    finally:
        session.close()


def env_calls(n: int) -> list[float]:
    """The same cell as a tool call through the environment (JSON arguments, schema check, the
    per-call thread, the tool message)."""
    env = PythonEnv()
    env.reset({"prompt": "count"})
    code = "x = x + 1 if 'x' in dir() else 0\nprint(x)"
    call = {"id": "c", "type": "function", "function": {"name": "python", "arguments": json.dumps({"code": code})}}
    try:
        return timed(lambda: env.answer(call), n)
    finally:
        env.close()


def sandbox_calls(n: int) -> list[float]:
    run("pass")  # the fork server's start is not a per-call cost
    return timed(lambda: run("x = 0\nx = x + 1\nprint(x)", limits=Limits(timeout_s=10.0)), n)


def python_c_calls(n: int) -> list[float]:
    return timed(lambda: subprocess.run([sys.executable, "-c", "x = 0\nx = x + 1\nprint(x)"], capture_output=True, check=True), n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--fresh", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    kinds = {"session": (session_calls, args.calls), "env_tool_call": (env_calls, args.calls),
             "sandbox_run": (sandbox_calls, args.fresh), "python_c": (python_c_calls, args.fresh)}
    report = {}
    for name, (fn, n) in kinds.items():
        runs = [fn(n) for _ in range(args.repeats)]
        report[name] = {"calls": n, "median_ms": round(statistics.median(statistics.median(r) for r in runs), 3),
                        "p99_ms": round(statistics.median(percentile(r, 0.99) for r in runs), 3)}
    report["speedup_vs_sandbox_run"] = round(report["sandbox_run"]["median_ms"] / report["session"]["median_ms"], 1)
    report["speedup_vs_python_c"] = round(report["python_c"]["median_ms"] / report["session"]["median_ms"], 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
