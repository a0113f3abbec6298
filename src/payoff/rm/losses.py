"""Bradley-Terry losses for reward models, each a pure function of the two rewards of a pair.

Notation: r_c, r_r are the rewards of the chosen and rejected answer, d = r_c - r_r - m with the
pair's margin m (Llama 2's margin loss; 0 where the data has none).

- ``bradley_terry``: -log sigma(d), the negative log-likelihood of the preference under the
  Bradley-Terry model P(c > r) = sigma(r_c - r_r).
- label smoothing eps: -(1 - eps) log sigma(d) - eps log sigma(-d), the likelihood under a label
  that is wrong with probability eps (noisy preferences).
- ``centering``: lambda * mean((r_c + r_r)^2), which pins the reward's mean near 0 without changing
  the preference likelihood (Eisenstein et al. 2023, "Helping or Herding?").
- ties (pairs whose data marks them equal, ``tie = true``): the target is P(c > r) = 1/2, so the
  loss is -1/2 log sigma(d) - 1/2 log sigma(-d) with d = r_c - r_r (label smoothing at 1/2),
  smallest at r_c = r_r; the margin does not apply to a tie.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | float = 0.0,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-pair loss -(1 - eps) log sigma(d) - eps log sigma(-d), d = r_c - r_r - m."""
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError("label_smoothing must be in [0, 0.5)")
    d = chosen - rejected - margin
    return -(1.0 - label_smoothing) * F.logsigmoid(d) - label_smoothing * F.logsigmoid(-d)


def tie_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Per-pair loss of a tie: the Bradley-Terry likelihood with target 1/2."""
    d = chosen - rejected
    return -0.5 * F.logsigmoid(d) - 0.5 * F.logsigmoid(-d)


def centering(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Per-pair (r_c + r_r)^2; the loss adds lambda times its mean."""
    return (chosen + rejected) ** 2


def reward_model_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | float = 0.0, *,
                      tie: torch.Tensor | None = None, label_smoothing: float = 0.0, center_coef: float = 0.0,
                      weight: torch.Tensor | None = None) -> torch.Tensor:
    """The mean training loss over a batch: Bradley-Terry (or the tie loss where ``tie``) plus
    ``center_coef`` * centering. ``weight`` (per pair, e.g. an ensemble head's bootstrap mask)
    weights the mean; a batch with zero total weight contributes 0."""
    per_pair = bradley_terry(chosen, rejected, margin, label_smoothing)
    if tie is not None:
        per_pair = torch.where(tie, tie_loss(chosen, rejected), per_pair)
    if center_coef:
        per_pair = per_pair + center_coef * centering(chosen, rejected)
    if weight is None:
        return per_pair.mean()
    return (per_pair * weight).sum() / weight.sum().clamp(min=1e-12)
