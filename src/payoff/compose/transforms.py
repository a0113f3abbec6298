"""Shaping and anti-hacking transforms as small pure functions, each with its published formula.

They take plain numbers and lists so they can be checked against the papers (and property-tested)
without any reward machinery; `Rubric` and the shapers apply them to outcomes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence

from payoff.core import check_numbers


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def batch_normalize(scores: Sequence[float], eps: float = 1e-6) -> list[float]:
    """z-score over the batch: (r - mean(r)) / (std(r) + eps)."""
    if not scores:
        return []
    mean, std = _mean_std(scores)
    return [(r - mean) / (std + eps) for r in scores]


def group_normalize(scores: Sequence[float], groups: Sequence[Hashable], eps: float = 1e-6) -> list[float]:
    """z-score within each group (samples of one prompt): (r - mean_g) / (std_g + eps), as in
    GRPO's advantage. A group of one maps to 0."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    out = [0.0] * len(scores)
    for indices in members.values():
        mean, std = _mean_std([scores[i] for i in indices])
        for i in indices:
            out[i] = (scores[i] - mean) / (std + eps)
    return out


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def par(reward: float, reference_rewards: Sequence[float]) -> float:
    """Preference As Reward (PAR): r' = mean_m sigmoid(r - r_ref_m). Bounded in (0, 1), rises with
    r, unchanged when a constant is added to every reward; one reference is enough."""
    if not reference_rewards:
        raise ValueError("PAR needs at least one reference reward")
    return sum(sigmoid(reward - ref) for ref in reference_rewards) / len(reference_rewards)


def clip_steps(step_rewards: Sequence[float], eta: float = 0.0) -> list[float]:
    """Clip for process rewards (PRM hacking by repeating good steps): r_k' = min(r_k - eta, 0).
    Every step is non-positive, so adding steps can never raise the return."""
    return [min(r - eta, 0.0) for r in step_rewards]


def delta_steps(step_rewards: Sequence[float]) -> list[float]:
    """Delta for process rewards: r_k' = r_k - r_{k+1}, with the last step kept as r_K. The return
    from step t telescopes to r_t, so it stays bounded however many steps there are."""
    k = len(step_rewards)
    return [step_rewards[i] - step_rewards[i + 1] if i + 1 < k else step_rewards[i] for i in range(k)]


def min_form(step_rewards: Sequence[float]) -> list[float]:
    """PURE min-form credit assignment: V(s_t) = min_{k >= t} r_k (the value of a prefix is its
    worst remaining step, so a single bad step cannot be outvoted by many good ones)."""
    out: list[float] = []
    running = math.inf
    for r in reversed(step_rewards):
        running = min(running, r)
        out.append(running)
    return out[::-1]


def ensemble_mean(values: Sequence[float]) -> float:
    """Mean of an ensemble of reward models (Coste et al.)."""
    return sum(values) / len(values)


def ensemble_worst(values: Sequence[float]) -> float:
    """Worst-case ensemble: min_i r_i (Coste et al.): the policy must satisfy every model."""
    return min(values)


def ensemble_uncertainty(values: Sequence[float], lam: float = 1.0) -> float:
    """Uncertainty-weighted ensemble: mean_i r_i - lambda * var_i r_i (Coste et al.)."""
    mean, std = _mean_std(values)
    return mean - lam * std * std


def backward_correction(observed: float, rho_fp: float, rho_fn: float) -> float:
    """Noisy-verifier backward correction (RLVR under imperfect verifiers):
    r^ = (r~ - rho_fp) / (1 - rho_fp - rho_fn), unbiased for the clean 0/1 reward when the verifier
    flips 0->1 with probability rho_fp and 1->0 with probability rho_fn."""
    if not (0 <= rho_fp < 1 and 0 <= rho_fn < 1) or rho_fp + rho_fn >= 1:
        raise ValueError("need 0 <= rho_fp, rho_fn and rho_fp + rho_fn < 1")
    return (observed - rho_fp) / (1.0 - rho_fp - rho_fn)


class CalibrationState:
    """PPO-C calibration with verbalised confidence c in [0, 1]:
    running mean rbar <- a * mean(r) + (1 - a) * rbar, then r' = r + w * (r - rbar) * (c - 0.5).
    Confident right answers gain, confident wrong answers lose."""

    def __init__(self, alpha: float = 0.1, weight: float = 0.5, initial: float = 0.0) -> None:
        check_numbers("calibration", {"alpha": (0, 1)}, alpha=alpha, weight=weight, initial=initial)
        self.alpha, self.weight, self.rbar = alpha, weight, initial

    def apply(self, rewards: Sequence[float], confidences: Sequence[float]) -> list[float]:
        if rewards:
            self.rbar = self.alpha * (sum(rewards) / len(rewards)) + (1 - self.alpha) * self.rbar
        return [r + self.weight * (r - self.rbar) * (c - 0.5) for r, c in zip(rewards, confidences)]
