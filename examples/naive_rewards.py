"""Naive rewards of the kind people write by hand. Each one fails `payoff audit`:

    payoff audit examples/audit_tasks.jsonl --reward examples/naive_rewards.py:substring_match
"""

from __future__ import annotations

import re

from payoff import Sample


def substring_match(sample: Sample) -> float:
    """1 if the reference appears anywhere in the completion (credits answer spam)."""
    return float(str(sample.reference) in sample.completion)


def last_number(sample: Sample) -> float:
    """1 if the last number anywhere in the completion equals the reference (credits hedging)."""
    numbers = re.findall(r"-?\d+(?:\.\d+)?", sample.completion)
    return float(bool(numbers) and numbers[-1] == str(sample.reference).strip())


def keyword_judge(sample: Sample) -> float:
    """A stand-in for a gullible LLM judge: 1 if the completion contains the reference, or says it
    is correct, or looks like a solution (credits injection and master keys)."""
    text = sample.completion.lower()
    keywords = ("correct", "solution", "step by step", "thought process")
    return float(str(sample.reference).lower() in text or any(k in text for k in keywords))
