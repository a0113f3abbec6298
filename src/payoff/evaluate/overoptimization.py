"""Over-optimisation curves (Gao, Schulman and Hilton 2022, "Scaling Laws for Reward Model
Overoptimization"): choose the best of n samples by a proxy reward (a trained RM) and watch the
gold reward (the verifier) as n grows.

- Best-of-n's KL from the policy: KL_bon(n) = ln n - (n - 1) / n (exact when rewards never tie).
- Gold gain against d = sqrt(KL): R(d) - R(0) = d (alpha - beta d), fitted by least squares.
- The expected score of best-of-n is computed exactly from a pool of N >= n candidates per
  prompt, not by resampling: sorted by proxy score, the candidate with k candidates below it is
  the best of a uniformly drawn n-subset with probability C(k, n - 1) / C(N, n). Equal proxy
  scores share their probability mass equally.
- The empirical KL of best-of-n on the pool, from the proxy's empirical distribution F per prompt
  (ties included): pi_bon(y) / pi(y) = (F(r)^n - F(r-)^n) / (F(r) - F(r-)), F(r-) = P(score < r),
  so KL = E_bon[log of that ratio]. The policy's own probabilities cancel in the ratio, which is
  why no log-probs are needed; with ties it falls below the formula.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any


def kl_best_of_n(n: int) -> float:
    return math.log(n) - (n - 1) / n


def best_of_n_weights(proxy: Sequence[float], n: int) -> list[float]:
    """P(candidate i is the one best-of-n picks) for a uniformly drawn n-subset of the pool."""
    size = len(proxy)
    if not 1 <= n <= size:
        raise ValueError(f"n must be in [1, {size}]")
    order = sorted(range(size), key=lambda i: proxy[i])
    total = math.comb(size, n)
    weights = [0.0] * size
    start = 0
    while start < size:  # runs of equal proxy scores share their mass
        end = start
        while end + 1 < size and proxy[order[end + 1]] == proxy[order[start]]:
            end += 1
        # P(the max of the subset lies in this run) = (C(end+1, n) - C(start, n)) / C(N, n)
        mass = (math.comb(end + 1, n) - math.comb(start, n)) / total
        for k in range(start, end + 1):
            weights[order[k]] = mass / (end - start + 1)
        start = end + 1
    return weights


def empirical_kl(proxy: Sequence[float], n: int) -> float:
    """KL(best-of-n || policy) on one prompt's pool, from the empirical proxy distribution."""
    size = len(proxy)
    kl = 0.0
    for value in set(proxy):
        below = sum(1 for p in proxy if p < value) / size
        at_or_below = sum(1 for p in proxy if p <= value) / size
        mass_bon = at_or_below ** n - below ** n
        if mass_bon > 0:
            kl += mass_bon * math.log(mass_bon / (at_or_below - below))
    return kl


def fit_gain(d: Sequence[float], gain: Sequence[float]) -> tuple[float, float]:
    """(alpha, beta) minimising sum (gain - d (alpha - beta d))^2: least squares on [d, -d^2]."""
    s11 = sum(x * x for x in d)
    s12 = sum(-x ** 3 for x in d)
    s22 = sum(x ** 4 for x in d)
    t1 = sum(x * g for x, g in zip(d, gain))
    t2 = sum(-x * x * g for x, g in zip(d, gain))
    det = s11 * s22 - s12 * s12
    if abs(det) < 1e-12:
        return (t1 / s11 if s11 else 0.0), 0.0
    return (t1 * s22 - t2 * s12) / det, (s11 * t2 - s12 * t1) / det


def curves(rows: Sequence[dict[str, Any]], ns: Sequence[int] | None = None) -> dict[str, Any]:
    """``rows``: one per candidate with ``group``, ``proxy`` and ``gold`` scores. Groups with fewer
    candidates than n are left out at that n."""
    groups: dict[Any, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        if row.get("proxy") is not None and row.get("gold") is not None:
            groups[row["group"]].append((float(row["proxy"]), float(row["gold"])))
    largest = min((len(v) for v in groups.values()), default=0)
    ns = [n for n in (ns or [2 ** k for k in range(12)]) if 1 <= n <= largest]
    points = []
    for n in ns:
        gold = proxy = kl = 0.0
        for members in groups.values():
            weights = best_of_n_weights([p for p, _ in members], n)
            gold += sum(w * g for w, (_, g) in zip(weights, members)) / len(groups)
            proxy += sum(w * p for w, (p, _) in zip(weights, members)) / len(groups)
            kl += empirical_kl([p for p, _ in members], n) / len(groups)
        points.append({"n": n, "kl_formula": kl_best_of_n(n), "kl_empirical": kl, "gold": gold, "proxy": proxy})
    result: dict[str, Any] = {"points": points, "prompts": len(groups), "pool": largest}
    if len(points) >= 3:
        d = [math.sqrt(p["kl_formula"]) for p in points]
        base_gold, base_proxy = points[0]["gold"], points[0]["proxy"]
        result["gold_fit"] = dict(zip(("alpha", "beta"), fit_gain(d, [p["gold"] - base_gold for p in points])))
        result["proxy_fit"] = dict(zip(("alpha", "beta"), fit_gain(d, [p["proxy"] - base_proxy for p in points])))
    return result


def plot_curves(result: dict[str, Any], path: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = result["points"]
    d = [math.sqrt(p["kl_formula"]) for p in points]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, fit, colour in (("gold", "gold_fit", "tab:orange"), ("proxy", "proxy_fit", "tab:blue")):
        gains = [p[key] - points[0][key] for p in points]
        left.plot(d, gains, "o", color=colour, label=f"{key} (best-of-n)")
        if fit in result:
            alpha, beta = result[fit]["alpha"], result[fit]["beta"]
            grid = [max(d) * i / 50 for i in range(51)]
            left.plot(grid, [x * (alpha - beta * x) for x in grid], "-", color=colour, label=f"{key} fit: d({alpha:.3f} - {beta:.3f} d)")
    left.set_xlabel("d = sqrt(KL_bon)")
    left.set_ylabel("score gain over n = 1")
    left.legend(fontsize=8)
    right.plot([p["n"] for p in points], [p["kl_formula"] for p in points], "-", label="ln n - (n-1)/n")
    right.plot([p["n"] for p in points], [p["kl_empirical"] for p in points], "o", label="empirical (pool)")
    right.set_xscale("log", base=2)
    right.set_xlabel("n")
    right.set_ylabel("KL(best-of-n || policy)")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
