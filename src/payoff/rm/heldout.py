"""Held-out metrics of a reward model on preference pairs, from the rewards alone.

- accuracy: the share of pairs with r_c > r_r among pairs that are not ties (|r_c - r_r| <= tol);
  ties are reported apart (``tie_rate``), never counted as wrong;
- mean margin: mean(r_c - r_r);
- reward mean / std over every answer (saved with the model to serve normalised scores);
- length correlation: Pearson's r between an answer's token length and its reward (length bias),
  and the accuracy split by whether the chosen answer is the longer one;
- calibration: expected calibration error of p = sigma(r_c - r_r) as the probability that the
  chosen answer wins, over 10 equal-width bins of p (the prediction's confidence is max(p, 1-p)).
"""

from __future__ import annotations

from typing import Any

import torch

from payoff.engine.stats import pearson


def expected_calibration_error(margins: torch.Tensor, bins: int = 10) -> float:
    """ECE of sigma(margin) as P(chosen wins), the label always being "chosen wins"."""
    p = torch.sigmoid(margins.double())
    confidence = torch.maximum(p, 1 - p)
    correct = (p > 0.5).double()
    total, error = len(p), 0.0
    edges = torch.linspace(0.5, 1.0, bins + 1)
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence >= low) & ((confidence < high) | (high == 1.0))
        if inside.any():
            error += inside.sum().item() / total * abs(correct[inside].mean().item() - confidence[inside].mean().item())
    return error


def pair_metrics(chosen: torch.Tensor, rejected: torch.Tensor, chosen_len: list[int], rejected_len: list[int],
                 tol: float = 0.0) -> dict[str, Any]:
    """Metrics from per-pair rewards (1-D tensors) and the answers' token lengths."""
    if len(chosen) == 0:
        return {"pairs": 0}
    margin = chosen - rejected
    tie = margin.abs() <= tol
    decided = ~tie
    accuracy = (margin[decided] > 0).double().mean().item() if decided.any() else None
    rewards = torch.cat([chosen, rejected]).double()
    lengths = [float(n) for n in chosen_len + rejected_len]
    longer = torch.tensor([c > r for c, r in zip(chosen_len, rejected_len)])
    shorter = torch.tensor([c < r for c, r in zip(chosen_len, rejected_len)])

    def split(where: torch.Tensor) -> float | None:
        keep = where & decided
        return (margin[keep] > 0).double().mean().item() if keep.any() else None

    return {
        "pairs": len(chosen), "accuracy": accuracy, "tie_rate": tie.double().mean().item(),
        "margin_mean": margin.double().mean().item(),
        "reward_mean": rewards.mean().item(), "reward_std": rewards.std(unbiased=False).item(),
        "length_correlation": pearson(lengths, rewards.tolist()),
        "accuracy_chosen_longer": split(longer), "accuracy_chosen_shorter": split(shorter),
        "share_chosen_longer": longer.double().mean().item(),
        "calibration_ece": expected_calibration_error(margin[decided]) if decided.any() else None,
    }
