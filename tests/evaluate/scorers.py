"""Small real rewards for the evaluation tests (a module, so engine workers import them by path)."""

from __future__ import annotations

from payoff.core import Outcome, Sample, reward


@reward(name="test_length")
def length(sample: Sample) -> float:
    """Characters of the completion: the length-only reward a bias report must expose."""
    return float(len(sample.completion))


@reward(name="test_says_yes")
def says_yes(sample: Sample) -> Outcome:
    """1 for a completion containing "yes", 0 for "no", abstains otherwise."""
    text = sample.completion.lower()
    if "yes" in text:
        return Outcome.ok(1.0)
    if "no" in text:
        return Outcome.ok(0.0)
    return Outcome.abstain("neither yes nor no")
