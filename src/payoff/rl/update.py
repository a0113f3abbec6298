"""The gradient step: turn a scored batch into one optimiser update (or ``epochs`` of them).

Samples whose advantage is exactly zero contribute nothing to the policy-gradient sum, so with
no KL term in the loss they are not run through the model at all; they still count in the loss
denominators, which keeps the objective identical to the formula (and all-wrong groups free).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from payoff.rl import algorithms as alg
from payoff.rl.config import AlgorithmConfig
from payoff.rl.logprobs import batched_logprobs, pack, pad_rows, token_logprobs


def _weights(how: str, tokens: int, seqs: int, total_tokens: int, total_seqs: int) -> float:
    # Each micro-batch's mean, rescaled so that the micro-batches add up to the batch-wide mean.
    if how == "token_mean":
        return tokens / max(total_tokens, 1)
    return seqs / max(total_seqs, 1)


def policy_update(policy: Any, optimizer: Any, prompt_ids: list[list[int]], completion_ids: list[list[int]], adv: Tensor,
                  take_part: Tensor, algo: AlgorithmConfig, micro_batch: int, temperature: float, max_new_tokens: int,
                  max_grad_norm: float, sft: bool = False) -> dict[str, float]:
    """One update on the samples where ``take_part`` is True. ``adv`` is per sample ([N]).
    ``sft`` trains on negative log-likelihood instead (RAFT)."""
    part = [i for i in range(len(completion_ids)) if take_part[i] and completion_ids[i]]
    total_tokens = sum(len(completion_ids[i]) for i in part)
    total_seqs = len(part)
    kl_in_loss = algo.kl_coef > 0 and not algo.kl_in_reward
    if algo.positive_weight != 1.0 and not sft:
        adv = alg.w_reinforce_weights(adv, algo.positive_weight)
    run = part if (sft or kl_in_loss) else [i for i in part if adv[i] != 0]
    stats = {"loss": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0, "entropy": 0.0, "kl": 0.0, "grad_norm": 0.0,
             "trained_samples": float(len(run))}
    if not run:
        return stats
    prompts = [prompt_ids[i] for i in run]
    completions = [completion_ids[i] for i in run]
    ref = old = None
    if kl_in_loss:
        with policy.reference() as reference:
            ref = batched_logprobs(reference, prompts, completions, policy.pad_id, micro_batch, temperature)
    if algo.epochs > 1 and not sft:
        old = batched_logprobs(policy.model, prompts, completions, policy.pad_id, micro_batch, temperature)
    model = policy.model
    model.train()
    trained_tokens = 0
    for _ in range(algo.epochs):
        optimizer.zero_grad(set_to_none=True)
        for start in range(0, len(run), micro_batch):
            chunk = slice(start, start + micro_batch)
            batch = pack(prompts[chunk], completions[chunk], policy.pad_id)
            logp, entropy = token_logprobs(model, batch, temperature, with_entropy=True)
            mask = batch.completion_mask
            width = mask.shape[1]
            n_tokens, n_seqs = int(mask.sum()), mask.shape[0]
            weight = _weights(algo.loss_aggregation if not sft else "token_mean", n_tokens, n_seqs, total_tokens, total_seqs)
            if sft:
                loss = alg.sft_loss(logp, mask)
                clip = 0.0
            else:
                old_logp = pad_rows(old[chunk], width) if old is not None else logp.detach()
                sample_adv = torch.stack([adv[i] for i in run[chunk]])
                loss, info = alg.clipped_policy_loss(logp, old_logp, sample_adv, mask, algo.eps_low, algo.eps_high,
                                                     algo.loss_aggregation, max_new_tokens)
                clip = info["clip_fraction"]
                # KL(sampling policy || current), k3 per token: (r - 1) - log r with r = pi / pi_old.
                # Exactly 0 in the first epoch; it measures how far later epochs moved.
                stats["approx_kl"] += float(alg.aggregate(alg.kl_estimate(old_logp, logp.detach(), "k3"), mask, "token_mean")) * n_tokens
            kl_value = 0.0
            if ref is not None:
                kl = alg.kl_estimate(logp, pad_rows(ref[chunk], width), algo.kl_estimator)
                kl_term = alg.aggregate(kl, mask, algo.loss_aggregation, max_new_tokens)
                loss = loss + algo.kl_coef * kl_term
                kl_value = float(alg.aggregate(kl.detach(), mask, "token_mean"))
            (loss * weight).backward()
            stats["loss"] += float(loss.detach()) * weight
            stats["clip_fraction"] += clip * n_tokens
            stats["kl"] += kl_value * n_tokens
            stats["entropy"] += float(entropy.sum()) if entropy is not None else 0.0
            trained_tokens += n_tokens
        norm = torch.nn.utils.clip_grad_norm_(policy.trainable(), max_grad_norm)
        stats["grad_norm"] = float(norm)
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    for key in ("clip_fraction", "approx_kl", "kl", "entropy"):
        stats[key] /= max(trained_tokens, 1)
    stats["loss"] /= algo.epochs
    return stats
