"""Multiple choice, calibrated confidence and repetition."""

from __future__ import annotations

import re
from typing import Annotated

from annotated_types import Ge, Le

from payoff.core import Outcome, Sample, reward
from payoff.rewards.common import after_reasoning, correctness, repeated_fraction

_LETTER_PATTERNS = [
    re.compile(r"\\boxed\{\s*\\?(?:text\{)?\(?([A-J])\)?\}?\s*\}"),
    re.compile(r"(?:answer|option|choice)\s*(?:is|:)\s*:?\s*\(?\**([A-J](?:\s*(?:,|or|and|/)\s*[A-J])*)\b", re.IGNORECASE),
    re.compile(r"<answer>\s*\(?([A-J](?:\s*(?:,|or|and|/)\s*[A-J])*)\)?\s*</answer>"),
]
_LONE = re.compile(r"(?:^|\n)\s*\**\(?([A-J])\)?[.)]?\**\s*$")  # a last line that is only the letter, bold or not


def choice_letters(text: str) -> list[str]:
    """The option letter(s) given as the final answer; several letters mean a hedge."""
    for pattern in _LETTER_PATTERNS:
        found = pattern.findall(text)
        if found:
            return sorted(set(re.findall(r"[A-J]", found[-1].upper())))
    lone = _LONE.search(text.strip())
    return [lone.group(1)] if lone else []


@reward(name="multiple_choice")
def multiple_choice(sample: Sample) -> Outcome:
    """1 if the chosen option letter equals the reference letter (MMLU/GPQA-style RLVR). Naming
    several options ("A or B", "A, B, C, D") is a hedge and scores 0."""
    gold = str(sample.reference or "").strip().strip("()").upper()
    if not re.fullmatch(r"[A-J]", gold):
        return Outcome.abstain("the reference is not an option letter A-J")
    letters = choice_letters(after_reasoning(sample.completion))  # "the answer is A" while thinking is a try
    if not letters:
        return Outcome.ok(0.0, rule="no_choice_found")
    if len(letters) > 1:
        return Outcome.ok(0.0, rule="several_choices", choices=letters)
    return Outcome.ok(float(letters[0] == gold), choice=letters[0])


_CONFIDENCE = re.compile(r"<confidence>\s*([0-9.]+)\s*(%?)\s*</confidence>|confidence\s*[:=]\s*([0-9.]+)\s*(%?)", re.IGNORECASE)


def stated_confidence(text: str) -> float | None:
    """The last stated confidence in [0, 1] (``<confidence>0.8</confidence>``, "Confidence: 80%")."""
    matches = _CONFIDENCE.findall(text)
    if not matches:
        return None
    value_a, pct_a, value_b, pct_b = matches[-1]
    raw, percent = (value_a, pct_a) if value_a else (value_b, pct_b)
    try:
        value = float(raw) / (100.0 if percent or float(raw) > 1 else 1.0)
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


@reward(name="confidence_brier")
def confidence_brier(sample: Sample, verifier: str = "math") -> Outcome:
    """RLCR (Damani et al. 2025): R = 1[correct] - (q - 1[correct])^2 for stated confidence q.
    A missing or out-of-range confidence counts as the worst one (q = 1 - correct)."""
    correct = correctness(sample, verifier)
    if correct is None:
        return Outcome.abstain("correctness unknown")
    q = stated_confidence(after_reasoning(sample.completion))  # the confidence stated with the answer, not while thinking
    stated = q is not None
    if q is None:
        q = 1.0 - correct
    brier = (q - correct) ** 2
    return Outcome.ok(correct - brier, {"correct": correct, "confidence": q, "brier": brier, "stated": float(stated)})


@reward(name="repetition_penalty")
def repetition_penalty(sample: Sample, ngram: Annotated[int, Ge(1)] = 3, max_penalty: Annotated[float, Le(0)] = -1.0) -> Outcome:
    """N-gram repetition penalty (open-r1, after Yeo et al. 2025): with the word n-grams of the
    completion, r = max_penalty * (1 - unique / total); 0 for text shorter than one n-gram."""
    repeated = repeated_fraction(sample.completion, ngram)
    return Outcome.ok(max_penalty * repeated if repeated else 0.0, {"repeated_fraction": repeated})
