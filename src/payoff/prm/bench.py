"""A procedural step benchmark with known labels: multi-step arithmetic solutions, correct or
with an error planted at a known step (the wrong value is carried into every later step, as a
real error would be). Seeded and versioned; rows are in TRL's PRM format plus ProcessBench's
``label`` (the first wrong step, or -1), so `payoff prm train`, `payoff eval processbench` and
Math-Shepherd labelling (against the planted truth) all read them."""

from __future__ import annotations

import random
from typing import Any

VERSION = "1"


def step_problems(count: int, seed: int = 0, error_rate: float = 0.5, operations: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(f"{VERSION}:{seed}")
    rows = []
    for index in range(count):
        numbers = [rng.randint(2, 20) for _ in range(operations + 1)]
        ops = [rng.choice("+-*") for _ in range(operations)]
        expression = str(numbers[0])
        for op, number in zip(ops, numbers[1:]):
            expression = f"({expression} {op} {number})"
        planted = rng.randrange(operations) if rng.random() < error_rate else -1
        value, steps, labels = numbers[0], [], []
        for k, (op, number) in enumerate(zip(ops, numbers[1:])):
            exact = value + number if op == "+" else value - number if op == "-" else value * number
            result = exact + rng.choice([-3, -2, -1, 1, 2, 3]) if k == planted else exact
            steps.append(f"Step {k + 1}: {value} {op} {number} = {result}.")
            labels.append(planted == -1 or k < planted)
            value = result  # an error is carried forward
        steps.append(f"The answer is {value}.")
        labels.append(planted == -1)
        truth = numbers[0]
        for op, number in zip(ops, numbers[1:]):
            truth = truth + number if op == "+" else truth - number if op == "-" else truth * number
        rows.append({"prompt": f"Compute {expression} step by step.", "completions": steps, "labels": labels,
                     "label": planted, "reference": str(truth), "subset": "arithmetic", "id": f"{seed}-{index}"})
    return rows
