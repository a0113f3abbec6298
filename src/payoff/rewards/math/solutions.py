"""Solutions of equations in several unknowns, compared as sets of tuples.

"x = 2, y = 1", "(x, y) = (2, 1)", "x = 0 and y = 0", "x=y=0", "(x=8, y=2), (x=2, y=8)",
"p=3, q=2 and p=5, q=3", "x = 1 and x = -1", "x=±1" all state a set of assignments. Each is read
into a list of mappings name -> value (a name repeated starts the next solution); two answers are
equal when they hold the same solutions, in any order, an extra or a missing one being wrong. A
side written without names ("(2, 1)", "1 and -1") takes the other side's names in the order that
side first wrote them.
"""

from __future__ import annotations

from collections.abc import Callable

from payoff.rewards.math.parse import Node

Solution = dict[str, Node]


def _name(node: Node) -> str | None:
    if node[0] == "sym":
        return str(node[1])
    if node[0] == "fn" and str(node[1]).startswith("call:"):
        return repr(node)  # f(x) = 0: the function is the unknown
    return None


def _values(node: Node, canonical: Callable[[Node], Node]) -> tuple[Node, ...]:
    value = canonical(node)
    return value[1] if value[0] == "list" else (value,)


def read(node: Node, canonical: Callable[[Node], Node]) -> tuple[list[Solution], list[str]] | None:
    """(solutions, names in the order written), or None when `node` is not a set of assignments."""
    items = node[1] if node[0] == "list" else (node,)
    solutions: list[Solution] = []
    names: list[str] = []
    current: Solution = {}
    last_names: list[str] = []
    seen_assignment = False

    def close() -> None:
        nonlocal current
        if current:
            solutions.append(current)
        current = {}

    for item in items:
        if item[0] == "seq" and item[3] and all(part[0] == "assign" for part in item[3]):
            close()
            found = read(("list", item[3]), canonical)
            if found is None or len(found[0]) != 1:
                return None
            solutions.extend(found[0])
            names.extend(n for n in found[1] if n not in names)
            last_names = found[1]
            seen_assignment = True
            continue
        if item[0] == "assign":
            seen_assignment = True
            left = item[1]
            if left[0] == "seq":  # (x, y) = (1, 2), or = (1, 2), (2, 1)
                keys = [_name(part) for part in left[3]]
                if any(key is None for key in keys):
                    return None
                close()
                for value in _values(item[2], canonical):
                    if value[0] != "seq" or len(value[3]) != len(keys):
                        return None
                    solutions.append(dict(zip(keys, value[3])))  # type: ignore[arg-type]
                last_names = keys  # type: ignore[assignment]
                names.extend(k for k in keys if k not in names)  # type: ignore[misc]
                continue
            key = _name(left)
            if key is None:
                return None
            values = _values(item[2], canonical)
            if key in current or len(values) > 1:
                close()
            if len(values) > 1:  # x = ±1: one solution per value
                solutions.extend({key: value} for value in values)
            else:
                current[key] = values[0]
            last_names = [key]
            if key not in names:
                names.append(key)
            continue
        if not seen_assignment or not last_names:
            return None
        # A bare value after an assignment: another solution for the same names ("x = 1, 2";
        # "(x, y) = (1, 2), (2, 1)").
        close()
        if len(last_names) == 1:
            solutions.append({last_names[0]: item})
        elif item[0] == "seq" and len(item[3]) == len(last_names):
            solutions.append(dict(zip(last_names, item[3])))
        else:
            return None
    close()
    return (solutions, names) if seen_assignment else None


def indexed(names: list[str]) -> bool:
    """x_1, x_2: the roots of one unknown numbered, not several unknowns."""
    bases = {name.split("_", 1)[0] for name in names}
    return len(names) > 1 and len(bases) == 1 and all("_" in name for name in names)


def bare(node: Node, names: list[str]) -> list[Solution] | None:
    """Solutions written without names, read with `names` in order: "(2, 1)" or "1 and -1"."""
    items = node[1] if node[0] == "list" else (node,)
    if len(names) > 1 and len(items) == len(names) and not any(item[0] in ("seq", "assign", "rel", "eq", "ineq") for item in items):
        return [dict(zip(names, items))]  # "-5, 14/3" for "x = -5, p = 14/3": the values in the order written
    found = []
    for item in items:
        if len(names) == 1 and item[0] not in ("seq", "assign", "rel", "eq", "ineq"):
            found.append({names[0]: item})
        elif item[0] == "seq" and item[1] == "(" and len(item[3]) == len(names):
            found.append(dict(zip(names, item[3])))
        else:
            return None
    return found


def same(gold: list[Solution], pred: list[Solution], equal: Callable[[Node, Node], bool]) -> bool:
    """The same solutions, in any order; a repeated solution counts once."""
    def unique(solutions: list[Solution]) -> list[Solution]:
        kept: list[Solution] = []
        for solution in solutions:
            if not any(solution.keys() == other.keys() and all(equal(solution[k], other[k]) for k in solution) for other in kept):
                kept.append(solution)
        return kept

    gold, pred = unique(gold), unique(pred)
    if len(gold) != len(pred):
        return False
    remaining = list(pred)
    for solution in gold:
        for index, candidate in enumerate(remaining):
            if solution.keys() == candidate.keys() and all(equal(solution[k], candidate[k]) for k in solution):
                del remaining[index]
                break
        else:
            return False
    return True
