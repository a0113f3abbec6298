"""Length and efficiency shaping. Correctness comes from ``meta['correct']`` or a verifier
(``verifier``, default ``math``); length from ``meta['num_tokens']`` or words (``unit``).

Stateful schedules that need the whole run's history (HAPO, LASER-D) are batch shapers in
`payoff.compose.shapers`, because worker processes cannot share state.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Interval

from payoff.core import Outcome, Sample, group_reward, reward
from payoff.rewards.common import correctness, length, measured_length

Unit = Literal["tokens", "words", "chars"]


@reward(name="cosine_length")
def cosine_length(
    sample: Sample,
    max_length: Annotated[int, Gt(0)] = 1000,
    min_value_wrong: float = -1.0,
    max_value_wrong: float = -0.5,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
    verifier: str = "math",
    unit: Unit = "tokens",
) -> Outcome:
    """Cosine length scaling (Kimi k1.5 / open-r1; Yeo et al. 2025, "Demystifying Long CoT").

    With progress p = min(L / max_length, 1) and c = cos(p * pi):
    correct: r = min_c + (max_c - min_c) * (1 + c) / 2 (short correct answers earn most);
    wrong:   r = max_w + (min_w - max_w) * (1 + c) / 2 (short wrong answers are punished most).
    """
    correct = correctness(sample, verifier)
    if correct is None:
        return Outcome.abstain("correctness unknown")
    size, measured = measured_length(sample, unit)
    cosine = math.cos(min(size / max_length, 1.0) * math.pi)
    if correct:
        low, high = min_value_correct, max_value_correct
    else:
        low, high = max_value_wrong, min_value_wrong
    value = low + 0.5 * (high - low) * (1.0 + cosine)
    return Outcome.ok(value, {"correct": correct, "length": float(size), f"length_in_{measured}": 1.0})


@reward(name="overlong_penalty")
def overlong_penalty(sample: Sample, max_length: Annotated[int, Gt(0)] = 4096, cache: Annotated[int, Gt(0)] = 512, unit: Unit = "tokens") -> Outcome:
    """DAPO's soft overlong punishment (Yu et al. 2025), with L_max = max_length, L_cache = cache:
    0 if L <= L_max - L_cache; (L_max - L_cache - L) / L_cache in the buffer; -1 beyond L_max."""
    if not 0 < cache <= max_length:
        return Outcome.error("need 0 < cache <= max_length")
    size, measured = measured_length(sample, unit)
    expected = max_length - cache
    if size <= expected:
        value = 0.0
    elif size <= max_length:
        value = (expected - size) / cache
    else:
        value = -1.0
    return Outcome.ok(value, {"length": float(size), f"length_in_{measured}": 1.0})


@reward(name="laser")
def laser(
    sample: Sample, target_length: Annotated[int, Gt(0)] = 2048, alpha: Annotated[float, Ge(0)] = 0.5, verifier: str = "math", unit: Unit = "tokens",
    reward_wrong_short: bool = False,
) -> Outcome:
    """LASER (Liu et al. 2025, length-based step reward): r = C + alpha * S, with the step function
    S = 1[L <= target_length]. By default only correct answers earn S (the paper's finding that
    rewarding short wrong answers hurts); ``reward_wrong_short=True`` gives it to all."""
    correct = correctness(sample, verifier)
    if correct is None:
        return Outcome.abstain("correctness unknown")
    size, measured = measured_length(sample, unit)
    short = float(size <= target_length)
    bonus = alpha * short * (1.0 if (correct or reward_wrong_short) else 0.0)
    return Outcome.ok(correct + bonus, {"correct": correct, "within_target": short, "length": float(size), f"length_in_{measured}": 1.0})


@reward(name="budget_length")
def budget_length(
    sample: Sample, start_budget: Annotated[int, Gt(0)] = 4096, end_budget: Annotated[int, Gt(0)] = 1024,
    total_steps: Annotated[int, Gt(0)] = 1000, penalty: Annotated[float, Ge(0)] = 0.5, verifier: str = "math", unit: Unit = "tokens",
) -> Outcome:
    """Train Long, Think Short (2025): a length budget that shrinks linearly over training,
    B(t) = max(end, start - (start - end) * t / T), with t = ``meta['step']``. A correct answer
    within budget scores 1; over budget 1 - penalty * min((L - B) / B, 1); a wrong answer 0."""
    correct = correctness(sample, verifier)
    if correct is None:
        return Outcome.abstain("correctness unknown")
    step = int(sample.meta.get("step", 0))
    budget = max(end_budget, start_budget - (start_budget - end_budget) * step / max(total_steps, 1))
    size, measured = measured_length(sample, unit)
    if not correct:
        value = 0.0
    elif size <= budget:
        value = 1.0
    else:
        value = 1.0 - penalty * min((size - budget) / budget, 1.0)
    return Outcome.ok(value, {"correct": correct, "budget": float(budget), "length": float(size), f"length_in_{measured}": 1.0})


@group_reward(name="grpo_lambda")
def grpo_lambda(
    samples: list[Sample], threshold: Annotated[float, Interval(ge=0, le=1)] = 0.5, alpha: Annotated[float, Ge(0)] = 0.5, verifier: str = "math",
    unit: Unit = "tokens",
) -> list[Outcome]:
    """GRPO-λ (2025): apply a length penalty only in groups the policy already solves often.

    If the group's correct fraction is >= threshold, a correct answer scores
    1 - alpha * (L - L_min) / (L_max - L_min) over the group's correct lengths (the shortest
    correct answer keeps 1); otherwise plain 0/1 correctness."""
    verdicts = [correctness(s, verifier) for s in samples]
    sizes = [length(s, unit) for s in samples]
    known = [v for v in verdicts if v is not None]
    accuracy = sum(known) / len(known) if known else 0.0
    correct_sizes = [n for v, n in zip(verdicts, sizes) if v]
    shortest, longest = (min(correct_sizes), max(correct_sizes)) if correct_sizes else (0, 0)
    outcomes = []
    for verdict, size in zip(verdicts, sizes):
        if verdict is None:
            outcomes.append(Outcome.abstain("correctness unknown"))
            continue
        value = verdict
        penalised = accuracy >= threshold and verdict and longest > shortest
        if penalised:
            value = 1.0 - alpha * (size - shortest) / (longest - shortest)
        outcomes.append(Outcome.ok(value, {"correct": verdict, "group_accuracy": accuracy, "penalised": float(bool(penalised))}))
    return outcomes
