"""Small real rewards for the viewer's fixtures (a module, so `payoff` subprocesses import them by path)."""

from __future__ import annotations

from payoff.core import Outcome, Sample, reward


@reward(name="view_vowels")
def vowels(sample: Sample) -> Outcome:
    """The share of lowercase vowels, with two components; a completion of no letters abstains and
    one whose length is a multiple of 7 errors, so a run holds every status."""
    text = sample.completion
    letters = sum(c.isalpha() for c in text)
    if not letters:
        return Outcome.abstain("no letters to judge")
    if len(text) % 7 == 0:
        raise RuntimeError("view_vowels: a planted failure on a length that is a multiple of 7")
    share = sum(c in "aeiou" for c in text) / len(text)
    return Outcome.ok(share, {"vowels": share, "letters": letters / len(text)}, extracted=text[:20])


@reward(name="view_length")
def length_share(sample: Sample) -> float:
    """Characters / 40, capped at 1: a variant that disagrees with `vowels`."""
    return min(len(sample.completion) / 40, 1.0)


@reward(name="view_tools")
def tool_use(sample: Sample) -> Outcome:
    """An episode reward: 1 when the final answer holds the last tool result, with the tool calls counted."""
    messages = sample.messages or []
    calls = sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
    results = [m["content"] for m in messages if m.get("role") == "tool"]
    right = bool(results) and results[-1].strip() in sample.completion
    turns = [m for m in messages if m.get("role") == "assistant"]
    return Outcome.ok(float(right), {"answer": float(right), "tool_calls": float(calls)},
                      turn_rewards=[0.0] * (len(turns) - 1) + [float(right)])
