"""Helpers shared by rewards that need correctness or length as an input."""

from __future__ import annotations

from typing import Any

from payoff.core import Sample


def correctness(sample: Sample, verifier: str = "math") -> float | None:
    """1.0/0.0 for the sample's correctness: ``meta['correct']`` when the caller already knows it,
    else the named verifier's score; None when the verifier abstains or fails."""
    known = sample.meta.get("correct")
    if isinstance(known, (bool, int, float)):
        return float(bool(known))
    from payoff.registry import get_reward  # lazy: rewards are imported by the registry's loader

    outcome = get_reward(verifier).score_one(sample)
    return None if outcome.score is None else float(outcome.score >= 1.0)


def references(sample: Sample) -> list[str]:
    """The sample's reference, or each of a list of references, as non-blank strings."""
    refs = sample.reference if isinstance(sample.reference, list) else [sample.reference]
    return [str(r) for r in refs if r is not None and str(r).strip()]


def repeated_fraction(text: str, n: int = 3) -> float:
    """Share of the word n-grams of `text` that repeat an earlier one (0 for text shorter than one)."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def length(sample: Sample, unit: str = "tokens") -> int:
    """Completion length: ``meta['num_tokens']`` (set by the trainer, which has the tokenizer)
    when present and unit is tokens; otherwise whitespace words, or characters."""
    if unit == "tokens":
        tokens: Any = sample.meta.get("num_tokens")
        if isinstance(tokens, int):
            return tokens
        return len(sample.completion.split())
    if unit == "words":
        return len(sample.completion.split())
    if unit == "chars":
        return len(sample.completion)
    raise ValueError(f"unknown length unit {unit!r}; expected tokens, words or chars")
