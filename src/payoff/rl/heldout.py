"""Held-out accuracy: greedy accuracy and pass@k on prompts training never sees, scored by the
scorer training uses, with the reward as it stands: a held-out batch never moves the reward's
shapers, so evaluating (or not) leaves the training trajectory as it is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from payoff.core import Sample
from payoff.models.rollout import SamplingParams
from payoff.rl.scoring import RolloutScorer, is_correct


def heldout_accuracy(generator: Any, scorer: RolloutScorer, rows: Sequence[dict[str, Any]], prompts: Sequence[str],
                     params: SamplingParams, component: str | None, threshold: float, pass_k: int = 0) -> dict[str, Any]:
    """``accuracy`` (greedy), and ``pass@k`` when ``pass_k`` > 0: the share of prompts with at
    least one correct answer among k samples. Also returns the greedy completions."""
    if not rows:
        return {}
    greedy = generator.generate(prompts, params, greedy=True)
    samples = [Sample(completion=text, prompt=row["prompt"], reference=row.get("reference"), meta=dict(row.get("meta") or {}))
               for text, row in zip(greedy.texts, rows)]
    outcomes = scorer.score(samples, greedy, learn=False)
    correct = [is_correct(o, component, threshold) for o in outcomes]
    result: dict[str, Any] = {"accuracy": sum(correct) / len(rows), "completions": greedy.texts,
                              "statuses": [o.status for o in outcomes]}
    if pass_k > 0:
        repeated = [p for p in prompts for _ in range(pass_k)]
        sampled = generator.generate(repeated, params)
        many = [Sample(completion=text, prompt=rows[i // pass_k]["prompt"], reference=rows[i // pass_k].get("reference"),
                       meta=dict(rows[i // pass_k].get("meta") or {})) for i, text in enumerate(sampled.texts)]
        hits = [is_correct(o, component, threshold) for o in scorer.score(many, sampled, learn=False)]
        solved = sum(any(hits[i * pass_k:(i + 1) * pass_k]) for i in range(len(rows)))
        result[f"pass@{pass_k}"] = solved / len(rows)
    return result
