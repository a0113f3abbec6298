"""The math reward on GRPO-shaped input: groups of completions that share a prompt and a reference,
where many completions of a group give the same answer. Samples per second for payoff's math
reward (as a trainer calls it: `payoff.get_reward("math")` on a Sample), payoff with its answer
caches turned off (what it did before them), and math-verify (`verify(parse(gold), parse(answer))`,
its defaults: the peer a user would pick), each in its own process, configurations taking turns
round by round; medians of `--repeats`.

Each group: a procedural arithmetic problem, `--group` completions in a few prose forms around a
boxed answer; about half right, the rest split between two wrong values (a policy's answers
cluster). Unique answers (`--group 1`) show the cost without any repeat.

    .venv/bin/python benchmarks/math_groups.py [--groups 100] [--group 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

FORMS = ("So the answer is $\\boxed{{{a}}}$.", "We get {a}.\n\nFinal answer: \\boxed{{{a}}}",
         "Adding these up gives \\boxed{{{a}}}.", "**Answer:** $\\boxed{{{a}}}$")


def rows(groups: int, group: int, seed: int) -> list[tuple[str, str, str]]:
    """(prompt, completion, reference) for every completion of every group."""
    rng = random.Random(seed)
    out = []
    for _ in range(groups):
        x, y, z = rng.randint(10, 999), rng.randint(10, 999), rng.randint(2, 9)
        truth = (x + y) * z
        wrong = [truth + rng.choice((-10, -1, 1, 10)), x + y * z]
        prompt = f"Compute ({x} + {y}) * {z}."
        for k in range(group):
            answer = truth if rng.random() < 0.5 else wrong[k % 2]
            out.append((prompt, f"Step 1: {x} + {y} = {x + y}. " + rng.choice(FORMS).format(a=answer), str(truth)))
    return out


def child(tool: str, data: list[tuple[str, str, str]]) -> dict:
    if tool == "math-verify":
        from math_verify import parse, verify

        def score(prompt: str, completion: str, reference: str) -> float:
            return float(verify(parse(f"${reference}$"), parse(completion)))
    else:
        import payoff
        from payoff.core import Sample
        from payoff.rewards.math import tokens

        if tool == "payoff-no-cache":
            tokens.CACHED_CHARS = -1  # every text over the limit: read anew each time, never kept
        reward = payoff.get_reward("math")

        def score(prompt: str, completion: str, reference: str) -> float:
            return reward(Sample(prompt=prompt, completion=completion, reference=reference)).score

    score(*data[0])  # imports and first-call setup are not timed
    started = time.perf_counter()
    scores = [score(*row) for row in data]
    seconds = time.perf_counter() - started
    return {"per_s": len(data) / seconds, "right": sum(s == 1.0 for s in scores)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tools", default="payoff,payoff-no-cache,math-verify")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = rows(args.groups, args.group, args.seed)
    if args.child:
        print(json.dumps(child(args.child, data)))
        return
    tools = args.tools.split(",")
    runs: dict[str, list[dict]] = {tool: [] for tool in tools}
    for _ in range(args.repeats):
        for tool in tools:
            command = [sys.executable, __file__, "--child", tool, "--groups", str(args.groups), "--group", str(args.group),
                       "--seed", str(args.seed)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            runs[tool].append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = statistics.median(r["per_s"] for r in runs[tools[0]])
    print(f"{len(data)} samples ({args.groups} groups of {args.group}), medians of {args.repeats}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'tool':<18}{'samples/s':>11}{'runs':>26}{'right':>7}{'vs ' + tools[0]:>14}")
    for tool, results in runs.items():
        median = statistics.median(r["per_s"] for r in results)
        each = " / ".join(f"{r['per_s']:,.0f}" for r in results)
        print(f"{tool:<18}{median:>11,.0f}{each:>26}{results[0]['right']:>7}"
              f"{median / base:>13.2f}x")


if __name__ == "__main__":
    main()
