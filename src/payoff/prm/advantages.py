"""Process-supervised advantages (DeepSeekMath, Shao et al. 2024, section 4.1.3).

Each sample i of a group has step rewards r_i^(1..K_i), and step j ends at token e_i^(j). The
step rewards are normalised across the whole group (every step of every sample):
r~ = (r - mean) / std; a token's advantage is the sum of the normalised rewards of the steps that
end at or after it: A_{i,t} = sum over j with e_i^(j) >= t of r~_i^(j). Tokens after the last
step's end get 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def process_advantages(step_rewards: Sequence[Sequence[float]], step_ends: Sequence[Sequence[int]], lengths: Sequence[int],
                       eps: float = 1e-6) -> list[torch.Tensor]:
    """One group's per-token advantages: a 1-D tensor per sample, of its completion's length."""
    values = [r for rewards in step_rewards for r in rewards]
    if not values:
        return [torch.zeros(n) for n in lengths]
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    out = []
    for rewards, ends, length in zip(step_rewards, step_ends, lengths):
        advantage = torch.zeros(length)
        for reward, end in zip(rewards, ends):
            advantage[: min(end, length - 1) + 1] += (reward - mean) / (std + eps)
        out.append(advantage)
    return out
