"""Parse a normalised answer into a small tree of tuples, never evaluating model text.

Nodes: ``("num", Fraction, places)`` (places: decimal places as written, None if exact),
``("sym", name)``, ``("const", "pi"|"e"|"inf")``, ``("add", items)``, ``("mul", items)``,
``("neg", x)``, ``("div", a, b)``, ``("pow", a, b)``, ``("fn", name, args)``, ``("pct", x)``,
``("pm", a, b)`` (a ± b; a may be None), ``("rel", items, ops)``, ``("in", x, s)``,
``("seq", open, close, items)``, ``("set", items)``, ``("union", items)``, ``("matrix", rows)``,
``("list", items)`` (a bare list: "1, 2", "1 and 2"), ``("ratio", items)``, ``("text", words)``.

Explosive input is refused before any arithmetic: numbers over `MAX_DIGITS` digits, exponents
in scientific notation over `MAX_EXPONENT`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from payoff.rewards.math.commands import (  # noqa: F401 - re-exported for callers of parse
    CALLABLE_LETTERS,
    CLOSERS,
    CONSTANTS,
    FUNCTIONS,
    LIST_WORDS,
    MATRIX_ENVS,
    RELATIONS,
    CommandsMixin,
    ParseError,
)
from payoff.rewards.math.commands import flat_name as _flat
from payoff.rewards.math.tokens import PLAIN_NUMBER, Token, tokenize

MAX_DIGITS = 400
MAX_EXPONENT = 400
MAX_NODES = 2000

Node = tuple[Any, ...]


class Parser(CommandsMixin):
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.nodes = 0

    # -- helpers --------------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise ParseError("unexpected end of answer")
        self.pos += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.text == text and token.kind in ("op", "cmd", "name", "word"):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            found = self.peek()
            raise ParseError(f"expected {text!r}, found {found.text if found else 'end'!r}")

    def make(self, *node: Any) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ParseError("answer too large")
        return tuple(node)

    def at_separator(self) -> bool:
        token = self.peek()
        if token is None:
            return True
        if token.kind == "word" or token.kind == "name":
            return token.text.lower() in LIST_WORDS
        return token.text in (",", ";") or token.text in CLOSERS or token.kind == "end"

    # -- grammar --------------------------------------------------------------------------------
    def parse_answer(self) -> Node:
        node = self.parse_list(stop=None)
        if self.peek() is not None:
            raise ParseError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def parse_list(self, stop: set[str] | None) -> Node:
        items = []
        while True:
            while self.peek() is not None and (self.peek().text in (",", ";") or self.peek().text.lower() in LIST_WORDS):  # type: ignore[union-attr]
                self.pos += 1
            token = self.peek()
            if token is None or (stop and token.text in stop):
                break
            items.append(self.parse_relation())
            token = self.peek()
            if token is None or (stop and token.text in stop):
                break
            if not (token.text in (",", ";") or token.text.lower() in LIST_WORDS):
                raise ParseError(f"unexpected {token.text!r}")
        if not items:
            return self.make("list", ())
        return items[0] if len(items) == 1 else self.make("list", tuple(items))

    def parse_relation(self) -> Node:
        first = self.parse_expr(0)
        if self.accept("\\in"):
            return self.make("in", first, self.parse_expr(0))
        items, ops = [first], []
        while self.peek() is not None and self.peek().text in RELATIONS:  # type: ignore[union-attr]
            ops.append(RELATIONS[self.next().text])
            items.append(self.parse_expr(0))
        if not ops:
            return first
        if ops[0] == "~":  # "x ≈ 11" states the answer
            ops = ("=",) + tuple(ops[1:])
        if "~" in ops:  # "x = 1/3 ≈ 0.33": the exact part decides
            cut = ops.index("~")
            items, ops = items[: cut + 1], ops[:cut]
            if not ops:
                return items[0]
        return self.make("rel", tuple(items), tuple(ops))

    def parse_expr(self, min_bp: int) -> Node:
        left = self.parse_prefix()
        while True:
            token = self.peek()
            if token is None or self.at_separator() or token.text in RELATIONS or token.text == "\\in":
                break
            text = token.text
            if text in ("+", "-", "\\pm", "\\mp"):
                bp = 10
            elif text == "\\cup":
                bp = 5
            elif text == ":":
                bp = 8
            elif text in ("*", "/"):
                bp = 20
            elif text == "^":
                bp = 30
            elif text in ("!", "%", "'"):
                bp = 40
            elif token.kind == "word" or (token.kind == "name" and len(text) >= 3 and text not in FUNCTIONS):
                self.pos += 1  # a unit or a word after a value ("125 miles"): not part of the value
                if self.accept("^"):  # "cm^2"
                    self.parse_group()
                continue
            else:
                bp = 20  # implicit multiplication: "2x", "3\sqrt{2}", "(a)(b)"
                if bp < min_bp:
                    break
                right = self.parse_expr(bp + 1)
                left = self._combine("mul", left, right)
                continue
            if bp < min_bp:
                break
            self.pos += 1
            if text in ("!", "%", "'"):
                left = self.make("fn", "fact", (left,)) if text == "!" else self.make("pct", left) if text == "%" else left
            elif text == "^":
                left = self.make("pow", left, self.parse_expr(bp))  # right-associative
            elif text == "+":
                left = self._combine("add", left, self.parse_expr(bp + 1))
            elif text == "-":
                left = self._combine("add", left, self.make("neg", self.parse_expr(bp + 1)))
            elif text in ("\\pm", "\\mp"):
                left = self.make("pm", left, self.parse_expr(bp + 1))
            elif text == "*":
                left = self._combine("mul", left, self.parse_expr(bp + 1))
            elif text == "/":
                left = self.make("div", left, self.parse_expr(bp + 1))
            elif text == "\\cup":
                left = self._combine("union", left, self.parse_expr(bp + 1))
            elif text == ":":
                left = self._combine("ratio", left, self.parse_expr(bp + 1))
        return left

    def _combine(self, kind: str, left: Node, right: Node) -> Node:
        items = (left[1] if left[0] == kind else (left,)) + (right[1] if right[0] == kind else (right,))
        return self.make(kind, items)

    def parse_prefix(self) -> Node:
        token = self.peek()
        if token is None:
            raise ParseError("missing operand")
        if token.text == "-":
            self.pos += 1
            return self.make("neg", self.parse_expr(15))
        if token.text == "+":
            self.pos += 1
            return self.parse_expr(15)
        if token.text in ("\\pm", "\\mp"):
            self.pos += 1
            return self.make("pm", None, self.parse_expr(15))
        return self.parse_primary()

    def parse_group(self) -> Node:
        """A ``{...}`` argument, or a single token as in ``\\frac12`` or ``\\sqrt3``."""
        if self.accept("{"):
            inner = self.parse_list(stop={"}"})
            self.expect("}")
            return inner
        token = self.next()
        if token.kind == "num":
            if len(token.text) > 1 and token.text.isdigit():
                self.tokens.insert(self.pos, Token("num", token.text[1:]))
                return self.number(token.text[0])
            return self.number(token.text)
        if token.kind == "name":
            if len(token.text) > 1:
                self.tokens.insert(self.pos, Token("name", token.text[1:]))
            return self.symbol(token.text[0])
        if token.kind == "cmd":
            self.pos -= 1
            return self.parse_primary()
        raise ParseError(f"bad argument {token.text!r}")

    def number(self, text: str) -> Node:
        digits = text.replace(".", "")
        if len(digits) > MAX_DIGITS:
            raise ParseError("number too long")
        places = len(text.split(".", 1)[1]) if "." in text else None
        return self.make("num", Fraction(text if not text.endswith(".") else text[:-1]), places)

    def symbol(self, name: str) -> Node:
        if self.accept("_"):
            following = self.peek()
            if following is not None and following.kind == "num" and following.text.isdigit():
                self.next()  # "a_10", "x_12": in plain text a subscript is the whole numeral, not a_1 times 0
                return self.make("sym", f"{name}_{following.text}")
            sub = self.parse_group()
            name = f"{name}_{_flat(sub)}"
        return CONSTANTS.get(name) or self.make("sym", name)  # type: ignore[return-value]

    def parse_primary(self) -> Node:
        token = self.next()
        kind, text = token.kind, token.text
        if kind == "num":
            value = self.number(text)
            following = self.peek()
            if following is not None and following.text == "_":  # a numeral in a base: 1011_2
                self.pos += 1
                return self.make("text", f"{text}_{_flat(self.parse_group())}")
            if value[2] is None and following is not None and following.text == "\\frac":
                fraction = self.parse_primary()
                if fraction[0] == "div" and fraction[1][0] == "num" and fraction[2][0] == "num":
                    return self.make("add", (value, fraction))  # mixed number 2\frac{1}{2}
                return self.make("mul", (value, fraction))
            return value
        if kind == "sci":
            mantissa, exponent = text.lower().split("e")
            if abs(int(exponent)) > MAX_EXPONENT:
                raise ParseError("exponent too large")
            return self.make("num", Fraction(mantissa) * Fraction(10) ** int(exponent), len(mantissa.split(".")[1]) if "." in mantissa else None)
        if kind == "word":
            return self.text_run(text)
        if kind == "name":
            return self.name(text)
        if kind == "begin":
            return self.environment(text)
        if kind == "cmd":
            return self.command(text)
        if text in ("(", "["):
            items = self.parse_list(stop={")", "]"})
            close = self.next().text
            if items[0] == "list":
                return self.make("seq", text, close, items[1])
            if text == "(" and close == ")" or items[0] == "matrix":
                return items
            return self.make("seq", text, close, (items,))
        if text == "{":
            inner = self.parse_list(stop={"}"})
            self.expect("}")
            return inner
        if text == "|":
            inner = self.parse_expr(0)
            self.expect("|")
            return self.make("fn", "abs", (inner,))
        raise ParseError(f"unexpected {text!r}")

    def text_run(self, first: str) -> Node:
        words = [first]
        while self.peek() is not None and self.peek().kind in ("word", "name") and self.peek().text.lower() not in LIST_WORDS:  # type: ignore[union-attr]
            words.append(self.next().text)
        return self.make("text", " ".join(words).lower())

    def name(self, text: str) -> Node:
        if text in FUNCTIONS:
            return self.function(text)
        if text in CONSTANTS and text != "e":
            return CONSTANTS[text]  # type: ignore[return-value]
        if len(text) >= 3:
            return self.text_run(text)
        if len(text) == 2:
            self.tokens.insert(self.pos, Token("name", text[1]))
            text = text[0]
        following = self.peek()
        if text == "C" and following is not None and following.text == "(":  # plain-text C(10, 5): a binomial
            self.pos += 1
            args = self.parse_list(stop={")"})
            self.expect(")")
            if args[0] == "list" and len(args[1]) == 2:
                return self.make("fn", "binom", args[1])
            raise ParseError("C(...) takes two arguments")
        if text in CALLABLE_LETTERS and following is not None and following.text == "(":
            self.pos += 1
            args = self.parse_list(stop={")"})
            self.expect(")")
            return self.make("fn", f"call:{text}", args[1] if args[0] == "list" else (args,))
        return self.symbol(text)


def parse(text: str) -> Node:
    """Parse a normalised answer string; raises ParseError (or TokenError) when it cannot."""
    if PLAIN_NUMBER.fullmatch(text) and len(text) <= MAX_DIGITS:
        return _plain_number(text)
    parser = Parser(tokenize(text))
    return parser.parse_answer()


def _plain_number(text: str) -> Node:
    """The tree the grammar builds for a plain number (the commonest answer), without tokenising:
    ``-3.50`` -> ("neg", ("num", 7/2, 2)). A property test holds it to the grammar's tree."""
    digits = text.lstrip("-")
    number: Node = ("num", Fraction(digits), len(digits.split(".", 1)[1]) if "." in digits else None)
    return ("neg", number) if text.startswith("-") else number
