"""`calculator`: the smallest tool environment. Arithmetic is evaluated on the syntax tree
(numbers, + - * / // % **, unary signs, parentheses), never with eval; powers are bounded so
``9**9**9`` is an error, not a hung process. Every value is bounded (exponents, digits) and the
expression is as long as the policy's turn, so a call cannot hang: the tool is called directly,
without the thread that watches a tool's time limit (which cost more than the arithmetic: about
1 ms a call on a loaded machine, up to a GIL switch interval or more)."""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any

from payoff.envs.base import Tool, ToolEnv

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
MAX_EXPONENT = 1000
MAX_DIGITS = 4000


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression; ValueError for anything else."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"not an arithmetic expression: {error.msg}") from None
    return _value(tree.body)


def _value(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponent {right} is larger than {MAX_EXPONENT}")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ValueError("division by zero") from None
        if isinstance(result, int) and result.bit_length() > MAX_DIGITS * 3.33:
            raise ValueError(f"result has more than {MAX_DIGITS} digits")
        return result
    raise ValueError(f"not allowed in arithmetic: {type(node).__name__}")


def calculate(expression: str) -> str:
    value = evaluate(expression)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return str(value)


@dataclass
class CalculatorEnv(ToolEnv):
    """Tool: ``calculator(expression)``. Reward: the row's (default ``math`` on the final answer)."""

    system: str = "Use the calculator tool for arithmetic, then give the final answer."

    def reset(self, row: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self.tools = [Tool("calculator", "Evaluate an arithmetic expression (+ - * / // % ** and parentheses).",
                           {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"],
                            "additionalProperties": False}, calculate, enforces_limit=True)]
        return super().reset(row)
