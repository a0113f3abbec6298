"""Summary statistics over a list of outcomes: what a person checks after a scoring run; and
Pearson's r, the one correlation every report uses."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from payoff.core import STATUSES, Outcome


@dataclass
class Summary:
    n: int
    statuses: dict[str, int]
    score_mean: float | None
    score_std: float | None
    components: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_s: dict[str, float] = field(default_factory=dict)
    cached: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "statuses": self.statuses,
            "score_mean": self.score_mean,
            "score_std": self.score_std,
            "components": self.components,
            "latency_s": self.latency_s,
            "cached": self.cached,
        }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (q in [0, 100])."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)


def summarize(outcomes: Sequence[Outcome]) -> Summary:
    """Status counts, mean/std of the score over ok outcomes, mean/std/count of each component,
    and latency percentiles from ``info['elapsed_s']``."""
    statuses = {status: 0 for status in STATUSES}
    scores: list[float] = []
    by_component: dict[str, list[float]] = {}
    latencies: list[float] = []
    cached = 0
    for outcome in outcomes:
        statuses[outcome.status] += 1
        if outcome.score is not None:
            scores.append(outcome.score)
        for name, value in outcome.components.items():
            by_component.setdefault(name, []).append(float(value))
        if outcome.info.get("cached"):
            cached += 1
        elif isinstance(outcome.info.get("elapsed_s"), (int, float)):
            latencies.append(float(outcome.info["elapsed_s"]))
    score_mean, score_std = _mean_std(scores) if scores else (None, None)
    components = {}
    for name, values in sorted(by_component.items()):
        mean, std = _mean_std(values)
        components[name] = {"mean": mean, "std": std, "count": float(len(values))}
    latencies.sort()
    latency = (
        {f"p{q}": percentile(latencies, q) for q in (50, 90, 99)} | {"max": latencies[-1]} if latencies else {}
    )
    return Summary(len(outcomes), statuses, score_mean, score_std, components, latency, cached)


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r of two equally long sequences; None where it is undefined (fewer than 2 points,
    or either side constant), never a made-up 0."""
    if len(x) < 2:
        return None
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sx = math.sqrt(sum((a - mx) ** 2 for a in x))
    sy = math.sqrt(sum((b - my) ** 2 for b in y))
    if sx == 0 or sy == 0:
        return None
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / (sx * sy)
