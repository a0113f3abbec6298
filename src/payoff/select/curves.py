"""Scaling curves: accuracy against N for every method on prompts with a gold reward.

Each prompt has a pool of candidates. For each n, ``draws`` subsets of n candidates are drawn
(seeded, without replacement) from every pool, each method picks one candidate per subset, and
the accuracy of a draw is the share of prompts whose pick the gold reward passes. The curve is the
mean over draws; the band is the 2.5th-97.5th percentile of the draws (subsampling N out of the
pool: the bootstrap of the test-time scaling literature). ``pass@k`` is the unbiased estimator
on the whole pool (no draws needed); ``maj@k`` is majority vote over k-subsets.

Tokens: every sample-then-select method spends the generation tokens of its n candidates; the
report gives the mean per prompt at each n (candidates' ``tokens``, else their length in words).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from typing import Any

from payoff.select.methods import METHODS, pass_at_k

VOTING = {"majority", "weighted_vote", "borda", "maj@k"}


def _tokens(candidate: dict[str, Any]) -> float:
    tokens = candidate.get("tokens")
    return float(tokens) if isinstance(tokens, (int, float)) else float(len(str(candidate.get("completion", "")).split()))


def pick(method: str, candidates: Sequence[dict[str, Any]], aggregation: str = "min", borda_p: float = 0.5) -> int:
    if method == "maj@k":
        return METHODS["majority"](candidates)
    if method == "bon":
        return METHODS["bon"](candidates, aggregation)
    if method == "borda":
        return METHODS["borda"](candidates, borda_p)
    return METHODS[method](candidates)


def scaling_curves(prompts: Sequence[dict[str, Any]], methods: Sequence[str], ns: Sequence[int], draws: int = 50, seed: int = 0,
                   aggregation: str = "min", borda_p: float = 0.5) -> dict[str, Any]:
    """``prompts``: each ``{"candidates": [...]}``, every candidate with ``correct`` (bool, from
    the gold reward) and what the methods need. Returns ``curves`` (method -> {n -> accuracy}),
    ``bands`` (method -> {n -> [low, high]}) and ``tokens`` (method -> {n -> mean tokens})."""
    pool = min((len(p["candidates"]) for p in prompts), default=0)
    ns = [n for n in ns if 1 <= n <= pool]
    curves: dict[str, dict[int, float]] = {}
    bands: dict[str, dict[int, list[float]]] = {}
    tokens: dict[str, dict[int, float]] = {}
    rng = random.Random(seed)
    subsets = {n: [[rng.sample(range(len(p["candidates"])), n) for p in prompts] for _ in range(draws)] for n in ns}
    for method in methods:
        curves[method], bands[method], tokens[method] = {}, {}, {}
        for n in ns:
            if method == "pass@k":
                scores = [pass_at_k(len(p["candidates"]), sum(c["correct"] for c in p["candidates"]), n) for p in prompts]
                curves[method][n] = statistics.fmean(scores) if scores else 0.0
                bands[method][n] = [curves[method][n], curves[method][n]]
            else:
                accuracies = []
                for draw in subsets[n]:
                    hits = 0
                    for prompt, chosen in zip(prompts, draw):
                        candidates = [prompt["candidates"][i] for i in chosen]
                        hits += bool(candidates[pick(method, candidates, aggregation, borda_p)]["correct"])
                    accuracies.append(hits / len(prompts))
                curves[method][n] = statistics.fmean(accuracies)
                ordered = sorted(accuracies)
                bands[method][n] = [ordered[int(0.025 * (len(ordered) - 1))], ordered[int(round(0.975 * (len(ordered) - 1)))]]
            tokens[method][n] = statistics.fmean(n * statistics.fmean(_tokens(c) for c in p["candidates"]) for p in prompts)
    return {"curves": curves, "bands": bands, "tokens": tokens, "prompts": len(prompts), "pool": pool, "draws": draws}


def plot_scaling(result: dict[str, Any], path: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Left: accuracy against N. Right: against the tokens spent, where search and sampling
    # methods meet at an equal budget.
    figure, (axis, spent) = plt.subplots(1, 2, figsize=(11, 4))
    for method, curve in result["curves"].items():
        ns = sorted(curve)
        axis.plot(ns, [curve[n] for n in ns], marker="o", label=method)
        band = result["bands"][method]
        axis.fill_between(ns, [band[n][0] for n in ns], [band[n][1] for n in ns], alpha=0.15)
        budget = result.get("tokens", {}).get(method, {})
        if budget:
            spent.plot([budget[n] for n in ns if n in budget], [curve[n] for n in ns if n in budget], marker="o", label=method)
    axis.set_xscale("log", base=2)
    axis.set_xlabel("N (candidates per prompt)")
    axis.set_ylabel("accuracy (gold reward)")
    axis.legend(fontsize=8)
    spent.set_xscale("log", base=2)
    spent.set_xlabel("tokens generated per prompt")
    spent.set_ylabel("accuracy (gold reward)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
