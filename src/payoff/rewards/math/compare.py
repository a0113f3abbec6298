"""Is a predicted answer equivalent to the gold one? Structure first, then value.

Policies (documented in docs/rewards/math.md):
- a bare list ("1, 2", "1 and 2", "1 or 2") matches another bare list or a set in any order, and
  a bracketed tuple only in its order; it never matches a single value (so hedging earns nothing);
- ``(a, b)`` and ``[a, b]`` differ: brackets are part of an interval or tuple;
- ``x = 3`` matches ``3`` when the left side is a name (``x``, ``f(x)``, ``|AB|``, ``a_1``);
  equations match when their sides differ by a nonzero constant factor; inequalities by a
  positive one; ``a < x < b`` matches the interval ``(a, b)``;
- a percentage matches its number (``28\\%`` = ``28``) and, with ``percent_fraction``, its
  fraction (``50\\%`` = ``0.5``); a bare number is never multiplied by 100;
- rationals are compared exactly; a decimal written with k places matches an exact value that
  rounds to it at k places (k >= `min_rounding_places`); other values are compared numerically
  with a relative tolerance of 1e-9 at random points for the free symbols.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from payoff.rewards.math.canonical import canonical, name_like
from payoff.rewards.math.parse import Node
from payoff.rewards.math.solutions import Solution, bare, indexed, read, same
from payoff.rewards.math.values import EvalError, close, environments, evaluate, exact, has_decimal, symbols


@dataclass(frozen=True)
class CompareOptions:
    percent_fraction: bool = False
    rounding: bool = True
    min_rounding_places: int = 2
    unordered_lists: bool = True


def equivalent(gold: Node, pred: Node, options: CompareOptions = CompareOptions()) -> tuple[bool, str]:
    """(equal?, the rule that decided)."""
    return _equal(canonical(gold), canonical(pred), options)


def _equal(gold: Node, pred: Node, options: CompareOptions) -> tuple[bool, str]:
    if gold == pred:
        return True, "identical"
    sets = _solution_sets(gold, pred, options)
    if sets is not None:
        return sets, "solutions"
    gk, pk = gold[0], pred[0]
    if gk == "assign" and pk != "assign" and pk not in ("eq", "ineq"):
        return _equal(gold[2], pred, options)
    if pk == "assign" and gk != "assign" and gk not in ("eq", "ineq"):
        return _equal(gold, pred[2], options)
    if pk == "eq" and gk not in ("eq", "assign", "ineq") and not _implicit_equation(pred):
        # "\\sum_{k=1}^{n} C(n, k) k^2 = n 2^{n-2} (n+1)", "x + y = 10": the value its left side is shown to
        # equal (as math-verify reads it); "5x - 7y + 11z + 4 = 0" is a plane, not the value 0
        return _equal(gold, pred[2], options)
    if gk == "assign" and pk == "assign":
        return _equal(gold[2], pred[2], options)
    if gk in ("eq", "assign") and pk in ("eq", "assign"):
        return _proportional(("add", (gold[1], ("neg", gold[2]))), ("add", (pred[1], ("neg", pred[2]))), "nonzero"), "equation"
    if gk == "ineq" and pk == "ineq":
        if gold[1] != pred[1]:
            return False, "inequality"
        return _proportional(gold[2], pred[2], "positive"), "inequality"
    if gk == "ineq" and pk in ("seq", "union") or pk == "ineq" and gk in ("seq", "union"):
        ineq, other = (gold, pred) if gk == "ineq" else (pred, gold)
        interval = _ray(ineq)
        return (_equal(interval, other, options)[0], "inequality_as_interval") if interval else (False, "structure")
    if gk == "pct" or pk == "pct":
        return _percent(gold, pred, options)
    if gk in ("list", "set") or pk in ("list", "set"):
        return _collections(gold, pred, options)
    if gk == "seq" and pk == "seq":
        if (gold[1], gold[2]) != (pred[1], pred[2]) or len(gold[3]) != len(pred[3]):
            return False, "brackets"
        return all(_equal(g, p, options)[0] for g, p in zip(gold[3], pred[3])), "ordered"
    if gk == "union" and pk == "union":
        return _matching(gold[1], pred[1], options), "union"
    if gk == "matrix" and pk == "matrix":
        if [len(r) for r in gold[1]] != [len(r) for r in pred[1]]:
            return False, "matrix_shape"
        pairs = [(g, p) for gr, pr in zip(gold[1], pred[1]) for g, p in zip(gr, pr)]
        return all(_equal(g, p, options)[0] for g, p in pairs), "matrix"
    if gk == "ratio" and pk == "ratio":
        if len(gold[1]) != len(pred[1]):
            return False, "ratio"
        return all(_equal(g, p, options)[0] for g, p in zip(gold[1], pred[1])), "ratio"
    if gk == "text" or pk == "text":
        return (gk == pk and gold[1] == pred[1]), "text"
    if gk in ("seq", "union", "matrix", "ratio", "eq", "ineq") or pk in ("seq", "union", "matrix", "ratio", "eq", "ineq"):
        return False, "structure"
    return _scalars(gold, pred, options)


def _implicit_equation(equation: Node) -> bool:
    """``... = 0`` in two or more of x, y, z: a curve or surface given implicitly, which states no value."""
    return exact(equation[2]) == 0 and len(symbols(equation[1]) & {"x", "y", "z"}) >= 2


def _solution_sets(gold: Node, pred: Node, options: CompareOptions) -> bool | None:
    """Solutions in several unknowns, or several solutions, compared as sets of tuples
    (`solutions`); None when neither side states such a set (one ``x = 3`` keeps the rules
    above: it equals ``3``)."""
    read_gold, read_pred = read(gold, canonical), read(pred, canonical)

    def several(found: tuple[list[Solution], list[str]] | None) -> bool:
        return found is not None and (len(found[0]) > 1 or len(found[1]) > 1) and not indexed(found[1])

    if not several(read_gold) and not several(read_pred):
        return None

    def equal(a: Node, b: Node) -> bool:
        return _equal(canonical(a), canonical(b), options)[0]

    if not several(read_gold) and read_gold is not None and indexed(read_gold[1]) or \
            not several(read_pred) and read_pred is not None and indexed(read_pred[1]):
        return None
    if read_gold is not None and read_pred is not None:
        return same(read_gold[0], read_pred[0], equal)
    known, other = (read_gold, pred) if read_gold is not None else (read_pred, gold)
    unnamed = bare(other, known[1])  # type: ignore[index]
    return unnamed is not None and same(known[0], unnamed, equal)  # type: ignore[index]


def _ray(ineq: Node) -> Node | None:
    """``x < a`` as the interval (-inf, a); only for a name on one side and a value on the other."""
    (left, right), op = ineq[3], ineq[4][0]
    inf = ("const", "inf")
    if name_like(left) and not symbols(right):
        bound = right
        lower = op in (">", ">=")
    elif name_like(right) and not symbols(left):
        bound = left
        lower = op in ("<", "<=")
    else:
        return None
    closed = op in ("<=", ">=")
    if lower:
        return ("seq", "[" if closed else "(", ")", (bound, inf))
    return ("seq", "(", "]" if closed else ")", (("neg", inf), bound))


def _percent(gold: Node, pred: Node, options: CompareOptions) -> tuple[bool, str]:
    g = gold[1] if gold[0] == "pct" else gold
    p = pred[1] if pred[0] == "pct" else pred
    if _equal(g, p, options)[0]:
        return True, "percent"
    if options.percent_fraction and (gold[0] == "pct") != (pred[0] == "pct"):
        hundred = ("num", Fraction(100), None)
        if gold[0] == "pct" and _equal(("div", g, hundred), p, options)[0]:
            return True, "percent_fraction"
        if pred[0] == "pct" and _equal(g, ("div", p, hundred), options)[0]:
            return True, "percent_fraction"
    return False, "percent"


def _collections(gold: Node, pred: Node, options: CompareOptions) -> tuple[bool, str]:
    gk, pk = gold[0], pred[0]
    g_items = gold[1] if gk in ("list", "set") else gold[3] if gk == "seq" and gold[1] == "(" else None
    p_items = pred[1] if pk in ("list", "set") else pred[3] if pk == "seq" and pred[1] == "(" else None
    if g_items is None or p_items is None:
        return False, "structure"
    if gk == "seq" or pk == "seq":  # a tuple imposes its order on a bare list
        if gk not in ("seq", "list") or pk not in ("seq", "list") or len(g_items) != len(p_items):
            return False, "ordered"
        return all(_equal(g, p, options)[0] for g, p in zip(g_items, p_items)), "ordered"
    if gk == "set" or pk == "set":
        return _matching(_dedupe(g_items), _dedupe(p_items), options), "set"
    if not options.unordered_lists:
        return len(g_items) == len(p_items) and all(_equal(g, p, options)[0] for g, p in zip(g_items, p_items)), "list_ordered"
    # Several answers: compared as sets (a repeated answer is the same answer).
    return _matching(_dedupe(g_items), _dedupe(p_items), options), "list_unordered"


def _dedupe(items: tuple[Node, ...]) -> tuple[Node, ...]:
    unique: list[Node] = []
    for item in items:
        if item not in unique:
            unique.append(item)
    return tuple(unique)


def _matching(gold: tuple[Node, ...], pred: tuple[Node, ...], options: CompareOptions) -> bool:
    if len(gold) != len(pred):
        return False
    remaining = list(pred)
    for g in gold:
        for index, p in enumerate(remaining):
            if _equal(g, p, options)[0]:
                del remaining[index]
                break
        else:
            return False
    return True


def _scalars(gold: Node, pred: Node, options: CompareOptions) -> tuple[bool, str]:
    g_exact, p_exact = exact(gold), exact(pred)
    g_places, p_places = has_decimal(gold), has_decimal(pred)
    if g_exact is not None and p_exact is not None:
        if g_exact == p_exact:
            return True, "exact"
        return _rounded(g_exact, p_exact, g_places, p_places, options), "exact"
    names = symbols(gold) | symbols(pred)
    if "i" in names and symbols(gold) - {"i"} == symbols(pred) - {"i"} and _equal_with_imaginary_unit(gold, pred, names - {"i"}):
        return True, "imaginary_unit"
    if symbols(gold) != symbols(pred):
        stripped = _strip_units(pred) if not symbols(gold) else None
        if stripped is not None:
            return _equal(gold, stripped, options)[0], "units_stripped"
        return False, "different_symbols"
    try:
        points = environments(names) if names else [{}]
        pairs = [(evaluate(gold, env), evaluate(pred, env)) for env in points]
    except EvalError:
        return False, "unevaluable"
    if all(close(g, p) for g, p in pairs):
        return True, "numeric"
    if not names and options.rounding:
        (g, p), = pairs
        if g.imag == 0 and p.imag == 0 and _rounded_float(g.real, p.real, g_places, p_places, options):
            return True, "rounded"
    return False, "numeric"


def _equal_with_imaginary_unit(gold: Node, pred: Node, others: set[str]) -> bool:
    """Equal when ``i`` is the imaginary unit (``i^2 = -1``, ``e^{i\\pi} = -1``,
    ``(1+i)^2 = 2i``): in a final answer a lone ``i`` is that, not a variable."""
    try:
        points = [{**env, "i": 1j} for env in (environments(others) if others else [{}])]
        return all(close(evaluate(gold, env), evaluate(pred, env)) for env in points)
    except EvalError:
        return False


# Units a number may carry when the gold is a bare number (``15 cm^2``, ``3 kg``). Only these:
# any other trailing letter is a variable, and ``2k`` is not ``2``.
UNITS = {"m", "cm", "mm", "km", "nm", "g", "kg", "mg", "s", "ms", "h", "hr", "min", "ft", "in", "yd", "mi", "lb", "lbs", "oz",
         "l", "ml", "L", "mL", "cc", "sq", "mph", "kph", "rpm", "Hz", "kHz", "V", "W", "kW", "J", "N", "Pa", "K", "C", "F"}


def _strip_units(node: Node) -> Node | None:
    """``15 m^2`` -> ``15`` when the gold has no symbols and the trailing letters spell a unit."""
    if node[0] == "mul" and node[1] and exact(node[1][0]) is not None:
        rest = node[1][1:]
        if all(n[0] == "sym" or (n[0] == "pow" and n[1][0] == "sym") for n in rest):
            letters = "".join(str(n[1] if n[0] == "sym" else n[1][1]) for n in rest)
            if letters in UNITS:
                return node[1][0]
    return None


def _rounded(g: Fraction, p: Fraction, g_places: int | None, p_places: int | None, options: CompareOptions) -> bool:
    """A decimal answer written with k places equals an exact value that rounds to it."""
    if not options.rounding or (g_places is None) == (p_places is None):
        return False
    decimal, value, places = (p, g, p_places) if p_places is not None else (g, p, g_places)
    if places is None or places < options.min_rounding_places:
        return False
    return abs(value - decimal) <= Fraction(1, 2 * 10**places)


def _rounded_float(g: float, p: float, g_places: int | None, p_places: int | None, options: CompareOptions) -> bool:
    if (g_places is None) == (p_places is None):
        return False
    decimal, value, places = (p, g, p_places) if p_places is not None else (g, p, g_places)
    if places is None or places < options.min_rounding_places:
        return False
    return abs(value - decimal) <= 0.5 * 10**-places * (1 + 1e-9)


def _proportional(a: Node, b: Node, sign: str) -> bool:
    """a = c * b for one constant c (nonzero, or positive), checked at random points."""
    names = symbols(a) | symbols(b)
    try:
        ratios = []
        for env in environments(names, count=4):
            va, vb = evaluate(a, env), evaluate(b, env)
            if abs(vb) < 1e-12:
                if abs(va) < 1e-12:
                    continue
                return False
            ratios.append(va / vb)
    except EvalError:
        return False
    if not ratios or abs(ratios[0]) < 1e-12:
        return False
    if not all(close(r, ratios[0], rel=1e-7) for r in ratios):
        return False
    return sign != "positive" or (abs(ratios[0].imag) < 1e-9 and ratios[0].real > 0)
