"""PPO's critic: a value model, its update and the diagnostics a researcher checks.

The critic is a separate model (by default a copy of the policy's starting weights, or
``[critic] model = PATH``): a causal LM's trunk without its vocabulary head, and a linear value
head. ``V_t`` is read at the position where completion token t is chosen (it has seen the prompt
and the tokens before t), as in TRL's PPO and Secrets of RLHF. Its own optimiser, learning rate
and gradient clipping; its weights and optimiser go into every checkpoint.

Value loss with clipping (PPO2): 0.5 * max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2),
averaged over tokens; R are the GAE returns.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from payoff.models.logprobs import TokenBatch, pack, pad_rows
from payoff.models.precision import weights_changed
from payoff.models.rollout import Rollouts
from payoff.rl.batch import Estimate
from payoff.rl.config import TrainConfig
from payoff.rl.update import minibatch_order
from payoff.runs.optim import clipped_step


class Critic(torch.nn.Module):
    def __init__(self, lm: Any) -> None:
        super().__init__()
        self.trunk = lm.get_decoder()
        self.head = torch.nn.Linear(int(lm.config.hidden_size), 1)
        # A zero head starts every value at 0: the first advantages are the returns themselves
        # (REINFORCE with no baseline), never a random baseline's noise.
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, batch: TokenBatch) -> Tensor:
        """``[N, T]`` values at the completion positions, 0 at padding."""
        out = self.trunk(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                         use_cache=False)
        width = batch.completion_ids.shape[1]
        states = out.last_hidden_state[:, -width - 1:-1, :]
        return self.head(states.float()).squeeze(-1) * batch.completion_mask


def load_critic(model_path: str | None, policy_name: str, policy_model: Any = None) -> Critic:
    """The critic's trunk: ``model_path``, else a copy of the in-memory policy (tests pass one),
    else the policy's own model loaded again."""
    if model_path is None and policy_model is not None:
        lm = copy.deepcopy(policy_model)
    else:
        from payoff.models.default import load_policy

        lm, _ = load_policy(model_path or policy_name)
    critic = Critic(lm)
    critic.train()
    return critic


@torch.no_grad()
def critic_values(critic: Critic, prompt_ids: list[list[int]], completion_ids: list[list[int]], pad_id: int,
                  micro_batch: int, loss_masks: list[list[int] | None] | None = None) -> list[Tensor]:
    """Values per sample (a 1-D tensor over its completion tokens; 0 at environment-written ones)."""
    critic.eval()
    result: list[Tensor] = []
    for start in range(0, len(prompt_ids), micro_batch):
        chunk_c = completion_ids[start:start + micro_batch]
        masks = loss_masks[start:start + micro_batch] if loss_masks is not None else None
        values = critic(pack(prompt_ids[start:start + micro_batch], chunk_c, pad_id, masks))
        result.extend(values[row, :len(c)].clone() for row, c in enumerate(chunk_c))
    critic.train()
    return result


def value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip: float) -> tuple[Tensor, float]:
    """The clipped value loss (token mean) and the fraction of tokens where clipping bound."""
    clipped_values = old_values + (values - old_values).clamp(-clip, clip)
    unclipped, clipped = (values - returns) ** 2, (clipped_values - returns) ** 2
    mask = mask.to(values.dtype)
    loss = 0.5 * (torch.maximum(unclipped, clipped) * mask).sum() / mask.sum().clamp(min=1)
    with torch.no_grad():
        bound = ((clipped > unclipped).float() * mask).sum() / mask.sum().clamp(min=1)
    return loss, float(bound)


def critic_update(critic: Critic, optimizer: Any, rollouts: Rollouts, estimate: Estimate, pad_id: int, config: TrainConfig,
                  seed: int) -> dict[str, float]:
    """``algorithm.epochs`` passes of ``algorithm.minibatches`` optimiser steps towards the
    estimate's returns, on the samples that took part in the policy's loss."""
    prompt_ids, completion_ids = rollouts.prompt_ids, rollouts.completion_ids
    returns, old_values = estimate.returns, estimate.values
    if returns is None or old_values is None:
        raise ValueError("the critic learns from the returns and values of a gae estimate")
    epochs, minibatches, micro_batch = config.algorithm.epochs, config.algorithm.minibatches, config.optim.micro_batch
    members = [i for i in range(len(estimate.take_part)) if estimate.take_part[i] and completion_ids[i]]
    stats = {"value_loss": 0.0, "value_clip_fraction": 0.0, "value_grad_norm": 0.0}
    steps, tokens_seen = 0, 0
    for epoch in range(epochs):
        for part in minibatch_order(members, minibatches, seed * 1013 + epoch):
            if not part:
                continue
            total = sum(rollouts.trained_tokens(i) for i in part)
            optimizer.zero_grad(set_to_none=True)
            for start in range(0, len(part), micro_batch):
                chunk = part[start:start + micro_batch]
                batch = pack([prompt_ids[i] for i in chunk], [completion_ids[i] for i in chunk], pad_id,
                             [rollouts.loss_mask(i) for i in chunk])
                width = batch.completion_mask.shape[1]
                values = critic(batch)
                loss, bound = value_loss(values, pad_rows([old_values[i] for i in chunk], width),
                                         pad_rows([returns[i] for i in chunk], width), batch.completion_mask,
                                         config.critic.value_clip)
                n_tokens = int(batch.completion_mask.sum())
                (loss * n_tokens / max(total, 1)).backward()
                stats["value_loss"] += float(loss.detach()) * n_tokens
                stats["value_clip_fraction"] += bound * n_tokens
                tokens_seen += n_tokens
            stats["value_grad_norm"] += clipped_step(optimizer, critic.parameters(), config.critic.max_grad_norm)
            weights_changed()  # bf16: autocast must not reuse the copies from before this step
            steps += 1
    optimizer.zero_grad(set_to_none=True)
    stats["value_loss"] /= max(tokens_seen, 1)
    stats["value_clip_fraction"] /= max(tokens_seen, 1)
    stats["value_grad_norm"] /= max(steps, 1)
    return stats


def explained_variance(values: list[Tensor], returns: list[Tensor]) -> float:
    """1 - Var(R - V) / Var(R) over every token: 1 is a perfect critic, 0 no better than a
    constant, negative worse. NaN-free: 0 when the returns do not vary."""
    v, r = torch.cat(values) if values else torch.zeros(0), torch.cat(returns) if returns else torch.zeros(0)
    if r.numel() < 2:
        return 0.0
    variance = float(r.var(unbiased=False))
    return 0.0 if variance == 0 else 1.0 - float((r - v).var(unbiased=False)) / variance


def whiten(advantages: list[Tensor], members: list[int], eps: float = 1e-8) -> list[Tensor]:
    """(A - mean) / std over every token of the samples in ``members``; the others unchanged."""
    if not members:
        return advantages
    flat = torch.cat([advantages[i] for i in members])
    if flat.numel() < 2:
        return advantages
    mean, std = flat.mean(), flat.std(unbiased=False)
    chosen = set(members)
    return [(a - mean) / (std + eps) if i in chosen else a for i, a in enumerate(advantages)]
