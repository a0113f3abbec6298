"""ProcessBench's scoring (Zheng et al. 2024), the one implementation payoff uses everywhere
(`payoff eval processbench`, the PRM trainer's held-out F1).

Each solution is a list of steps with a label: the index of its first wrong step, or -1 when
every step is right. A prediction is the same kind of index. Per subset:
- ``error_accuracy``: the share of erroneous solutions (label >= 0) whose first wrong step is
  found exactly;
- ``correct_accuracy``: the share of correct solutions (label -1) predicted -1;
- ``f1``: their harmonic mean, 2·a_err·a_cor / (a_err + a_cor) (0 when both are 0).
The overall F1 is the mean of the subsets' F1s, as ProcessBench averages over its four subsets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any


def harmonic(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return a if b is None else b  # a subset with only one kind of solution: its one accuracy
    return 2 * a * b / (a + b) if a + b else 0.0


def first_wrong_step(step_scores: Sequence[float | None], threshold: float = 0.5) -> int:
    """The prediction from per-step correctness scores: the first step scoring below
    ``threshold`` (an unscored step counts as wrong), or -1."""
    for index, score in enumerate(step_scores):
        if score is None or score < threshold:
            return index
    return -1


def processbench_scores(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``rows``: ``label`` (first wrong step or -1), ``prediction`` (same), optional ``subset``."""
    grouped: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for row in rows:
        grouped[str(row.get("subset") or "all")].append((int(row["label"]), int(row["prediction"])))
    subsets: dict[str, dict[str, Any]] = {}
    for name, items in sorted(grouped.items()):
        wrong = [(label, pred) for label, pred in items if label >= 0]
        right = [(label, pred) for label, pred in items if label < 0]
        error_accuracy = sum(pred == label for label, pred in wrong) / len(wrong) if wrong else None
        correct_accuracy = sum(pred < 0 for _, pred in right) / len(right) if right else None
        subsets[name] = {"error_accuracy": error_accuracy, "correct_accuracy": correct_accuracy,
                         "f1": harmonic(error_accuracy, correct_accuracy), "erroneous": len(wrong), "correct": len(right)}
    f1s = [s["f1"] for s in subsets.values() if s["f1"] is not None]
    return {"overall": sum(f1s) / len(f1s) if f1s else None, "subsets": {k: v["f1"] for k, v in subsets.items()},
            "details": subsets}
