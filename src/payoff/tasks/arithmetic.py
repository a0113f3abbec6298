"""A procedural arithmetic family: exact integer answers, difficulty levels, a seed.

Level 1 is the demo task (a + b with a, b in 1..20); each level above widens the operands or adds
operations, so a curriculum is a list of levels.
"""

from __future__ import annotations

import random
from typing import Any

# level -> (operand range, operations, number of operands)
LEVELS: dict[int, tuple[tuple[int, int], str, int]] = {
    1: ((1, 20), "+", 2),
    2: ((1, 100), "+-", 2),
    3: ((2, 20), "*", 2),
    4: ((1, 100), "+-*", 2),
    5: ((1, 50), "+-*", 3),
}

DEFAULT_TEMPLATE = "What is {expression}? Answer with only the number."


def _expression(rng: random.Random, level: int) -> tuple[str, int]:
    (low, high), ops, count = LEVELS[level]
    numbers = [rng.randint(low, high) for _ in range(count)]
    text = str(numbers[0])
    for number in numbers[1:]:
        text += f" {rng.choice(ops)} {number}"
    # The expressions only use + - * on integers, so Python's own evaluation of our text is exact.
    return text, int(eval(text, {"__builtins__": {}}))  # noqa: S307 - our own generated string


def arithmetic(n: int, seed: int = 0, level: int | list[int] = 1, template: str = DEFAULT_TEMPLATE) -> list[dict[str, Any]]:
    """``n`` problems. ``level`` is one level or a list drawn from uniformly. Two calls with the
    same arguments return the same rows; different seeds give different (possibly overlapping)
    problems, so keep training and held-out seeds apart."""
    levels = [level] if isinstance(level, int) else list(level)
    for value in levels:
        if value not in LEVELS:
            raise ValueError(f"arithmetic level {value} does not exist; levels are {sorted(LEVELS)}")
    rng = random.Random(seed)
    rows = []
    for index in range(n):
        chosen = rng.choice(levels)
        expression, answer = _expression(rng, chosen)
        rows.append({
            "prompt": template.format(expression=expression),
            "reference": str(answer),
            "meta": {"task": "arithmetic", "level": chosen, "index": index},
        })
    return rows
