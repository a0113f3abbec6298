"""Values of parsed answers: exact rationals when possible, complex numbers otherwise.

Exact arithmetic decides whenever both sides are rational (no rounding, so ``1/2^{99}`` never
equals ``1/2^{98}``). Everything else is evaluated numerically in complex arithmetic, with free
symbols bound to random points: two expressions that agree at several random points are equal
with overwhelming probability (the Schwartz–Zippel idea), and this needs no symbolic algebra.
Every operation is bounded, so no input can run for long.
"""

from __future__ import annotations

import cmath
import math
import random
from fractions import Fraction
from typing import Any

from payoff.rewards.math.parse import Node

MAX_EXACT_EXPONENT = 2000
MAX_EXACT_BITS = 20_000


class EvalError(ValueError):
    pass


def exact(node: Node) -> Fraction | None:
    """The exact rational value of a node, or None if it is not (cheaply) rational."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "neg":
        value = exact(node[1])
        return None if value is None else -value
    if kind == "add":
        total = Fraction(0)
        for item in node[1]:
            value = exact(item)
            if value is None:
                return None
            total += value
        return total
    if kind == "mul":
        product = Fraction(1)
        for item in node[1]:
            value = exact(item)
            if value is None:
                return None
            product *= value
        return product
    if kind == "div":
        top, bottom = exact(node[1]), exact(node[2])
        if top is None or bottom is None or bottom == 0:
            return None
        return top / bottom
    if kind == "pow":
        base, power = exact(node[1]), exact(node[2])
        if base is None or power is None or power.denominator != 1:
            return None
        exponent = power.numerator
        size = max(base.numerator.bit_length(), base.denominator.bit_length())
        if abs(exponent) > MAX_EXACT_EXPONENT or size * abs(exponent) > MAX_EXACT_BITS:
            return None  # explosive: leave it to bounded floating point
        if base == 0 and exponent < 0:
            return None
        return base**exponent
    return None


def symbols(node: Any, found: set[str] | None = None) -> set[str]:
    found = set() if found is None else found
    if isinstance(node, tuple) and node:
        if node[0] == "sym":
            found.add(node[1])
        elif node[0] == "fn" and node[1].startswith("call:"):
            found.add(node[1])
            for arg in node[2]:
                symbols(arg, found)
        else:
            for child in node[1:]:
                if isinstance(child, tuple):
                    if child and isinstance(child[0], str):
                        symbols(child, found)
                    else:
                        for item in child:
                            symbols(item, found)
    return found


def has_decimal(node: Any) -> int | None:
    """The most decimal places of any decimal literal in the node (None if none)."""
    best = None
    if isinstance(node, tuple) and node:
        if node[0] == "num":
            return node[2]
        for child in node[1:]:
            if isinstance(child, tuple):
                children = [child] if child and isinstance(child[0], str) else list(child)
                for item in children:
                    places = has_decimal(item)
                    if places is not None:
                        best = places if best is None else max(best, places)
    return best


def environments(names: set[str], count: int = 3, seed: int = 20250101) -> list[dict[str, complex]]:
    """Random points for the free symbols, the same for both sides of a comparison."""
    rng = random.Random(seed)
    ordered = sorted(names)
    return [{name: complex(rng.uniform(0.5, 2.5), 0) for name in ordered} for _ in range(count)]


_FUNCTIONS = {
    "sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "arcsin": cmath.asin, "arccos": cmath.acos,
    "arctan": cmath.atan, "sinh": cmath.sinh, "cosh": cmath.cosh, "tanh": cmath.tanh, "exp": cmath.exp,
    "ln": cmath.log, "log": cmath.log, "sqrt": cmath.sqrt,
}


def evaluate(node: Node, env: dict[str, complex]) -> complex:
    kind = node[0]
    try:
        if kind == "num":
            return complex(node[1])
        if kind == "sym":
            return env[node[1]]
        if kind == "const":
            if node[1] == "pi":
                return complex(math.pi)
            if node[1] == "e":
                return complex(math.e)
            raise EvalError("infinity has no numeric value")
        if kind == "neg":
            return -evaluate(node[1], env)
        if kind == "add":
            return sum((evaluate(item, env) for item in node[1]), complex(0))
        if kind == "mul":
            product = complex(1)
            for item in node[1]:
                product *= evaluate(item, env)
            return product
        if kind == "div":
            return evaluate(node[1], env) / evaluate(node[2], env)
        if kind == "pow":
            base, power = evaluate(node[1], env), evaluate(node[2], env)
            if abs(power) > 10_000:
                raise EvalError("exponent too large")
            if base.imag == 0 and power.imag == 0 and base.real < 0 and float(power.real).is_integer():
                return complex(base.real ** power.real)
            if base.imag == 0 and base.real < 0 and node[2][0] == "div" and _odd_root(node[2]):
                return complex(-((-base.real) ** power.real))  # real cube root of a negative
            return base**power
        if kind == "fn":
            return _function(node, env)
        if kind == "pct":
            return evaluate(node[1], env)
    except (ZeroDivisionError, OverflowError, ValueError, KeyError) as error:
        raise EvalError(str(error)) from error
    raise EvalError(f"no numeric value for {kind}")


def _odd_root(power: Node) -> bool:
    top, bottom = exact(power[1]), exact(power[2])
    return top is not None and bottom is not None and bottom.denominator == 1 and bottom.numerator % 2 == 1


def _function(node: Node, env: dict[str, complex]) -> complex:
    name, args = node[1], node[2]
    values = [evaluate(arg, env) for arg in args]
    if name in _FUNCTIONS and len(values) == 1:
        return _FUNCTIONS[name](values[0])
    if name in ("floor", "ceil") and len(values) == 1 and abs(values[0].imag) < 1e-12:
        return complex((math.floor if name == "floor" else math.ceil)(values[0].real + (1e-9 if name == "floor" else -1e-9)))
    if name == "abs" and len(values) == 1:
        return complex(abs(values[0]))
    if name in ("sec", "csc", "cot") and len(values) == 1:
        base = {"sec": cmath.cos, "csc": cmath.sin, "cot": cmath.tan}[name](values[0])
        return 1 / base
    if name == "fact" and len(values) == 1 and values[0].imag == 0 and -170 <= values[0].real <= 170:
        # Gamma(x + 1): a symbol's random point is not an integer, and n!/(2n) must equal (n-1)!/2 there
        return complex(math.gamma(values[0].real + 1))
    if name == "binom" and len(values) == 2 and all(v.imag == 0 and v.real.is_integer() for v in values):
        n, k = int(values[0].real), int(values[1].real)
        if 0 <= n <= 10_000:
            return complex(math.comb(n, k))
    if name == "binom" and len(values) == 2 and values[1].imag == 0 and values[1].real.is_integer() and 0 <= values[1].real <= 1000:
        product = complex(1)  # C(n, k) for a symbolic n: n(n-1)...(n-k+1)/k!, the polynomial that equals it at every integer
        for j in range(int(values[1].real)):
            product *= (values[0] - j) / (j + 1)
        return product
    if name.startswith("call:"):
        # An unknown function: a fixed pseudo-random function of its arguments, so f(x) equals
        # f(x) but not f(y) or g(x).
        key = (name, tuple((round(v.real, 9), round(v.imag, 9)) for v in values))
        return complex(random.Random(repr(key)).uniform(1, 3), 0)
    raise EvalError(f"cannot evaluate {name}")


def close(a: complex, b: complex, rel: float = 1e-9, abs_tol: float = 1e-12) -> bool:
    if any(math.isnan(x) or math.isinf(x) for x in (a.real, a.imag, b.real, b.imag)):
        return False
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_tol)
