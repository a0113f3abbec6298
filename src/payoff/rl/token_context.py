"""What the token-level estimators need, built from a scored batch and the live models.

``gae`` needs per-token rewards (the KL penalty against the reference on every token, the
sequence's score added on its last token) and the critic's values; ``process_grpo`` needs each
sample's step rewards and the token at which each step ends. Rewards report steps in
``info["step_rewards"]`` and where they end, as character offsets into the completion, in
``info["step_ends"]`` (the ``prm`` reward does); offsets are mapped to tokens here by decoding
prefixes of the sampled ids, the same decoding that made the text the reward saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from payoff.models.logprobs import batched_logprobs
from payoff.models.policy import Policy
from payoff.rl import algorithms as alg
from payoff.rl.batch import Batch, Estimate
from payoff.rl.config import TrainConfig
from payoff.rl.token_advantages import turn_steps


def char_ends_to_tokens(tokenizer: Any, ids: Sequence[int], char_ends: Sequence[int]) -> list[int]:
    """For each character offset, the index of the token whose decoding first reaches it (the
    last token of the text up to that offset); offsets past the text map to the last token."""
    ids = list(ids)
    if not ids:
        return [0 for _ in char_ends]

    def decoded_length(k: int) -> int:
        return len(tokenizer.decode(ids[:k], skip_special_tokens=True))

    result = []
    for end in char_ends:
        low, high = 1, len(ids)
        while low < high:  # the shortest prefix whose text reaches `end` characters
            middle = (low + high) // 2
            if decoded_length(middle) >= end:
                high = middle
            else:
                low = middle + 1
        result.append(low - 1)
    return result


def token_estimate(config: TrainConfig, policy: Policy, critic: Any, batch: Batch, rewards: Tensor) -> Estimate:
    """The token-level estimator's advantages, with what it computed on the way for the update."""
    name = config.algorithm.advantage
    if name == "gae":
        return _gae(config, policy, critic, batch, rewards)
    if name == "process_grpo":
        return _process(policy.tokenizer, batch, rewards)
    raise ValueError(f"the trainer does not know what token-level estimator {name!r} needs")


def _gae(config: TrainConfig, policy: Policy, critic: Any, batch: Batch, rewards: Tensor) -> Estimate:
    """PPO's advantages. For episodes GAE runs over the policy's tokens only: the environment's
    tokens are taken out of each sequence, so V_{t+1} after a turn's last token is the value at
    the first token of the next turn (the tool result in between is part of the state, not an
    action), and they get advantage, value and return 0 (they carry no loss)."""
    from payoff.rl.critic import critic_values, explained_variance, whiten

    algo = config.algorithm
    r, micro, temperature = batch.rollouts, config.optim.micro_batch, config.rollout.temperature or 1.0
    masks = [r.loss_mask(i) for i in range(len(r))]
    keep = [torch.tensor(m, dtype=torch.bool) if m is not None else torch.ones(len(c), dtype=torch.bool)
            for m, c in zip(masks, r.completion_ids)]
    old = batched_logprobs(policy.model, r.prompt_ids, r.completion_ids, policy.pad_id, micro, temperature, masks)
    if algo.kl_coef > 0:
        with policy.reference() as reference:
            ref = batched_logprobs(reference, r.prompt_ids, r.completion_ids, policy.pad_id, micro, temperature, masks)
        penalties = [algo.kl_coef * alg.kl_estimate(a[k], b[k], algo.kl_estimator) for a, b, k in zip(old, ref, keep)]
    else:
        penalties = [torch.zeros(int(k.sum())) for k in keep]
    scores = rewards.flatten()
    token_rewards = []
    for i, penalty in enumerate(penalties):
        reward = -penalty
        if reward.numel():
            reward[-1] += scores[i]  # on the policy's last token
        token_rewards.append(reward)
    full_values = critic_values(critic, r.prompt_ids, r.completion_ids, policy.pad_id, micro, masks)
    values = [v[k] for v, k in zip(full_values, keep)]
    advantages = alg.advantages("gae", rewards, batch.valid, token_rewards=token_rewards, values=values, gamma=algo.gamma,
                                lam=algo.lam)
    returns = [a + v for a, v in zip(advantages, values)]
    members = [i for i, ok in enumerate(batch.valid.flatten().tolist()) if ok and len(values[i])]
    if algo.whiten_advantages:
        advantages = whiten(advantages, members)
    chosen_v, chosen_r = [values[i] for i in members], [returns[i] for i in members]
    metrics = {"explained_variance": explained_variance(chosen_v, chosen_r),
               "value_mean": float(torch.cat(chosen_v).mean()) if chosen_v else 0.0,
               "return_mean": float(torch.cat(chosen_r).mean()) if chosen_r else 0.0,
               "kl_penalty_mean": float(torch.cat([penalties[i] for i in members]).mean()) if members else 0.0}
    return Estimate([_spread(a, k) for a, k in zip(advantages, keep)], batch.valid.flatten(), old_logprobs=old,
                    values=full_values, returns=[_spread(x, k) for x, k in zip(returns, keep)], metrics=metrics)


def _spread(values: Tensor, keep: Tensor) -> Tensor:
    """Values over the kept (policy) tokens back onto the whole completion, 0 elsewhere."""
    if bool(keep.all()):
        return values
    out = torch.zeros(keep.numel(), dtype=values.dtype)
    out[keep] = values
    return out


def _process(tokenizer: Any, batch: Batch, rewards: Tensor) -> Estimate:
    step_rewards: list[list[float] | None] = []
    step_ends: list[list[int] | None] = []
    missing = 0
    episodes = batch.episodes or [None] * len(batch.outcomes)
    flat = rewards.flatten().tolist()
    for i, (outcome, ids, valid, episode) in enumerate(zip(batch.outcomes, batch.rollouts.completion_ids, batch.valid.flatten().tolist(),
                                                           episodes)):
        steps, ends = outcome.info.get("step_rewards"), outcome.info.get("step_ends")
        if episode is not None:  # an episode's steps are its assistant turns, ending at their last sampled token
            turns = turn_steps(flat[i], outcome.info.get("turn_rewards"), episode.turns)
            missing += int(bool(valid) and turns is None)
            step_rewards.append(turns)
            step_ends.append(list(episode.turn_ends) if turns is not None else None)
        elif steps and ends is not None and len(ends) == len(steps):
            step_rewards.append([float(x) for x in steps])
            step_ends.append(char_ends_to_tokens(tokenizer, ids, ends))
        else:
            missing += int(bool(valid))
            step_rewards.append(None)
            step_ends.append(None)
    lengths = [len(ids) for ids in batch.rollouts.completion_ids]
    advantages = alg.advantages("process_grpo", rewards, batch.valid, step_rewards=step_rewards, step_token_ends=step_ends,
                                lengths=lengths)
    # Counted and logged: a valid sample without step rewards is trained on its outcome alone.
    return Estimate(advantages, batch.valid.flatten(), metrics={"process/samples_without_steps": float(missing)})
