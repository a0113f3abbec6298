"""Answers whose form is the answer: factorisations.

"Factor x^4+x^2+1 into terms with integer coefficients" is answered by a form, not a value: the
expanded polynomial, or an incomplete factorisation, equals the reference as a function and yet
is wrong. Rule (on by default; `MathOptions.factor_form=False` turns it off): when the prompt asks
to factor and the reference is a product of non-constant factors, the answer must be a product
whose non-constant factors match the reference's one to one, up to order and units (a factor
may differ by a constant, as ``(1-x)`` and ``(x-1)``; constant factors are ignored), with
multiplicity (``(x+1)^2`` is two factors). ``x^4+x^2+1 = (x^2+x+1)(x^2-x+1)`` is read by its
last side.
"""

from __future__ import annotations

import re

from payoff.rewards.math.parse import Node
from payoff.rewards.math.values import EvalError, close, environments, evaluate, exact, symbols

_FACTOR_TASK = re.compile(r"\bfactori[sz]e\b|\bfactori[sz]ation\b|\bfactor\b(?!\s+(?:of|2|\d))|\bfactored form\b", re.IGNORECASE)
MAX_FACTORS = 40


def asks_to_factor(prompt: object) -> bool:
    return isinstance(prompt, str) and bool(_FACTOR_TASK.search(prompt))


def factors(node: Node) -> list[Node] | None:
    """The non-constant factors of a product, with multiplicity; None for a non-product."""
    kind = node[0]
    if kind == "rel" and all(op == "=" for op in node[2]):
        return factors(node[1][-1])
    if kind == "neg":
        return factors(node[1])
    if kind == "mul":
        found: list[Node] = []
        for item in node[1]:
            part = factors(item)
            if part is None:
                return None
            found.extend(part)
        return found
    if kind == "pow":
        power = exact(node[2])
        if power is not None and power.denominator == 1 and 1 <= power.numerator <= MAX_FACTORS and symbols(node[1]):
            inner = factors(node[1])
            return None if inner is None else inner * power.numerator
    if not symbols(node):
        return []  # a constant: a unit
    if kind in ("add", "sym", "fn", "pow", "div"):
        return [node]
    return None


def is_factored(node: Node) -> bool:
    found = factors(node)
    return found is not None and len(found) >= 2


def _associates(a: Node, b: Node) -> bool:
    """a = c * b for one nonzero constant c, at random points."""
    names = symbols(a) | symbols(b)
    if symbols(a) != symbols(b):
        return False
    try:
        ratios = [evaluate(a, env) / evaluate(b, env) for env in environments(names, count=4)]
    except (EvalError, ZeroDivisionError):
        return False
    return abs(ratios[0]) > 1e-12 and all(close(r, ratios[0], rel=1e-7) for r in ratios)


def same_factors(gold: Node, pred: Node) -> bool:
    gold_factors, pred_factors = factors(gold), factors(pred)
    if gold_factors is None or pred_factors is None or len(gold_factors) != len(pred_factors):
        return False
    remaining = list(pred_factors)
    for factor in gold_factors:
        for index, candidate in enumerate(remaining):
            if _associates(factor, candidate):
                del remaining[index]
                break
        else:
            return False
    return True
