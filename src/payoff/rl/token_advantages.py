"""Token-level advantage estimators: a value per completion token instead of one per sample.

Both are registered in `payoff.rl.algorithms.ESTIMATORS` (``level = "token"``) and return one
1-D tensor per sample (group-major, like the ``[P, G]`` grid flattened), of its completion's
length. Formulas: ../shared/TECHNIQUES.md section 4.

- ``gae`` (PPO, Schulman et al. 2016; Secrets of RLHF I): per-token rewards r_t (the KL penalty
  on every token, the sequence's score added on its last one) and a critic's values V_t;
  delta_t = r_t + gamma V_{t+1} - V_t with V_T = 0 after the last token, and
  A_t = sum_l (gamma lambda)^l delta_{t+l}. The critic's targets are the returns A_t + V_t.
- ``process_grpo`` (DeepSeekMath section 4.1.3): step rewards normalised across the whole group
  (every step of every valid sample), and a token's advantage is the sum of the normalised
  rewards of the steps that end at or after it.

Over episodes (``[env]``) the steps are the assistant turns (`turn_steps`): a turn ends at its
last sampled token, its reward is its ``turn_rewards`` entry and the outcome's residual goes to
the last turn, so the turn rewards of an episode add up to its reward; the environment's tokens
get advantages too but carry no loss. For ``gae`` the environment's tokens are taken out of the
sequence first (`payoff.rl.token_context`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def gae(token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over padded ``[N, T]`` rows (``mask`` marks real tokens;
    each row's tokens come first). Returns (advantages, returns), both 0 at padding."""
    mask = mask.to(values.dtype)
    rewards, values = token_rewards * mask, values * mask
    advantages = torch.zeros_like(values)
    running = torch.zeros(values.shape[0], dtype=values.dtype)
    width = values.shape[1]
    for t in reversed(range(width)):
        # Past a row's last token its values are 0 by the mask, so V_{T} = 0 falls out.
        next_value = values[:, t + 1] if t + 1 < width else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def gae_advantages(rewards: Tensor, valid: Tensor, token_rewards: list[Tensor], values: list[Tensor], gamma: float = 1.0,
                   lam: float = 0.95) -> list[Tensor]:
    """The ``gae`` estimator: per-sample token advantages (0 for a masked sample). The trainer
    builds ``token_rewards`` (KL penalty + score) and ``values`` (the critic) for it."""
    lengths = [len(v) for v in values]
    width = max(lengths, default=0) or 1
    padded_r, padded_v = torch.zeros(len(values), width), torch.zeros(len(values), width)
    mask = torch.zeros(len(values), width)
    for i, (r, v) in enumerate(zip(token_rewards, values)):
        padded_r[i, :len(r)], padded_v[i, :len(v)], mask[i, :len(v)] = r, v, 1.0
    advantages, _ = gae(padded_r, padded_v, mask, gamma, lam)
    flat_valid = valid.flatten()
    return [advantages[i, :n] * float(flat_valid[i]) for i, n in enumerate(lengths)]


def turn_steps(score: float, turn_rewards: Sequence[float] | None, turns: int) -> list[float] | None:
    """An episode's per-turn rewards for ``process_grpo``: r_t = turn_rewards[t] for t < T - 1
    and r_{T-1} = turn_rewards[T-1] + (R - sum_t turn_rewards[t]), with R the episode's reward
    (``score``) and T its assistant turns, so that sum_t r_t = R. With the G-RA gate shut
    (`gated_turns` gives all-zero turn rewards) the earlier turns earn 0 and the last carries R
    alone; with it open each turn also earns its own dense reward. None when ``turn_rewards`` is missing
    or does not have one number per turn (the episode then counts as one step, its reward)."""
    if turns <= 0 or not isinstance(turn_rewards, (list, tuple)) or len(turn_rewards) != turns:
        return None
    if not all(isinstance(r, (int, float)) and not isinstance(r, bool) and math.isfinite(r) for r in turn_rewards):
        return None
    steps = [float(r) for r in turn_rewards]
    steps[-1] += float(score) - sum(steps)
    return steps


def process_advantages(step_rewards: Sequence[Sequence[float]], step_ends: Sequence[Sequence[int]], lengths: Sequence[int],
                       eps: float = 1e-6) -> list[Tensor]:
    """One group's per-token advantages: each sample i has step rewards r_i^(1..K_i), step j
    ending at token e_i^(j); r~ = (r - mean) / (std + eps) over every step of the group (population
    std); A_{i,t} = sum over j with e_i^(j) >= t of r~_i^(j). Tokens after the last step get 0."""
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


def process_grpo_advantages(rewards: Tensor, valid: Tensor, step_rewards: list[list[float] | None],
                            step_token_ends: list[list[int] | None], lengths: list[int]) -> list[Tensor]:
    """The ``process_grpo`` estimator over a ``[P, G]`` batch. A valid sample whose reward gave
    no step rewards (``info["step_rewards"]``) counts as one step, its score, ending at its last
    token; a masked sample takes no part and gets 0."""
    groups, size = rewards.shape
    out: list[Tensor] = []
    for p in range(groups):
        members = range(p * size, (p + 1) * size)
        step_r, step_e, lens = [], [], []
        for j, i in enumerate(members):
            if not bool(valid[p, j]):
                step_r.append([])
                step_e.append([])
            elif step_rewards[i]:
                step_r.append(list(step_rewards[i]))
                step_e.append(list(step_token_ends[i] or []))
            else:
                step_r.append([float(rewards[p, j])])
                step_e.append([max(lengths[i] - 1, 0)])
            lens.append(lengths[i])
        out.extend(process_advantages(step_r, step_e, lens))
    return out
