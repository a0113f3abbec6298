"""Sandbox throughput: runs/s for a trivial program and a 10-test MBPP-style problem, payoff's fork
server (and bubblewrap backend) side by side with a naive ``subprocess.run([python, "-c", code])``
under the same rlimits (CPU, address space on top of a fresh interpreter, file size, open files,
no core) and wall deadline. Each configuration runs in a process of its own (the naive ones in
processes that import nothing of payoff), the configurations take turns round by round so load on
a shared machine falls on all of them alike, and the table shows medians.

The naive runner at its default (limits set in ``preexec_fn``, as one would write it) and at its
best sensible setting: ``python -I -S`` (no site import) with the limits set by the child itself
before it runs the program, which lets ``subprocess`` spawn without a Python-level fork.

    .venv/bin/python benchmarks/sandbox_throughput.py [--runs 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TRIVIAL = "print(1)"
MBPP = """
def similar_elements(a, b):
    return tuple(sorted(set(a) & set(b)))
""" + "\n".join(
    f"assert similar_elements(({i}, {i + 1}, 5), (5, {i + 1}, {100 + i})) == tuple(sorted({{5, {i + 1}}}))" for i in range(10)
) + "\nprint('passed')"

# The limits both sides apply (payoff's Limits defaults but a 10 s CPU limit).
TIMEOUT_S, CPU_S, MEMORY_MB, FILE_MB, OPEN_FILES = 10.0, 10, 512, 16, 64
SET_LIMITS = (
    "import resource as r\n"
    "def _limit(base):\n"
    f"    r.setrlimit(r.RLIMIT_CPU, ({CPU_S}, {CPU_S + 1}))\n"
    f"    for kind, value in ((r.RLIMIT_AS, base + {MEMORY_MB} * 2**20), (r.RLIMIT_FSIZE, {FILE_MB} * 2**20),\n"
    f"                        (r.RLIMIT_NOFILE, {OPEN_FILES}), (r.RLIMIT_CORE, 0)):\n"
    "        r.setrlimit(kind, (value, value))\n"
)


def _fresh_interpreter_size(flags: list[str]) -> int:
    probe = "import os; print(os.sysconf('SC_PAGE_SIZE') * int(open('/proc/self/statm').read().split()[0]))"
    return int(subprocess.run([sys.executable, *flags, "-c", probe], capture_output=True, text=True, check=True).stdout)


def runner(tool: str):
    if tool == "naive-default":
        namespace: dict = {}
        exec(SET_LIMITS, namespace)
        base = _fresh_interpreter_size([])

        def go(code: str) -> None:
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=TIMEOUT_S,
                                  preexec_fn=lambda: namespace["_limit"](base))
            assert done.returncode == 0, done.stderr
        return go
    if tool == "naive-best":
        prefix = SET_LIMITS + f"_limit({_fresh_interpreter_size(['-I', '-S'])})\ndel r, _limit\n"

        def go(code: str) -> None:
            done = subprocess.run([sys.executable, "-I", "-S", "-c", prefix + code], capture_output=True, timeout=TIMEOUT_S)
            assert done.returncode == 0, done.stderr
        return go
    from payoff.sandbox import Limits, run

    limits = Limits(timeout_s=TIMEOUT_S, cpu_s=CPU_S, memory_mb=MEMORY_MB, file_size_mb=FILE_MB, open_files=OPEN_FILES)
    backend = "bwrap" if tool == "payoff-bwrap" else "fork"

    def go(code: str) -> None:
        result = run(code, limits=limits, backend=backend)
        assert result.ok, result.stderr
    return go


def child(tool: str, runs: int) -> dict:
    go = runner(tool)
    rates = {}
    for name, code in (("trivial", TRIVIAL), ("mbpp", MBPP)):
        go(code)  # warm (starts the fork server)
        began = time.perf_counter()
        for _ in range(runs):
            go(code)
        rates[name] = runs / (time.perf_counter() - began)
    return rates


def machine() -> str:
    model = "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from peer_runs import report_result

        report_result(child(args.child, args.runs))
        return

    from peer_runs import medians, run_child
    from rich.console import Console
    from rich.table import Table

    from payoff.sandbox.client import bwrap_path

    tools = {"naive-default": "naive subprocess.run(python -c), limits in preexec_fn (default)",
             "naive-best": "naive subprocess.run(python -I -S -c), limits set in the child (best)",
             "payoff-fork": "payoff fork server"}
    if bwrap_path():
        tools["payoff-bwrap"] = "payoff bubblewrap"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"), os.environ.get("PYTHONPATH")]))}
    before = machine()
    results: dict[str, list[dict]] = {tool: [] for tool in tools}
    for _ in range(args.repeats):  # round by round: drift in the machine's load hits every runner
        for tool in tools:
            result = run_child([sys.executable, __file__, "--child", tool, "--runs", str(args.runs)], tool, env)
            if result is not None:
                results[tool].append(result)
    table_rows = medians(results, ["trivial", "mbpp"])
    if "naive-default" not in table_rows or "naive-best" not in table_rows:
        raise SystemExit("a naive runner failed in every round: see above")
    table = Table(title=f"Sandbox runs/s, median of {args.repeats} x {args.runs} runs, one caller, "
                        "each runner in its own process, rounds interleaved")
    for column in ("runner", "trivial runs/s", "vs naive default", "vs naive best", "MBPP 10 tests runs/s",
                   "vs naive default", "vs naive best"):
        table.add_column(column, justify="left" if column == "runner" else "right")
    default, best = table_rows["naive-default"], table_rows["naive-best"]
    for tool, label in tools.items():
        if tool not in table_rows:
            continue
        row = table_rows[tool]
        table.add_row(label, f"{row['trivial']:,.0f}", f"{row['trivial'] / default['trivial']:.1f}x",
                      f"{row['trivial'] / best['trivial']:.1f}x", f"{row['mbpp']:,.0f}",
                      f"{row['mbpp'] / default['mbpp']:.1f}x", f"{row['mbpp'] / best['mbpp']:.1f}x")
    console = Console(width=150)
    console.print(table)
    console.print(f"command: {' '.join(['python', 'benchmarks/sandbox_throughput.py', *sys.argv[1:]])}")
    console.print(f"machine: {before} at start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
