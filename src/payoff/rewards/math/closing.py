"""Which sentence a completion closes its argument with (`claim_sentence`), read by `prose`.

Models close with a sentence rather than a box: the last one that opens with a concluding word
("Therefore", "In conclusion", "**Conclusion:**") or carries one inside ("..., so there are no
...", "we can conclude that ..."), unless more computation follows it; a remark after it ("Note:
...", where an extremum is reached) does not replace it; a closing line that points back ("This is
the final answer.") reads the line before it; a claim ending in ":" takes the formula lines after
it as its value. `claim_predicate` is what that claim says its subject is, in words.
"""

from __future__ import annotations

import re

from payoff.rewards.math.prose import (
    CONCLUDING,
    COPULA,
    COUNT,
    MATH_WORDS,
    NEGATION,
    NEGATIVE_EXISTENCE,
    WORD,
    main_clause,
    main_verb,
    math_prefix,
    plain_text,
    prose_words,
    sentences,
    strip_commands,
)

MARKER = re.compile(rf"^\W*(?:{CONCLUDING})\b[\s,:*]*", re.IGNORECASE)  # "Therefore, ...", "**Conclusion:** ..."
_INNER_MARKER = re.compile(r"(?:,|\band)\s+(?:so|thus|therefore|hence)\b,?\s+|\b(?:we (?:can |may |must )?(?:thus |therefore )?conclude|"
                           r"it follows|this (?:shows|proves|means))\s+that\s+", re.IGNORECASE)
_ASIDE = re.compile(r"^\W*(?:note|remark|caveat|disclaimer|p\.\s?s\.)\b", re.IGNORECASE)
# A closing line that points back at the one before it ("This is the final answer.").
_BACK_REFERENCE = re.compile(r"^\W*(?:this|that|it)\s+(?:is|gives|will be|would be)\s+(?:the|our|my)\s+(?:final\s+|required\s+|desired\s+|only\s+)?"
                             r"(?:answer|expression|result|formula|solution|value|count|polynomial|function)\b", re.IGNORECASE)
# A remark on where an extremum is reached, after the claim that states it ("This minimum value is achieved when x = 0.").
_ATTAINED = re.compile(r"^\W*(?:this|that|it|equality|the (?:minimum|maximum|minimal|maximal|smallest|largest|least|greatest|extreme))\b"
                       r"(?:\s+[A-Za-z]+){0,3}?\s+(?:(?:is|are|can be|will be)\s+)?(?:achieved|attained|reached|occurs|holds|happens|the case)\b",
                       re.IGNORECASE)
_REASON_FIRST = re.compile(r"^\W*(?:since|as|because|given that)\b[^,]*(?:\([^()]*\)[^,]*)*,\s+(?=\S)", re.IGNORECASE)


def claim_sentence(text: str, short: int = 600, polarity: bool = False) -> str | None:
    """The sentence a completion closes its argument with: the last sentence that opens with a
    concluding word ("Therefore", "In conclusion", "**Conclusion:**", ...) in the completion's
    last paragraphs, or a completion that is one sentence (a one-sentence summary)."""
    tail = text[-1500:]
    parts = sentences(text[-2500:])  # the conclusion is at the end; a long solution's start is not read
    if not parts:
        return None
    before = [part for part in parts[:-1] if plain_text(part)]  # a display's lone "\\]" holds nothing
    if before and _BACK_REFERENCE.match(parts[-1]) and before[-1][:60] in tail:
        return before[-1]  # "Number of ways = (2n)! / (2^n * n!)" then "This is the final expression for ...": the line it points at
    for index in range(len(parts) - 1, -1, -1):
        if _ASIDE.match(parts[index]):
            continue  # "Note: the solution assumes ..., so a, b and c can be zero": a remark after the claim
        inner = _INNER_MARKER.search(parts[index])
        if inner is None and index == len(parts) - 1:
            reason = _REASON_FIRST.match(parts[index])  # "Since ..., there are no integer solutions to ..."
            rest = parts[index][reason.end() :] if reason else ""
            if reason and (main_verb(rest) or NEGATIVE_EXISTENCE.search(rest) or polarity and NEGATION.search(rest)):
                inner = reason
        head = parts[index][: inner.start()] if inner else ""
        if inner and COPULA.search(head) and not re.match(r"\W*(?:since|because|as|if|however|given|but|after|when|now|we have (?:already )?"
                                                           r"(?:shown|proved|proven|established|seen|found)|(?:this|that|which) (?:is|gives|"
                                                           r"leads to) (?:a |an )?(?:contradiction|absurd))\b", head, re.I):
            inner = None  # "X is 0, since ... and thus ...": the claim comes first, the marker explains it
        if (MARKER.match(parts[index]) or inner) and parts[index][:60] in tail:
            claim = parts[index] if MARKER.match(parts[index]) else parts[index][inner.end() :]  # type: ignore[union-attr]
            if re.fullmatch(r"\W*(?:\*\*)?\w+(?: \w+)?(?:\*\*)?\s*:?\W*", claim) and index + 1 < len(parts):
                claim, index = parts[index + 1], index + 1  # "**Conclusion:**" on a line of its own
            values = []
            while claim.rstrip(" *").endswith(":") and index + 1 < len(parts):
                line = re.sub(r"^\W*(?:\d+[.)]\s+)?|\s+for (?:all|every|each|any)\b.*$", "", plain_text(parts[index + 1]))
                value = math_prefix(line) if line and not is_sentence(line) else None
                if not value:
                    break
                values.append(value)  # "are the constant solutions:" then "f(x) = 0 for all x ≠ 0", "f(x) = 1 ..."
                index += 1
            if values:
                claim = claim.rstrip(" *:") + " " + " and ".join(values)
            if any("=" in later or re.search(r"\d", later) and re.search(r"[-+*/]\s*\d|\b(?:equals|plus|minus|times)\b", later)
                   for later in parts[index + 1 :] if not (_ASIDE.match(later) or _ATTAINED.match(later))):
                return None  # more math follows: the marker opened a step, not the conclusion
            later = [m for m in re.finditer(r"(?<=\S)\s+(?:Therefore|Thus|Hence|In conclusion|So),?\s", claim)]
            if later:  # "... P(A) = 2/3 Therefore, the probability is 2/3": one line, several steps
                claim = claim[later[-1].start() :].strip()
            words = prose_words(claim)
            return claim if len(words) >= 2 or words and COPULA.search(claim) else None
    if len(text) <= short and len(parts) == 1 and "<<" not in text:
        for part in parts:
            explained = prose_words(part) and re.search(r"[=≡].*,?\s+(?:because|since|where)\b", part)  # "a_1964 = -1, because ..."
            if explained or is_sentence(part) and (polarity or COPULA.search(part) or NEGATIVE_EXISTENCE.search(part) or COUNT.search(part)
                                       or re.match(r"\W*(?:at least|at most|exactly|all)\b", part, re.IGNORECASE)
                                       or re.match(r"\W*(?:yes|no)\b", part, re.IGNORECASE)):
                return part
    return None


def claim_predicate(text: str) -> str | None:
    """What a closing claim says its subject is, in words, for a reference that is a phrase
    ("The sequence a_n/b_n is monotonically increasing." -> "monotonically increasing"); None
    without a verb in words or when the claim denies it ("is not ...")."""
    claim = claim_sentence(text)
    main = main_clause(claim) if claim else ""
    verb = main_verb(main)
    if verb is None:
        return None
    after = main[verb.end() :].strip(" .,:;*")
    if not after or NEGATION.search(after):
        return None
    return " ".join(after.split()).lower()


def is_sentence(text: str) -> bool:
    """Prose, not a formula: at least two words that are not math."""
    return len([w for w in WORD.findall(strip_commands(text)) if w.lower() not in MATH_WORDS]) >= 2
