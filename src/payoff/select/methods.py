"""Test-time selection methods, each a pure function of one prompt's candidates.

A candidate is a dict with ``completion`` and, where a method needs them, ``score`` (a reward),
``step_scores`` (a PRM's per-step scores), ``self_certainty`` and ``answer`` (its cluster key,
from `cluster_answers`). Every method returns the index of the candidate it picks.

- ``bon``: argmax of the score (first of equal scores); with step scores, aggregated first by
  ``min`` (the weakest step), ``product``, ``last`` or ``mean``.
- ``majority``: the answer cluster with most members; a tie goes to the cluster seen first.
- ``weighted_vote``: the cluster with the largest sum of scores (Uesato et al. 2022; Li et al.
  2023's weighted majority).
- ``borda`` (Kang et al. 2025, self-certainty): candidates ranked by self-certainty, the best of N
  getting rank 1; candidate r votes (N - r + 1)^p for its cluster; the largest total wins. p = 0
  is majority vote.
- ``self_certainty``: the single most self-certain candidate.
Of the picked cluster, the representative is its member with the best score (or the first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any


def aggregate_steps(step_scores: Sequence[float], how: str = "min") -> float:
    """One score from per-step scores: min, product, last or mean (an empty list: 0)."""
    if not step_scores:
        return 0.0
    if how == "min":
        return min(step_scores)
    if how == "product":
        return math.prod(step_scores)
    if how == "last":
        return step_scores[-1]
    if how == "mean":
        return sum(step_scores) / len(step_scores)
    raise ValueError("aggregation must be min, product, last or mean")


def _score(candidate: dict[str, Any], aggregation: str) -> float:
    if candidate.get("step_scores") is not None:
        return aggregate_steps(candidate["step_scores"], aggregation)
    score = candidate.get("score")
    return float(score) if score is not None else -math.inf  # an unscored candidate is never preferred


def best_of_n(candidates: Sequence[dict[str, Any]], aggregation: str = "min") -> int:
    scores = [_score(c, aggregation) for c in candidates]
    return max(range(len(candidates)), key=lambda i: (scores[i], -i))


def _pick_cluster(candidates: Sequence[dict[str, Any]], weight: Callable[[int], float]) -> int:
    totals: dict[Any, float] = {}
    first: dict[Any, int] = {}
    for i, c in enumerate(candidates):
        key = c.get("answer")
        if key is None:
            continue  # no answer to vote for
        totals[key] = totals.get(key, 0.0) + weight(i)
        first.setdefault(key, i)
    if not totals:
        return 0
    winner = max(totals, key=lambda k: (totals[k], -first[k]))
    members = [i for i, c in enumerate(candidates) if c.get("answer") == winner]
    return max(members, key=lambda i: (_score(candidates[i], "min"), -i))


def majority(candidates: Sequence[dict[str, Any]]) -> int:
    return _pick_cluster(candidates, lambda i: 1.0)


def weighted_vote(candidates: Sequence[dict[str, Any]]) -> int:
    return _pick_cluster(candidates, lambda i: max(0.0, _score(candidates[i], "min")) if candidates[i].get("score") is not None
                         or candidates[i].get("step_scores") is not None else 0.0)


def borda(candidates: Sequence[dict[str, Any]], p: float = 0.5) -> int:
    n = len(candidates)
    order = sorted(range(n), key=lambda i: (-float(candidates[i].get("self_certainty", -math.inf)), i))
    rank = {index: position + 1 for position, index in enumerate(order)}
    return _pick_cluster(candidates, lambda i: float(n - rank[i] + 1) ** p)


def most_self_certain(candidates: Sequence[dict[str, Any]]) -> int:
    return max(range(len(candidates)), key=lambda i: (float(candidates[i].get("self_certainty", -math.inf)), -i))


def self_certainty(log_probs: Any) -> float:
    """Token-mean KL(U || p) over a completion (Kang et al. 2025): for each position with the
    policy's log-distribution log p over a vocabulary of V tokens, KL(U || p) = -log V - (1/V)
    sum_j log p_j; averaged over positions. Higher: more confident. ``log_probs`` is a
    [positions, V] tensor of log-softmax values."""
    import torch

    logp = torch.as_tensor(log_probs, dtype=torch.float64)
    if logp.numel() == 0:
        return 0.0
    vocab = logp.shape[-1]
    per_token = -math.log(vocab) - logp.mean(-1)
    return float(per_token.mean())


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator (Chen et al. 2021): 1 - C(n - c, k) / C(n, k), from n samples
    of which c are correct."""
    if k > n:
        raise ValueError("k must be at most n")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


METHODS: dict[str, Callable[..., int]] = {"bon": best_of_n, "majority": majority, "weighted_vote": weighted_vote,
                                          "borda": borda, "self_certainty": most_self_certain}
