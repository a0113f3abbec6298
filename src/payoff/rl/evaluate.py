"""Held-out evaluation: greedy accuracy and pass@k, scored through the engine like training."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from payoff.core import Outcome, Sample
from payoff.models.rollout import SamplingParams


def is_correct(outcome: Outcome, component: str | None, threshold: float) -> bool:
    """Correct when the accuracy component reaches ``threshold``; without a component named, the
    total. A named component the outcome lacks (its check failed) is not correct: the total of
    another reward never stands in for it."""
    value = outcome.score if component is None else outcome.components.get(component)
    return value is not None and value >= threshold


def join_accuracy(outcomes: Sequence[Outcome], checks: Sequence[Outcome], name: str) -> None:
    """Record the accuracy reward's score as component ``name`` of each outcome it scored."""
    for outcome, check in zip(outcomes, checks, strict=True):
        if check.status == "ok" and check.score is not None:
            outcome.components[name] = float(check.score)


class AccuracyJoin:
    """The engine `payoff rl train` scores through when ``accuracy_reward`` is not a term of the
    reward (a reward model or a judge, with ``accuracy_reward = "math"``): the reward and the
    accuracy reward score each batch side by side, and the accuracy reward's score joins the
    components, so accuracy means the verifier's verdict, never the learned reward's score."""

    def __init__(self, engine: Any, accuracy_engine: Any, name: str) -> None:
        self.engine, self.accuracy_engine, self.name = engine, accuracy_engine, name

    def score(self, samples: Sequence[Sample]) -> list[Outcome]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            checks = pool.submit(self.accuracy_engine.score, list(samples))
            outcomes = self.engine.score(samples)
            join_accuracy(outcomes, checks.result(), self.name)
        return outcomes


def evaluate(generator: Any, engine: Any, rows: Sequence[dict[str, Any]], prompts: Sequence[str], params: SamplingParams,
             component: str | None, threshold: float, pass_k: int = 0) -> dict[str, Any]:
    """``accuracy`` (greedy), and ``pass@k`` when ``pass_k`` > 0: the share of prompts with at
    least one correct answer among k samples. Also returns the greedy completions."""
    if not rows:
        return {}
    greedy = generator.generate(prompts, params, greedy=True)
    samples = [Sample(completion=text, prompt=row["prompt"], reference=row.get("reference"), meta=dict(row.get("meta") or {}))
               for text, row in zip(greedy.texts, rows)]
    outcomes = engine.score(samples)
    correct = [is_correct(o, component, threshold) for o in outcomes]
    result: dict[str, Any] = {"accuracy": sum(correct) / len(rows), "completions": greedy.texts,
                              "statuses": [o.status for o in outcomes]}
    if pass_k > 0:
        repeated = [p for p in prompts for _ in range(pass_k)]
        sampled = generator.generate(repeated, params)
        many = [Sample(completion=text, prompt=rows[i // pass_k]["prompt"], reference=rows[i // pass_k].get("reference"),
                       meta=dict(rows[i // pass_k].get("meta") or {})) for i, text in enumerate(sampled.texts)]
        hits = [is_correct(o, component, threshold) for o in engine.score(many)]
        solved = sum(any(hits[i * pass_k:(i + 1) * pass_k]) for i in range(len(rows)))
        result[f"pass@{pass_k}"] = solved / len(rows)
    return result
