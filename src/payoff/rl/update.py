"""The gradient step: turn a scored batch into optimiser updates (``epochs`` passes of
``minibatches`` steps each; one step by default).

Samples whose advantage is exactly zero contribute nothing to the policy-gradient sum, so with
no KL term in the loss they are not run through the model at all; they still count in the loss
denominators, which keeps the objective identical to the formula (and all-wrong groups free).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from payoff.models.logprobs import batched_logprobs, model_device, pack, pad_rows, token_logprobs
from payoff.models.precision import weights_changed
from payoff.models.rollout import Rollouts
from payoff.rl import algorithms as alg
from payoff.rl.batch import Estimate
from payoff.rl.config import TrainConfig
from payoff.runs.optim import clipped_step


def _weights(how: str, tokens: int, seqs: int, total_tokens: int, total_seqs: int) -> float:
    # Each micro-batch's mean, rescaled so that the micro-batches add up to the batch-wide mean.
    if how == "token_mean":
        return tokens / max(total_tokens, 1)
    return seqs / max(total_seqs, 1)


def _is_zero(value: Tensor) -> bool:
    return not bool(value.ne(0).any())


def minibatch_order(indices: list[int], minibatches: int, seed: int) -> list[list[int]]:
    """``indices`` split into ``minibatches`` parts, in a fresh seeded order when there is more
    than one (its own generator, so the global random stream is untouched)."""
    if minibatches <= 1 or len(indices) <= 1:
        return [list(indices)]
    order = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed)).tolist()
    shuffled = [indices[k] for k in order]
    size = -(-len(shuffled) // minibatches)
    return [shuffled[k:k + size] for k in range(0, len(shuffled), size)]


def policy_update(policy: Any, optimizer: Any, rollouts: Rollouts, estimate: Estimate, config: TrainConfig,
                  seed: int = 0) -> dict[str, float]:
    """Updates on the samples ``estimate.take_part`` marks: ``algorithm.epochs`` passes, each in
    ``algorithm.minibatches`` optimiser steps. The advantages are per sample (a [N] tensor) or per
    token (a list of 1-D tensors, token-level estimators); the sampling policy's log-probs are
    ``estimate.old_logprobs`` when the estimator computed them. RAFT (``selection = "raft"``)
    trains on negative log-likelihood instead."""
    algo, prompt_ids, completion_ids = config.algorithm, rollouts.prompt_ids, rollouts.completion_ids
    adv, take_part, old_logprobs = estimate.advantages, estimate.take_part, estimate.old_logprobs
    micro_batch, temperature = config.optim.micro_batch, config.rollout.temperature or 1.0
    sft = algo.selection == "raft"
    token_level = isinstance(adv, list)
    part = [i for i in range(len(completion_ids)) if take_part[i] and completion_ids[i]]
    kl_in_loss = algo.kl_coef > 0 and not algo.kl_in_reward
    if algo.positive_weight != 1.0 and not sft:
        adv = [alg.w_reinforce_weights(a, algo.positive_weight) for a in adv] if token_level else alg.w_reinforce_weights(adv, algo.positive_weight)
    runs = set(part if (sft or kl_in_loss) else [i for i in part if not _is_zero(adv[i])])
    stats = {"loss": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0, "entropy": 0.0, "kl": 0.0, "grad_norm": 0.0,
             "trained_samples": float(len(runs))}
    if not runs:
        return stats
    ordered = [i for i in part if i in runs]
    ref: dict[int, Tensor] = {}
    old: dict[int, Tensor] = {}
    if kl_in_loss:
        with policy.reference() as reference:
            values = batched_logprobs(reference, [prompt_ids[i] for i in ordered], [completion_ids[i] for i in ordered],
                                      policy.pad_id, micro_batch, temperature, [rollouts.loss_mask(i) for i in ordered])
        ref = dict(zip(ordered, values))
    if old_logprobs is not None:
        old = {i: old_logprobs[i] for i in ordered}
    elif (algo.epochs > 1 or algo.minibatches > 1) and not sft:
        values = batched_logprobs(policy.model, [prompt_ids[i] for i in ordered], [completion_ids[i] for i in ordered],
                                  policy.pad_id, micro_batch, temperature, [rollouts.loss_mask(i) for i in ordered])
        old = dict(zip(ordered, values))
    model = policy.model
    model.train()
    device = model_device(model)
    trained_tokens, optimizer_steps, norms = 0, 0, 0.0
    for epoch in range(algo.epochs):
        for members in minibatch_order(part, algo.minibatches, seed * 1009 + epoch):
            run = [i for i in members if i in runs]
            if not run:
                continue
            total_tokens = sum(rollouts.trained_tokens(i) for i in members)  # an episode's environment tokens carry no loss
            optimizer.zero_grad(set_to_none=True)
            for start in range(0, len(run), micro_batch):
                chunk = run[start:start + micro_batch]
                batch = pack([prompt_ids[i] for i in chunk], [completion_ids[i] for i in chunk], policy.pad_id,
                             [rollouts.loss_mask(i) for i in chunk]).to(device)
                logp, entropy = token_logprobs(model, batch, temperature, with_entropy=True)
                mask = batch.completion_mask
                width = mask.shape[1]
                n_tokens, n_seqs = int(mask.sum()), mask.shape[0]
                weight = _weights(algo.loss_aggregation if not sft else "token_mean", n_tokens, n_seqs, total_tokens, len(members))
                if sft:
                    loss = alg.sft_loss(logp, mask)
                    clip = 0.0
                else:
                    # Per-sample values are kept on the CPU; the loss is computed where the model is.
                    old_logp = pad_rows([old[i] for i in chunk], width).to(logp.device) if old else logp.detach()
                    sample_adv = (pad_rows([adv[i] for i in chunk], width) if token_level else torch.stack([adv[i] for i in chunk])).to(logp.device)
                    loss, info = alg.clipped_policy_loss(logp, old_logp, sample_adv, mask, algo.eps_low, algo.eps_high,
                                                         algo.loss_aggregation, config.rollout.max_new_tokens)
                    clip = info["clip_fraction"]
                    # KL(sampling policy || current), k3 per token: (r - 1) - log r with r = pi / pi_old.
                    # Exactly 0 in the first pass; it measures how far later minibatches and epochs moved.
                    stats["approx_kl"] += float(alg.aggregate(alg.kl_estimate(old_logp, logp.detach(), "k3"), mask, "token_mean")) * n_tokens
                kl_value = 0.0
                if ref:
                    kl = alg.kl_estimate(logp, pad_rows([ref[i] for i in chunk], width).to(logp.device), algo.kl_estimator)
                    kl_term = alg.aggregate(kl, mask, algo.loss_aggregation, config.rollout.max_new_tokens)
                    loss = loss + algo.kl_coef * kl_term
                    kl_value = float(alg.aggregate(kl.detach(), mask, "token_mean"))
                (loss * weight).backward()
                stats["loss"] += float(loss.detach()) * weight
                stats["clip_fraction"] += clip * n_tokens
                stats["kl"] += kl_value * n_tokens
                stats["entropy"] += float(entropy.sum()) if entropy is not None else 0.0
                trained_tokens += n_tokens
            norms += clipped_step(optimizer, policy.trainable(), config.optim.max_grad_norm)
            weights_changed()  # bf16: autocast must not reuse the copies from before this step
            optimizer_steps += 1
    optimizer.zero_grad(set_to_none=True)
    for key in ("clip_fraction", "approx_kl", "kl", "entropy"):
        stats[key] /= max(trained_tokens, 1)
    stats["loss"] /= max(optimizer_steps, 1)
    stats["grad_norm"] = norms / max(optimizer_steps, 1)
    stats["optimizer_steps"] = float(optimizer_steps)
    return stats
