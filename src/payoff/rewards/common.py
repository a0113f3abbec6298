"""Helpers shared by rewards that need correctness or length as an input."""

from __future__ import annotations

import re
import warnings
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


_THINK_END = re.compile(r"</think\s*>", re.IGNORECASE)


def after_reasoning(completion: str) -> str:
    """What follows the last ``</think>``: a reasoning model's answer, without the drafts and tries
    of its reasoning; the whole completion when it has no closed reasoning block."""
    parts = _THINK_END.split(completion)
    return parts[-1] if len(parts) > 1 else completion


def references(sample: Sample) -> list[str]:
    """The sample's reference, or each of a list of references, as non-blank strings."""
    refs = sample.reference if isinstance(sample.reference, list) else [sample.reference]
    return [str(r) for r in refs if r is not None and str(r).strip()]


def repeated_fraction(text: str, n: int = 3) -> float:
    """Share of the word n-grams of `text` that repeat an earlier one (0 for text shorter than one)."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


_warned_fallback = False


def measured_length(sample: Sample, unit: str = "tokens") -> tuple[int, str]:
    """Completion length and the unit it was measured in: ``meta['num_tokens']`` (set by the
    trainer, which has the tokenizer) for tokens; whitespace words when tokens were asked for but
    no count is there (warned once per process: a 4096-token budget is not a 4096-word one);
    characters for chars."""
    global _warned_fallback
    if unit == "tokens":
        tokens: Any = sample.meta.get("num_tokens")
        if isinstance(tokens, int):
            return tokens, "tokens"
        if not _warned_fallback:
            _warned_fallback = True
            warnings.warn("length in tokens asked for, but the sample has no meta['num_tokens']: measuring words instead "
                          "(the trainer sets it; set it yourself, or use unit='words')", stacklevel=3)
        return len(sample.completion.split()), "words"
    if unit == "words":
        return len(sample.completion.split()), "words"
    if unit == "chars":
        return len(sample.completion), "chars"
    raise ValueError(f"unknown length unit {unit!r}; expected tokens, words or chars")


def length(sample: Sample, unit: str = "tokens") -> int:
    """`measured_length` without the unit."""
    return measured_length(sample, unit)[0]
