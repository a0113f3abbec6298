"""``calculate_output`` of a multi grader: arithmetic over the sub-graders' scores, evaluated on
Python's syntax tree with a closed set of nodes (never `eval`).

OpenAI documents the operators ``+ - * / ^`` and the functions ``min max abs floor ceil exp sqrt
log``; ``^`` is the power (as in their docs, not Python's xor) and ``**`` is accepted too.
Parentheses group; numbers are literals; every other name must be a sub-grader's.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "abs": abs, "floor": math.floor, "ceil": math.ceil, "exp": math.exp, "sqrt": math.sqrt, "log": math.log,
}
_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.BitXor: operator.pow, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
MAX_LENGTH = 2000  # a formula is a line; a megabyte of parentheses is not one


class FormulaError(ValueError):
    """A formula outside the allowed arithmetic, or one that cannot be computed (÷0, log 0)."""


def parse(formula: str, names: set[str]) -> ast.Expression:
    """The formula's tree, checked: only numbers, ``names``, the operators and the functions."""
    if len(formula) > MAX_LENGTH:
        raise FormulaError(f"longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError as error:
        raise FormulaError(f"not a formula: {error.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.Load)) or type(node) in _BINARY or type(node) in _UNARY:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY or isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            continue
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            continue
        if isinstance(node, ast.Name):
            if node.id not in names and node.id not in FUNCTIONS:
                raise FormulaError(f"unknown name {node.id!r}; the graders are {', '.join(sorted(names))}")
            continue
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords or not node.args:
                raise FormulaError(f"only {', '.join(FUNCTIONS)} may be called, with plain arguments")
            continue
        raise FormulaError(f"{type(node).__name__} is not allowed; use numbers, grader names, + - * / ^ and {', '.join(FUNCTIONS)}")
    return tree


def evaluate(formula: str, values: dict[str, float]) -> float:
    """The formula's value with ``values`` for the grader names; FormulaError if it has none."""
    tree = parse(formula, set(values))
    try:
        result = float(_value(tree.body, values))
    except (ZeroDivisionError, ValueError, OverflowError, TypeError) as error:  # TypeError: (-1) ^ 0.5 is complex
        raise FormulaError(f"{formula!r} cannot be computed with {values}: {error}") from None
    if not math.isfinite(result):
        raise FormulaError(f"{formula!r} is not finite with {values}")
    return result


def _value(node: ast.AST, values: dict[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise FormulaError(f"{node.id!r} is a function, not a value")
        return values[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left, values), _value(node.right, values)
        if isinstance(node.op, (ast.Pow, ast.BitXor)) and abs(right) > 1000:
            raise FormulaError(f"an exponent of {right:g} is out of range")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_value(node.operand, values))
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](*(_value(a, values) for a in node.args))  # type: ignore[union-attr]
    raise FormulaError(f"{type(node).__name__} is not allowed")  # parse() refused it already
