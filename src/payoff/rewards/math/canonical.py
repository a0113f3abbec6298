"""Canonical forms of parsed answers, before comparison: assignments grouped into solutions,
``x = a`` read as ``a`` where the left side is a name, ``±`` as both signs, matrix products
folded, chained inequalities as intervals. Pure functions over `parse.Node` trees."""

from __future__ import annotations

from payoff.rewards.math.parse import Node
from payoff.rewards.math.values import exact, symbols


def name_like(node: Node) -> bool:
    """A left-hand side that names the answer rather than computing it: x, a_1, f(x), |AB|, A:B."""
    kind = node[0]
    if kind in ("sym", "const"):
        return True
    if kind == "fn":
        return node[1].startswith("call:") or node[1] == "abs"
    if kind in ("ratio", "div", "mul"):
        items = node[1] if kind != "div" else (node[1], node[2])
        return all(name_like(item) for item in items)
    if kind == "seq":  # (p, q) = (3, 2)
        return all(name_like(item) for item in node[3])
    return False


def canonical(node: Node) -> Node:
    kind = node[0]
    if kind == "in":
        return canonical(node[2])
    if kind == "pm":
        left, right = node[1], node[2]
        if left is None:
            return ("list", (canonical(right), ("neg", canonical(right))))
        return ("list", (("add", (left, right)), ("add", (left, ("neg", right)))))
    if kind == "list":
        items: list[Node] = []
        for item in node[1]:
            item = canonical(item)
            items.extend(item[1] if item[0] == "list" else (item,))
        items = _group_assignments(items)
        return ("list", tuple(items)) if len(items) != 1 else items[0]
    if kind in ("add", "mul", "neg") and _contains_matrix(node):
        folded = _fold_matrices(node)
        return folded if folded is not None else node
    if kind == "rel":
        return _canonical_relation(node)
    if kind == "text":
        text = node[1].strip().strip("()").strip()
        return ("text", text)
    if kind == "seq":
        return ("seq", node[1], node[2], tuple(canonical(i) for i in node[3]))
    if kind in ("set", "union"):
        return (kind, tuple(canonical(i) for i in node[1]))
    return node


def _group_assignments(items: list[Node]) -> list[Node]:
    """``p=5, q=2; p=7, q=2`` -> ``(5, 2), (7, 2)``: assignments whose names repeat in a cycle."""
    if len(items) < 4 or not all(item[0] == "assign" for item in items):
        return items
    names = [item[1] for item in items]
    for period in range(2, len(items) // 2 + 1):
        cycle = names[:period]
        if len(items) % period == 0 and len(set(map(repr, cycle))) == period and all(names[i] == cycle[i % period] for i in range(len(names))):
            return [("seq", "(", ")", tuple(item[2] for item in items[i : i + period])) for i in range(0, len(items), period)]
    return items


def _contains_matrix(node: object) -> bool:
    if not isinstance(node, tuple) or not node:
        return False
    if node[0] == "matrix":
        return True
    return any(_contains_matrix(child) or (isinstance(child, tuple) and any(_contains_matrix(c) for c in child if isinstance(c,
        tuple))) for child in node[1:] if isinstance(child, tuple))


def _fold_matrices(node: Node) -> Node | None:
    """Evaluate sums, scalar multiples and products of literal matrices into one matrix of
    (unevaluated) entries; None if the expression is not such a combination."""
    kind = node[0]
    if kind == "matrix":
        return node
    if kind == "neg":
        inner = _fold_matrices(node[1])
        return None if inner is None else ("matrix", tuple(tuple(("neg", e) for e in row) for row in inner[1]))
    if kind == "add":
        parts = [_fold_matrices(item) for item in node[1]]
        if any(p is None for p in parts) or len({tuple(len(r) for r in p[1]) for p in parts}) != 1:  # type: ignore[index]
            return None
        rows = parts[0][1]  # type: ignore[index]
        return ("matrix", tuple(tuple(("add", tuple(p[1][i][j] for p in parts)) for j in range(len(rows[i]))) for i in range(len(rows))))  # type: ignore[index]
    if kind == "mul":
        result: Node | None = None
        scalar: list[Node] = []
        for item in node[1]:
            if not _contains_matrix(item):
                scalar.append(item)
                continue
            factor = _fold_matrices(item)
            if factor is None:
                return None
            if result is None:
                result = factor
                continue
            left, right = result[1], factor[1]
            if any(len(row) != len(right) for row in left):
                return None
            result = ("matrix", tuple(
                tuple(("add", tuple(("mul", (left[i][k], right[k][j])) for k in range(len(right)))) for j in range(len(right[0])))
                for i in range(len(left))
            ))
        if result is None:
            return None
        if scalar:
            result = ("matrix", tuple(tuple(("mul", (*scalar, e)) for e in row) for row in result[1]))
        return result
    return None


def _canonical_relation(node: Node) -> Node:
    items, ops = node[1], node[2]
    if all(op == "=" for op in ops):
        if len(items) > 2 and all(item[0] == "sym" for item in items[:-1]):
            return ("list", tuple(("assign", item, items[-1]) for item in items[:-1]))  # x = y = 0
        names = [i for i, item in enumerate(items[:-1]) if name_like(item)]
        if names:
            return ("assign", items[names[-1]], items[-1])
        if not any(symbols(item) for item in items):
            return items[-1]  # "1/2 = 10/9": a chain of numbers ends in its result
        return ("eq", items[0], items[-1])
    if len(ops) == 2 and items[1][0] == "fn" and items[1][1] == "abs" and ops[0] in ("<", "<=") and ops[1] in ("<", "<="):
        low, high = exact(items[0]), exact(items[2])
        if low is not None and high is not None and 0 < low < high:  # a <= |z| <= b: two intervals
            left_close, right_close = "[" if ops[1] == "<=" else "(", "]" if ops[0] == "<=" else ")"
            inner_left, inner_right = "[" if ops[0] == "<=" else "(", "]" if ops[1] == "<=" else ")"
            return ("union", (
                ("seq", left_close, right_close, (("neg", items[2]), ("neg", items[0]))),
                ("seq", inner_left, inner_right, (items[0], items[2])),
            ))
    if len(ops) == 2 and name_like(items[1]) and ops[0] in ("<", "<=") and ops[1] in ("<", "<="):
        return ("seq", "(" if ops[0] == "<" else "[", ")" if ops[1] == "<" else "]", (items[0], items[2]))
    if len(ops) == 2 and name_like(items[1]) and ops[0] in (">", ">=") and ops[1] in (">", ">="):
        return ("seq", "(" if ops[1] == ">" else "[", ")" if ops[0] == ">" else "]", (items[2], items[0]))
    if len(ops) == 1:
        left, op, right = items[0], ops[0], items[1]
        if op in (">", ">="):
            left, right, op = right, left, "<" if op == ">" else "<="
        return ("ineq", op, ("add", (left, ("neg", right))), items, ops)
    return node
