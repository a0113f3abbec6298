"""Fewer round trips per test: a run of plain asserts on literal calls asks the program for all of
its calls at once. Standard library only (the lean fork server loads it by path).

A HumanEval test is ``assert candidate(<literal>) == <literal>`` a dozen times; each call is a
round trip to the program process and back, two wake-ups that on a loaded machine each wait for a
core. `batched` rewrites the judge's copy of a test so that before a run of two or more such
asserts it calls ``__payoff_batch__`` with the calls the run will make, in the order it will make
them. The judge sends them in one message, the program answers them in order, and each call the
test then makes takes its answer from that queue (`harness.Link`).

What keeps this the same as calling one at a time:
- only calls whose arguments are literals, inside asserts built from literals, comparisons,
  arithmetic and such calls (no names but called ones, no ``and``/``or``, no attributes), in a
  function's or the module's own statement list (not in a loop, branch or ``try``);
- at run time only calls of the program's functions are sent; a call of a known pure builtin
  (``abs``, ``round``, ``len`` ...) in between is skipped over, any other callable ends the batch
  (it might call the program itself);
- the program stops at the first call that raises or returns an object of its own (a handle: the
  test may call into it next), so it never runs a call the test would not have reached, except
  the calls after an assert that fails, which fails the test anyway: batching is applied to the
  last test of a job only, so no later test can see their effect;
- an answer is used only for the call it was made for (same function, same arguments); the first
  call that differs empties the queue and goes to the program as usual.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

NAME = "__payoff_batch__"
# Builtins that never call back into an argument of plain data: skipped over inside a batch.
PURE = frozenset(getattr(builtins, n) for n in (
    "abs", "round", "len", "sorted", "set", "frozenset", "list", "tuple", "str", "int", "float", "bool", "sum", "min",
    "max", "all", "any", "isinstance", "type", "repr", "dict", "complex"))
_ALLOWED = (ast.Compare, ast.BinOp, ast.UnaryOp, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Constant, ast.Load,
            ast.cmpop, ast.operator, ast.unaryop)


def batched(source: str) -> ast.Module | None:
    """`source` parsed, with a ``__payoff_batch__([...])`` statement before each run of batchable
    asserts; None when it has none (or does not parse: the judge then reports the error itself)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    changed = _rewrite(tree.body)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            changed = _rewrite(node.body) or changed
    return ast.fix_missing_locations(tree) if changed else None


def _rewrite(body: list[ast.stmt]) -> bool:
    out: list[ast.stmt] = []
    run: list[ast.Call] = []
    start = 0
    changed = False

    def flush(end: int) -> None:
        nonlocal changed
        statements = body[start:end]
        if sum(1 for call in run if call.args is not None) >= 2 and len(statements) >= 2:
            out.append(ast.Expr(ast.Call(ast.Name(NAME, ast.Load()), [ast.List([_entry(c) for c in run], ast.Load())], [])))
            changed = True
        out.extend(statements)

    for index, statement in enumerate(body):
        calls = _calls(statement.test) if isinstance(statement, ast.Assert) else None
        if calls is None:
            flush(index)
            out.append(statement)
            run, start = [], index + 1
        else:
            run.extend(calls)
    flush(len(body))
    body[:] = out
    return changed


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _calls(expression: ast.expr) -> list[ast.Call] | None:
    """The calls in `expression` in the order Python evaluates them, or None when it holds
    anything else that could run code (names outside calls, attributes, ``and``/``or``...)."""
    found: list[ast.Call] = []

    def visit(node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or any(isinstance(a, ast.Starred) for a in node.args):
                return False
            if all(_literal(a) for a in node.args) and all(k.arg and _literal(k.value) for k in node.keywords):
                found.append(node)  # a call to send ahead
                return True
            if node.keywords or not all(visit(a) for a in node.args):
                return False
            found.append(ast.Call(node.func, None, []))  # a wrapper: must be a pure builtin at run time
            return True
        if not isinstance(node, _ALLOWED):
            return False
        return all(visit(child) for child in ast.iter_child_nodes(node))

    return found if visit(expression) and found else None


def _entry(call: ast.Call) -> ast.Tuple:
    function = ast.Name(call.func.id, ast.Load())  # type: ignore[attr-defined]
    if call.args is None:
        return ast.Tuple([function, ast.Constant(None), ast.Constant(None)], ast.Load())
    keywords = ast.Dict([ast.Constant(k.arg) for k in call.keywords], [k.value for k in call.keywords])
    return ast.Tuple([function, ast.Tuple(list(call.args), ast.Load()), keywords], ast.Load())


def plan(entries: Any, is_program_function: Any) -> list[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
    """The leading calls of `entries` that can go ahead: program functions, skipping pure builtins,
    up to the first other callable."""
    calls = []
    for function, args, kwargs in entries:
        if args is not None and is_program_function(function):
            calls.append((function, args, kwargs))
        elif not any(function is pure for pure in PURE):
            break
    return calls
