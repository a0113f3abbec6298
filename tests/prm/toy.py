"""A reward for the labelling tests (a module, so engine workers import it by path)."""

from __future__ import annotations

from payoff.core import Sample, reward


@reward(name="test_says_good")
def says_good(sample: Sample) -> float:
    """1 when the completion (prefix + continuation) contains GOOD."""
    return float("GOOD" in sample.completion)
