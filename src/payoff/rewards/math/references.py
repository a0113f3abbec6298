"""References stated in prose: the answers a dataset's sentence states, or why it cannot be read.

"0 is the only possible value" -> 0; "The limit exists and is equal to 3" -> 3; "C(10, 5), or
equivalently 252" -> either; "No integer solutions" -> no; "0 (i.e., no real-valued zeros)" -> 0.
A reference that cannot be read ("Always greater than 20") is reported with its reason, so the
reward abstains instead of scoring every answer 0. Claims are read by `prose`.
"""

from __future__ import annotations

import re

from payoff.rewards.math.prose import (
    LEADING_COUNT,
    MATH_WORDS,
    NEGATIVE_EXISTENCE,
    NO,
    WORD,
    count_value,
    math_prefix,
    plain_text,
    prose_words,
)

_PAREN = re.compile(r"^(?P<main>.*?)\s*\((?P<inner>(?:i\.e\.|that is|no |none|all ).*)\)\s*$", re.IGNORECASE)
_ONLY_VALUE = re.compile(r"^(?P<value>.+?)\s+(?:is|are) the only (?:possible )?(?:values?|solutions?|answers?|possibility|limit)\b.*$",
                         re.IGNORECASE)
_THE_VALUE_IS = re.compile(r"^.*?\b(?:is|are)\s+(?:equal\s+to\s+)?(?P<value>[^,]+)$", re.IGNORECASE)


# Words that make even a short reference a statement to read ("C(10, 5), or equivalently 252", "n times").
PROSE_CUES = {"equivalently", "only", "possible", "exists", "exist", "limit", "such", "none", "solution", "solutions", "value",
              "values", "times", "pairs", "roots", "zeros", "least", "most", "exactly", "infinitely", "many", "period", "number",
              "numbers", "integer", "integers"}


def is_prose(text: str) -> bool:
    """A reference written in words rather than math."""
    return bool(prose_words(text))


def read_reference(text: str) -> tuple[list[str], str | None]:
    """The answers a prose reference states (alternatives: any may match), or ([], why) when it
    cannot be read. "0 is the only possible value" -> ["0"]; "C(10, 5), or equivalently 252" ->
    ["C(10, 5)", "252"]; "0 (i.e., no real-valued zeros)" -> ["0", "no"]."""
    plain = plain_text(text).strip().rstrip(".").strip()
    paren = _PAREN.match(plain)
    parts = [paren.group("main"), re.sub(r"^(?:i\.e\.|that is),?\s*", "", paren.group("inner"), flags=re.IGNORECASE)] if paren else [plain]
    if len(parts) > 1 and re.search(r"\b(?:if|when|otherwise|for (?:odd|even|all|every))\b", parts[1], re.IGNORECASE):
        parts = parts[:1]  # "(i.e., 1 for odd n, and n/(n+2) for even n)": cases of the main answer, not another answer
    equivalently = r",?\s*or (?:equivalently|an equivalent (?:form|expression)(?:,? such as)?),?\s+"  # "C(n, 4), or an equivalent form such as ..."
    if len(parts) == 1 and re.search(equivalently, plain, re.IGNORECASE):
        parts = re.split(equivalently, plain, flags=re.IGNORECASE)
    answers, first_failure = [], None
    for index, part in enumerate(parts):
        value = _reference_part(part.strip())
        if value is None:
            if index == 0:
                first_failure = part
            continue
        if value not in answers:
            answers.append(value)
    if len(answers) > 1 and NO in answers and re.fullmatch(r"-?\d+", answers[0]):
        answers.remove(NO)  # "0 (i.e., no such values)": the count; a bare "No" must not match it
    if first_failure is not None and len(parts) > 1 and not answers:
        return [], f"reference in prose that cannot be read: {text.strip()[:80]!r}"
    if not answers:
        return [], f"reference in prose that cannot be read: {text.strip()[:80]!r}"
    return answers, None


def _reference_part(part: str) -> str | None:
    if not part:
        return None
    if not is_prose(part):
        return part
    lead = re.match(r"^(yes|no)\b\s*[,.;]?\s*(.*)$", part, re.IGNORECASE)
    if lead and not re.match(r"(?:such|[\w-]+\s+(?:[\w-]+\s+)?(?:solutions?|values?|integers?|numbers?))\b", lead.group(2), re.IGNORECASE):
        return lead.group(1).lower() if not lead.group(2) else None  # "Yes, and the sequence is ...": two parts
    only = _ONLY_VALUE.match(part)
    if only:
        return math_prefix(only.group("value"))
    if re.match(r"^(?:no|none)\b", part, re.IGNORECASE) or NEGATIVE_EXISTENCE.search(part) or re.search(
            r"\b(?:is|are) not\b|\bnot possible\b|\bcannot\b", part, re.IGNORECASE):
        return NO
    count = LEADING_COUNT.match(part)
    if count:
        return count_value(count.group("count"))
    exists = re.search(r"\b(?:exists? and|with an?)\s+(?:is\s+)?(?:equal to|of|period of|value of)?\s*(?P<value>.+)$", part, re.IGNORECASE)
    if exists:
        value = math_prefix(re.sub(r"^(?:an?\s+)?(?:period|value|limit) of\s+", "", exists.group("value"), flags=re.IGNORECASE))
        if value:
            return value
    value = _THE_VALUE_IS.match(part)
    if value:
        found = math_prefix(value.group("value"))
        if found and not WORD.search(found.replace("sqrt", "")):
            return found
    words = [w for w in WORD.findall(part) if w.lower() not in MATH_WORDS]
    if len(words) <= 2 and not re.search(r"\d", part):
        return part  # a short answer in words ("Monotonically increasing"), compared as text
    return None
