"""Bias views of pairwise results: does the reward prefer length, and is sigma(r_c - r_r)
calibrated?

- ``accuracy_chosen_longer`` / ``_shorter`` / ``_equal``: accuracy split by whether the chosen
  answer has more characters than the rejected one. A reward that only counts length scores
  ~1 and ~0 on the two; a length-neutral one scores alike.
- ``length_correlation``: Pearson's r between an answer's length and its score, over all answers.
- ``calibration``: pairs binned by p = sigma(r_c - r_r) into 10 equal-width bins over [0, 1];
  each bin's mean p against the share of pairs the chosen answer actually won (``won``: chosen
  above rejected). For a reward whose differences are not log-odds (a 0/1 verifier) the bins
  say how far they are from being so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from payoff.engine.stats import pearson


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def bias_report(chosen: Sequence[float | None], rejected: Sequence[float | None], lengths: Sequence[tuple[int, int]]) -> dict[str, Any]:
    split: dict[str, list[float]] = {"longer": [], "shorter": [], "equal": []}
    xs, ys = [], []
    bins: list[list[tuple[float, float]]] = [[] for _ in range(10)]
    for c, r, (lc, lr) in zip(chosen, rejected, lengths):
        won = float(c is not None and r is not None and c > r)
        split["longer" if lc > lr else "shorter" if lc < lr else "equal"].append(won)
        for score, length in ((c, lc), (r, lr)):
            if score is not None:
                xs.append(float(length))
                ys.append(float(score))
        if c is not None and r is not None:
            p = _sigmoid(c - r)
            bins[min(9, int(p * 10))].append((p, float(c > r)))
    mean = lambda v: sum(v) / len(v) if v else None  # noqa: E731
    return {
        "accuracy_chosen_longer": mean(split["longer"]), "accuracy_chosen_shorter": mean(split["shorter"]),
        "accuracy_chosen_equal": mean(split["equal"]),
        "pairs_chosen_longer": len(split["longer"]), "pairs_chosen_shorter": len(split["shorter"]),
        "length_correlation": pearson(xs, ys),
        "calibration": [{"bin": i, "mean_p": mean([p for p, _ in b]), "won": mean([w for _, w in b]), "pairs": len(b)}
                        for i, b in enumerate(bins) if b],
    }
