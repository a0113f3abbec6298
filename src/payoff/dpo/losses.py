"""Offline preference-optimisation losses, each a pure function of sequence log-probabilities.

Notation: for the chosen answer w and the rejected one l, pi_w = log pi(w | x) summed over w's
tokens (likewise pi_l), ref_w / ref_l the same under the frozen reference, and the implicit
reward margin h = (pi_w - ref_w) - (pi_l - ref_l).

- ``sigmoid`` (DPO, Rafailov et al. 2023): -log sigma(beta h).
- ``ipo`` (Azar et al. 2023): (h - 1 / (2 beta))^2, with h on *length-averaged* log-probs, as the
  IPO authors and TRL compute it.
- ``conservative`` (cDPO, Mitchell 2023; TRL's sigmoid with label smoothing): labels flipped with
  probability eps: -(1 - eps) log sigma(beta h) - eps log sigma(-beta h).
- ``robust`` (rDPO, Chowdhury et al. 2024): an unbiased loss under label noise eps < 1/2:
  [-(1 - eps) log sigma(beta h) + eps log sigma(-beta h)] / (1 - 2 eps).
- ``simpo`` (Meng et al. 2024): reference-free and length-normalised,
  -log sigma(beta (pi_w / |w| - pi_l / |l|) - gamma).
- ``rpo`` (Pang et al. 2024, iterative RPO): DPO plus alpha times the chosen answer's token-mean
  negative log-likelihood.
The implicit rewards beta (pi - ref) are what `payoff.dpo.reward.implicit_reward` serves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("sigmoid", "ipo", "conservative", "robust", "simpo", "rpo")


def dpo_sigmoid(h: torch.Tensor, beta: float) -> torch.Tensor:
    return -F.logsigmoid(beta * h)


def ipo(h_mean: torch.Tensor, beta: float) -> torch.Tensor:
    return (h_mean - 1.0 / (2.0 * beta)) ** 2


def conservative(h: torch.Tensor, beta: float, eps: float) -> torch.Tensor:
    return -(1 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)


def robust(h: torch.Tensor, beta: float, eps: float) -> torch.Tensor:
    if not 0 <= eps < 0.5:
        raise ValueError("robust DPO needs label_smoothing in [0, 0.5)")
    return (-(1 - eps) * F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1 - 2 * eps)


def simpo(pi_w: torch.Tensor, pi_l: torch.Tensor, len_w: torch.Tensor, len_l: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    return -F.logsigmoid(beta * (pi_w / len_w - pi_l / len_l) - gamma)


def preference_loss(kind: str, pi_w: torch.Tensor, pi_l: torch.Tensor, ref_w: torch.Tensor, ref_l: torch.Tensor, len_w: torch.Tensor,
                    len_l: torch.Tensor, *, beta: float, label_smoothing: float = 0.0, gamma: float = 0.5, alpha: float = 1.0) -> torch.Tensor:
    """Per-pair loss of ``kind`` (one of `LOSSES`); ``len_*`` are the answers' token counts."""
    h = (pi_w - ref_w) - (pi_l - ref_l)
    if kind == "sigmoid":
        return dpo_sigmoid(h, beta) if not label_smoothing else conservative(h, beta, label_smoothing)
    if kind == "conservative":
        return conservative(h, beta, label_smoothing)
    if kind == "robust":
        return robust(h, beta, label_smoothing)
    if kind == "ipo":
        return ipo((pi_w - ref_w) / len_w - (pi_l - ref_l) / len_l, beta)
    if kind == "simpo":
        return simpo(pi_w, pi_l, len_w, len_l, beta, gamma)
    if kind == "rpo":
        return dpo_sigmoid(h, beta) + alpha * (-pi_w / len_w)
    raise ValueError(f"unknown loss {kind!r}; losses: {', '.join(LOSSES)}")
