"""Normalise an answer string (LaTeX or plain) and cut it into tokens.

Normalisation removes what never changes a value: spacing commands, ``\\left``/``\\right``,
``\\displaystyle``, dollar signs, degree marks, font commands around numbers, and maps Unicode
operators to their LaTeX names. Thousands separators are folded only outside brackets, where a
comma cannot separate the items of a tuple or an interval.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

_REPLACEMENTS = [
    (re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg)(?![a-zA-Z])\s*"), ""),
    (re.compile(r"\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits)(?![a-zA-Z])"), ""),
    (re.compile(r"(\d),\\!\s*(?=\d{3})"), r"\1,"),
    (re.compile(r"(?<!\\)\\(?:[!,;:> ]|quad|qquad|enspace|thinspace|medspace|thickspace|hspace\{[^}]*\})"), " "),
    (re.compile(r"\\[dtc]frac(?![a-zA-Z])"), r"\frac"),
    (re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree"), ""),
    (re.compile(r"\{\s*,\s*\}"), ","),
    (re.compile(r"\\\$|\$"), ""),
    (re.compile(r"\\(?:mathrm|mathbf|mathit|mathsf|mathnormal|boldsymbol|bm)\s*\{\s*([^{}]*)\}"), r"\1"),
    (re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mbox|mathrm|operatorname)\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}"), r"\1"),
    (re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mbox|operatorname)\s*\{\s*\(?([a-zA-Z])\)?\s*\}"), r"\1"),
    (re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mbox|operatorname)\s*\{([^{}]*)\}"), r" \\word{\1} "),
    (re.compile(r"\\%|％"), "%"),
    (re.compile(r"\b(?:percentage|percent|pct)\b", re.IGNORECASE), "%"),
    (re.compile(r"\\(?:leqslant|leq|le)(?![a-zA-Z])|≤|<="), " \\le "),
    (re.compile(r"\\(?:geqslant|geq|ge)(?![a-zA-Z])|≥|>="), " \\ge "),
    (re.compile(r"\\(?:neq|ne)(?![a-zA-Z])|≠|!="), " \\ne "),
    (re.compile(r"\\lt(?![a-zA-Z])"), "<"),
    (re.compile(r"\\gt(?![a-zA-Z])"), ">"),
    (re.compile(r"\\(?:approx|simeq|sim)(?![a-zA-Z])|≈"), " \\approx "),
    # a congruence states its residue: "3^{105}+4^{105} \equiv 2 \pmod{11}" is the value 2
    (re.compile(r"\s*(?:\\pmod\s*\{[^{}]*\}|\\pmod\s*\w+|\(\s*\\?(?:mod|bmod)\s*[^()]*\))\s*$"), ""),
    (re.compile(r"\\equiv(?![a-zA-Z])|≡"), " = "),
    (re.compile(r"\\(?:cdot|times|ast)(?![a-zA-Z])|×|·|∙"), "*"),
    (re.compile(r"\\div(?![a-zA-Z])|÷"), "/"),
    (re.compile(r"−|–"), "-"),
    (re.compile(r"π"), r"\pi "),
    (re.compile(r"∞"), r"\infty "),
    (re.compile(r"√"), r"\sqrt "),
    (re.compile(r"±"), r"\pm "),
    (re.compile(r"∪"), r"\cup "),
    (re.compile(r"∈"), r"\in "),
    (re.compile(r"\\dots|\\ldots|\\cdots|…"), ""),
    (re.compile(r"²"), "^2"),
    (re.compile(r"³"), "^3"),
    (re.compile(r"[€£¥]"), ""),
]
_TRAILING_PUNCT = re.compile(r"[\s.;]+$")
_THOUSANDS_SPACE = re.compile(r"^-?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^(-?\d+),(\d+)$")


def _compiled_replacements() -> list[tuple[re.Pattern[str], Any]]:
    # Literal replacements go through a function so their backslashes are not escapes.
    return [(p, r if "\\1" in r else (lambda _m, r=r: r)) for p, r in _REPLACEMENTS]


_DOUBLED_BACKSLASH = re.compile(r"\\\\(?=[a-zA-Z(\[{}])")


_REPEATING = re.compile(r"(\d*)\.(\d*)\\overline\{?(\d+)\}?")
_EMPHASIS = re.compile(r"^(\*\*|__|\*|_)(?=\S)(.*?)(?<=\S)\1$", re.DOTALL)


def _repeating_decimal(match: re.Match[str]) -> str:
    r"""``0.1\overline{6}`` -> ``\frac{1}{6}``: A.B(C) = (ABC - AB) / (10^|B| (10^|C| - 1))."""
    whole, fixed, repeat = match.group(1) or "0", match.group(2), match.group(3)
    numerator = int(whole + fixed + repeat) - int(whole + fixed)
    denominator = 10 ** len(fixed) * (10 ** len(repeat) - 1)
    return f"\\frac{{{numerator}}}{{{denominator}}}"


# Texts up to this long are kept by `normalize` (4,096 of them) and `verifier.parse_answer` (2,048
# trees, about 9 KB for a 256-character sum of decimals: under 20 MB in all). Final answers and
# references are short; a long text, which a policy can write at will, is read each time instead.
CACHED_CHARS = 256


def kept(text: str) -> bool:
    """Whether the answer caches (here and in `verifier.parse_answer`) keep `text`."""
    return len(text) <= CACHED_CHARS


def normalize(text: str) -> str:
    """What never changes a value removed (the module's docstring). Short texts are kept: a
    sample's answer is normalised more than once, and a group's reference once per sample."""
    return _normalize_cached(text) if kept(text) else _normalize(text)


@functools.lru_cache(maxsize=4096)
def _normalize_cached(text: str) -> str:
    return _normalize(text)


# A plain number, the commonest answer: none of the rewrites below changes one (a property test
# holds the two paths to the same result), and skipping their 40-odd regex passes is most of a
# unique answer's normalising. `parse` builds its tree directly too.
PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _normalize(text: str) -> str:
    text = text.strip()
    return text if PLAIN_NUMBER.fullmatch(text) else _rewrite(text)


def _rewrite(text: str) -> str:
    while (emphasis := _EMPHASIS.match(text)):  # a markdown-bold answer: **42**
        text = emphasis.group(2).strip()
    if "\\overline" in text:
        text = _REPEATING.sub(_repeating_decimal, text)
    if "\\begin" not in text:
        # Answers copied through a layer of string escaping arrive as "\\frac": undo it (outside
        # environments, where "\\" is a row break).
        text = _DOUBLED_BACKSLASH.sub(lambda _m: "\\", text)
    for pattern, replacement in _SUBSTITUTIONS:
        text = pattern.sub(replacement, text)
    text = _TRAILING_PUNCT.sub("", text.strip())
    if _THOUSANDS_SPACE.match(text):
        text = text.replace(" ", "")
    decimal = _DECIMAL_COMMA.match(text)
    # "1,22" and "0,111" are decimal commas; "1,000" is a thousands separator (handled later).
    # A single digit after the comma reads as a list ("1,2"), not as 1.2.
    if decimal and (len(decimal.group(2)) not in (1, 3) or decimal.group(1).lstrip("-") == "0"):
        text = f"{decimal.group(1)}.{decimal.group(2)}"
    return text


_SUBSTITUTIONS = _compiled_replacements()


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, sci, name, cmd, word, op, begin, end
    text: str


_TOKEN = re.compile(
    r"""
    (?P<sci>\d+(?:\.\d+)?[eE][+-]?\d+(?![a-zA-Z]))
  | (?P<thousands>[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?(?![\d]))
  | (?P<num>\d+(?:\.\d*)?|\.\d+)
  | (?P<word>\\word\{[^{}]*\})
  | (?P<begin>\\begin\{[a-zA-Z*]+\}(?:\{[^{}]*\})?)
  | (?P<end>\\end\{[a-zA-Z*]+\})
  | (?P<newrow>\\\\)
  | (?P<cmd>\\[a-zA-Z]+|\\[{}|])
  | (?P<name>[a-zA-Z]+)
  | (?P<op>\\le|\\ge|\\ne|[-+*/^_()\[\]{},;=<>!|:&%'])
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE,
)


class TokenError(ValueError):
    pass


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    depth = 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        value = match.group()
        if kind == "space":
            continue
        if kind == "thousands":
            if depth == 0:
                tokens.append(Token("num", value.replace(",", "")))
                continue
            # Inside brackets the comma separates items: re-read the digits one group at a time.
            for part in re.split(r"(,)", value):
                tokens.append(Token("op", ",") if part == "," else Token("num", part))
            continue
        if kind == "other":
            raise TokenError(f"unexpected character {value!r}")
        if kind == "word":
            value = value[6:-1].strip()
            if not value:
                continue
        if kind == "newrow":
            kind = "op"
        if value in ("(", "[", "\\{"):
            depth += 1
        elif value in (")", "]", "\\}"):
            depth -= 1
        tokens.append(Token(kind, value))  # type: ignore[arg-type]
    return tokens
