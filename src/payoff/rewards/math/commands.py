"""LaTeX commands, functions and environments for the answer parser (a mixin of `Parser`)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

Node = tuple[Any, ...]

FUNCTIONS = {
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "ln", "log", "exp", "sqrt", "det", "gcd", "lcm", "max", "min", "floor", "ceil",
}
CALLABLE_LETTERS = set("fghFGHPQWpq")
CONSTANTS = {"pi": ("const", "pi"), "infty": ("const", "inf"), "infinity": ("const", "inf"), "e": ("const", "e")}
RELATIONS = {"=": "=", "<": "<", ">": ">", "\\le": "<=", "\\ge": ">=", "\\ne": "!=", "\\approx": "~"}
MATRIX_ENVS = {"pmatrix", "bmatrix", "matrix", "vmatrix", "Bmatrix", "smallmatrix", "array"}
CLOSERS = {")", "]", "}", "\\}", "|", "&", "\\\\", "end"}
LIST_WORDS = {"and", "or"}


class ParseError(ValueError):
    pass


def flat_name(node: Node | None) -> str:
    """A canonical name for a subscript or decorated symbol: a_{37} -> a_37."""
    if node is None:
        return ""
    if node[0] == "num":
        return str(node[1])
    if node[0] in ("sym", "const", "text"):
        return str(node[1])
    return repr(node)


class CommandsMixin:
    """Methods of `Parser` for ``\\command`` tokens, function application and matrices."""

    # Relies on Parser's peek/next/accept/expect/make/parse_group/parse_list/parse_expr/symbol.

    def function(self, name: str) -> Node:
        power = None
        if name == "sqrt":
            index = None
            if self.accept("["):
                index = self.parse_expr(0)
                self.expect("]")
            if self.accept("("):  # plain-text sqrt(2)
                argument = self.parse_list(stop={")"})
                self.expect(")")
            else:
                argument = self.parse_group()
            if index is None:
                return self.make("fn", "sqrt", (argument,))
            return self.make("pow", argument, self.make("div", self.make("num", Fraction(1), None), index))
        base = None
        if name == "log" and self.accept("_"):  # \log_b x = ln x / ln b
            base = self.parse_group()
        if self.accept("^"):
            power = self.parse_group()
        if self.peek() is not None and self.peek().text == "(":  # type: ignore[union-attr]
            self.pos += 1
            argument = self.parse_list(stop={")"})
            self.expect(")")
        elif self.peek() is not None and self.peek().text == "{":  # type: ignore[union-attr]
            argument = self.parse_group()
        else:
            argument = self.bare_argument()
        args = argument[1] if argument[0] == "list" else (argument,)
        node = self.make("fn", name, args)
        if base is not None:
            node = self.make("div", node, self.make("fn", "log", (base,)))
        return self.make("pow", node, power) if power is not None else node

    def bare_argument(self) -> Node:
        r"""``\sin 2x`` takes ``2x``; ``\sin b \cos a`` stops at the next function."""
        argument = self.parse_expr(21)
        while self.peek() is not None and self.peek().kind in ("num", "name") and self.peek().text not in FUNCTIONS:  # type: ignore[union-attr]
            argument = self._combine("mul", argument, self.parse_expr(21))
        return argument

    def command(self, text: str) -> Node:
        name = text[1:]
        if name == "frac":
            return self.make("div", self.parse_group(), self.parse_group())
        if name == "binom":
            return self.make("fn", "binom", (self.parse_group(), self.parse_group()))
        if name in FUNCTIONS:
            return self.function(name)
        if name in ("pi", "infty"):
            return CONSTANTS[name]  # type: ignore[return-value]
        if name == "{":
            items = self.parse_list(stop={"\\}"})
            self.expect("\\}")
            return self.make("set", items[1] if items[0] == "list" else (items,))
        if name in ("emptyset", "varnothing"):
            return self.make("set", ())
        if name == "mathbb":
            letter = flat_name(self.parse_group())
            if letter == "R":
                return self.make("seq", "(", ")", (self.make("neg", ("const", "inf")), ("const", "inf")))
            return self.make("sym", f"mathbb_{letter}")
        if name in ("overline", "vec", "hat", "bar", "tilde", "overrightarrow", "widehat", "angle", "triangle"):
            following = self.peek()
            argument = self.parse_group() if following is not None and following.kind != "op" or (following and following.text == "{") else None
            return self.make("sym", f"{name}_{flat_name(argument) if argument else ''}")
        if name == "|":
            inner = self.parse_expr(0)
            self.expect("\\|")
            return self.make("fn", "abs", (inner,))
        return self.symbol(name)  # Greek letters and other named symbols

    def environment(self, text: str) -> Node:
        env = text[len("\\begin{") :].split("}", 1)[0]
        if env not in MATRIX_ENVS:
            raise ParseError(f"unsupported environment {env}")
        rows: list[tuple[Node, ...]] = []
        row: list[Node] = []
        while True:
            token = self.peek()
            if token is None:
                raise ParseError(f"unterminated {env}")
            if token.kind == "end":
                self.pos += 1
                break
            if token.text == "&":
                self.pos += 1
                continue
            if token.text == "\\\\":
                self.pos += 1
                if row:
                    rows.append(tuple(row))
                row = []
                continue
            row.append(self.parse_expr(0))
        if row:
            rows.append(tuple(row))
        return self.make("matrix", tuple(rows))


