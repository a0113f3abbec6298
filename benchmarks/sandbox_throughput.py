"""Sandbox throughput: runs/s for a trivial program and a 10-test MBPP-style problem, payoff's
fork server and bubblewrap backends side by side with a naive
``subprocess.run([python, "-c", code])`` under the same rlimits. Medians over repeats.

    .venv/bin/python benchmarks/sandbox_throughput.py [--runs 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

from payoff.sandbox import Limits, run
from payoff.sandbox.client import bwrap_path
from payoff.sandbox.limits import apply_rlimits

TRIVIAL = "print(1)"
MBPP = """
def similar_elements(a, b):
    return tuple(sorted(set(a) & set(b)))
""" + "\n".join(
    f"assert similar_elements(({i}, {i + 1}, 5), (5, {i + 1}, {100 + i})) == tuple(sorted({{5, {i + 1}}}))" for i in range(10)
) + "\nprint('passed')"

LIMITS = Limits(timeout_s=10, cpu_s=10, memory_mb=512, max_procs=32)


def naive(code: str) -> None:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=LIMITS.timeout_s,
                            preexec_fn=lambda: apply_rlimits(LIMITS))
    assert result.returncode == 0, result.stderr


def sandboxed(backend: str):
    def go(code: str) -> None:
        result = run(code, limits=LIMITS, backend=backend)
        assert result.ok, result.stderr

    return go


def rate(fn, code: str, runs: int, repeats: int) -> float:
    fn(code)  # warm up (starts the fork server)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(runs):
            fn(code)
        samples.append(runs / (time.perf_counter() - start))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runners = [("naive subprocess.run(python -c)", naive), ("payoff fork server", sandboxed("fork"))]
    if bwrap_path():
        runners.append(("payoff bubblewrap", sandboxed("bwrap")))
    table = Table(title=f"Sandbox runs/s, median of {args.repeats} x {args.runs} runs, one caller")
    for column in ("runner", "trivial runs/s", "vs naive", "MBPP 10 tests runs/s", "vs naive"):
        table.add_column(column, justify="left" if column == "runner" else "right")
    base = {}
    for name, fn in runners:
        trivial = rate(fn, TRIVIAL, args.runs, args.repeats)
        mbpp = rate(fn, MBPP, args.runs, args.repeats)
        base.setdefault("trivial", trivial)
        base.setdefault("mbpp", mbpp)
        table.add_row(name, f"{trivial:,.0f}", f"{trivial / base['trivial']:.1f}×", f"{mbpp:,.0f}", f"{mbpp / base['mbpp']:.1f}×")
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
