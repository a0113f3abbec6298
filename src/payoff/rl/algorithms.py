"""Policy-optimisation algorithms as small pure functions over tensors.

Conventions: a batch of rollouts is a ``[P, G]`` grid (P prompts, G samples per prompt).
``valid`` marks the samples whose reward is usable; a masked sample (reward error or timeout
under the ``mask`` policy) gets advantage 0 and takes no part in any statistic. Token tensors are
``[N, T]`` with a ``mask`` of completion tokens. Formulas follow ../shared/TECHNIQUES.md section 4.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from payoff.rl.token_advantages import gae_advantages, process_grpo_advantages

# The estimator registry: name -> function(rewards [P, G], valid [P, G], **context) -> [P, G].
# Adding one is one function with its formula plus one `@estimator("name")`; the trainer passes
# each function the context it names: `greedy_rewards` (one greedy rollout's reward per prompt,
# generated only for estimators that ask for it), `beta_params` (BNPO's fitted Beta) and
# `baseline` (the configured constant).
ESTIMATORS: dict[str, Callable[..., Tensor]] = {}


# Estimators that return one advantage per completion token (a list of 1-D tensors, one per
# sample) instead of a [P, G] grid; see `payoff.rl.token_advantages`.
TOKEN_LEVEL: set[str] = set()


def estimator(name: str, level: str = "sample") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        ESTIMATORS[name] = fn
        if level == "token":
            TOKEN_LEVEL.add(name)
        return fn

    return register


def estimator_context(name: str) -> set[str]:
    """The context names an estimator takes (beyond rewards and valid)."""
    return set(list(inspect.signature(ESTIMATORS[name]).parameters)[2:])


def _group_mean(rewards: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    count = valid.sum(dim=1, keepdim=True)
    mean = (rewards * valid).sum(dim=1, keepdim=True) / count.clamp(min=1)
    return mean, count


@estimator("grpo")
def grpo_advantages(rewards: Tensor, valid: Tensor, eps: float = 1e-6) -> Tensor:
    """GRPO: A_i = (r_i - mean_group) / (std_group + eps), population std over the valid samples.

    A group whose valid rewards are all equal gets A = 0 exactly (no signal, no noise)."""
    valid = valid.to(rewards.dtype)
    mean, count = _group_mean(rewards, valid)
    var = (((rewards - mean) ** 2) * valid).sum(dim=1, keepdim=True) / count.clamp(min=1)
    centred = (rewards - mean) * valid
    std = var.sqrt()
    advantages = centred / (std + eps)
    # Uniformity is decided exactly (max == min), not by std > 0: the float mean of equal values
    # can differ from them by an ulp, and with eps=0 that ulp would standardise to +-1.
    mixed = mixed_groups(rewards, valid.bool(), tol=0.0).unsqueeze(1)
    return torch.where(mixed, advantages, torch.zeros_like(advantages))


@estimator("dr_grpo")
def dr_grpo_advantages(rewards: Tensor, valid: Tensor) -> Tensor:
    """Dr.GRPO: A_i = r_i - mean_group; no division by the std (that biases towards easy and
    hard questions)."""
    valid = valid.to(rewards.dtype)
    mean, _ = _group_mean(rewards, valid)
    return (rewards - mean) * valid


@estimator("rloo")
def rloo_advantages(rewards: Tensor, valid: Tensor) -> Tensor:
    """RLOO: A_i = r_i - mean_{j != i} r_j = n/(n-1) (r_i - mean_group) over the n valid samples;
    the advantages of a group sum to zero. A group with fewer than two valid samples gets 0."""
    valid = valid.to(rewards.dtype)
    mean, count = _group_mean(rewards, valid)
    scale = torch.where(count > 1, count / (count - 1).clamp(min=1), torch.zeros_like(count))
    return (rewards - mean) * valid * scale


@estimator("reinforce_pp")
def reinforce_pp_advantages(rewards: Tensor, valid: Tensor, eps: float = 1e-6) -> Tensor:
    """REINFORCE++: A_i = (r_i - mean_batch) / (std_batch + eps) over every valid sample of the
    batch (global normalisation, no per-prompt baseline). Fold the KL penalty into ``rewards``
    first (``kl_in_reward``)."""
    valid = valid.to(rewards.dtype)
    count = valid.sum().clamp(min=1)
    mean = (rewards * valid).sum() / count
    std = ((((rewards - mean) ** 2) * valid).sum() / count).sqrt()
    flat = rewards[valid.bool()]
    if flat.numel() < 2 or bool(flat.max() == flat.min()):
        return torch.zeros_like(rewards)
    return (rewards - mean) / (std + eps) * valid


@estimator("remax")
def remax_advantages(rewards: Tensor, valid: Tensor, greedy_rewards: Tensor) -> Tensor:
    """ReMax: A_i = r_i - r_greedy, the baseline being the reward of the prompt's greedy
    completion (``greedy_rewards`` is ``[P]``)."""
    return (rewards - greedy_rewards.view(-1, 1)) * valid.to(rewards.dtype)


@estimator("reinforce")
def reinforce_advantages(rewards: Tensor, valid: Tensor, baseline: float = 0.0) -> Tensor:
    """Plain REINFORCE: A_i = r_i - b with a constant b (0: no baseline); RAFT's SFT step is this
    with b = 0 on kept samples. The Minimalist paper's Reinforce scores answers +1 / -1: on a
    {0, 1} reward that is b = 0.5 up to a factor 2."""
    return (rewards - baseline) * valid.to(rewards.dtype)


def group_success_rates(correct: Tensor, valid: Tensor) -> Tensor:
    """The success rate of each prompt group ([P, G] -> [K]) over its valid samples; groups with
    no valid sample are left out."""
    count = valid.sum(dim=1)
    rates = (correct & valid).sum(dim=1).to(torch.float32) / count.clamp(min=1)
    return rates[count > 0]


def beta_fit(success_rates: Tensor) -> tuple[float, float]:
    """Method-of-moments Beta(a, b) for success rates in [0, 1]; Beta(1, 1) when degenerate."""
    m = float(success_rates.mean())
    v = float(success_rates.var(unbiased=False)) if success_rates.numel() > 1 else 0.0
    if not 0 < m < 1 or v <= 0 or v >= m * (1 - m):
        return 1.0, 1.0
    common = m * (1 - m) / v - 1
    return m * common, (1 - m) * common


def beta_pdf(p: Tensor, alpha: float, beta: float) -> Tensor:
    log_norm = math.lgamma(alpha) + math.lgamma(beta) - math.lgamma(alpha + beta)
    p = p.clamp(1e-6, 1 - 1e-6)
    return torch.exp((alpha - 1) * torch.log(p) + (beta - 1) * torch.log1p(-p) - log_norm)


@estimator("bnpo")
def bnpo_from_context(rewards: Tensor, valid: Tensor, beta_params: tuple[float, float] = (1.0, 1.0)) -> Tensor:
    """BNPO with the Beta fitted to recent per-prompt success rates (`bnpo_advantages`)."""
    return bnpo_advantages(rewards, valid, *beta_params)


def bnpo_advantages(rewards: Tensor, valid: Tensor, a: float = 1.0, b: float = 1.0, eps: float = 1e-6) -> Tensor:
    """BNPO: A_i = (r_i - p) / f_N(p; alpha, beta), with p the group's mean reward and f_N the
    Beta density with alpha = 1 + a/3, beta = 1 + b/3, where Beta(a, b) is fitted to recent
    success rates (`beta_fit`). With alpha = beta = 1 it is REINFORCE with a baseline; with
    alpha = beta = 3/2 the normaliser is proportional to sqrt(p(1-p)), GRPO's std for binary
    rewards."""
    alpha, beta = 1 + a / 3, 1 + b / 3
    valid_f = valid.to(rewards.dtype)
    mean, _ = _group_mean(rewards, valid_f)
    density = beta_pdf(mean, alpha, beta)
    centred = (rewards - mean) * valid_f
    return torch.where(centred != 0, centred / (density + eps), torch.zeros_like(centred))


estimator("gae", level="token")(gae_advantages)
estimator("process_grpo", level="token")(process_grpo_advantages)


def advantages(name: str, rewards: Tensor, valid: Tensor, **context: Any) -> Any:
    """The registered estimator `name` (``ESTIMATORS``), given the context entries it takes."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {name!r}; choose one of {', '.join(sorted(ESTIMATORS))}")
    wanted = estimator_context(name)
    return ESTIMATORS[name](rewards, valid, **{k: v for k, v in context.items() if k in wanted})


# -- sample selection ------------------------------------------------------------------------
def mixed_groups(rewards: Tensor, valid: Tensor, tol: float = 1e-9) -> Tensor:
    """Reinforce-Rej / DAPO dynamic sampling: True for a group whose valid rewards are not all
    equal (neither all-correct nor all-wrong). ``[P]`` bool."""
    big = torch.finfo(rewards.dtype).max
    high = torch.where(valid, rewards, torch.full_like(rewards, -big)).max(dim=1).values
    low = torch.where(valid, rewards, torch.full_like(rewards, big)).min(dim=1).values
    return (valid.sum(dim=1) >= 2) & (high - low > tol)


def std_filter(rewards: Tensor, valid: Tensor, threshold: float, momentum: float) -> tuple[Tensor, float]:
    """RLPR's std filter: keep the groups whose reward std (over valid samples) reaches
    ``threshold`` ([P] bool), and the next threshold, an EMA towards this batch's mean group std:
    t' = momentum * t + (1 - momentum) * mean_p std_p."""
    weight = valid.float()
    count = weight.sum(dim=1).clamp(min=1)
    mean = (rewards * weight).sum(dim=1, keepdim=True) / count.unsqueeze(1)
    std = ((((rewards - mean) ** 2) * weight).sum(dim=1) / count).sqrt()
    return std >= threshold, momentum * threshold + (1 - momentum) * float(std.mean())


def raft_keep(rewards: Tensor, valid: Tensor, mode: str = "best", threshold: float = 1.0) -> Tensor:
    """RAFT: which samples to fine-tune on. ``best``: the top-reward valid sample of each group,
    if its reward reaches ``threshold``; ``correct``: every valid sample at or above ``threshold``."""
    good = valid & (rewards >= threshold)
    if mode == "correct":
        return good
    if mode != "best":
        raise ValueError("raft mode must be 'best' or 'correct'")
    masked = torch.where(valid, rewards, torch.full_like(rewards, -torch.finfo(rewards.dtype).max))
    best = torch.zeros_like(valid)
    best[torch.arange(rewards.shape[0]), masked.argmax(dim=1)] = True
    return best & good


# -- KL estimators (r = pi_ref / pi, from log-probabilities of the sampled tokens) ------------
def kl_estimate(logp: Tensor, ref_logp: Tensor, kind: str = "k3") -> Tensor:
    """Per-token KL(pi || pi_ref) estimates from sampled tokens, with log r = ref_logp - logp.

    k1 = -log r (unbiased, can be negative); k2 = (log r)^2 / 2 (>= 0); k3 = (r - 1) - log r
    (unbiased and >= 0)."""
    log_ratio = ref_logp - logp
    if kind == "k1":
        return -log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        log_ratio = log_ratio.clamp(-20, 20)  # exp overflow guard; beyond this the estimate is meaningless anyway
        return torch.exp(log_ratio) - 1 - log_ratio
    raise ValueError("kl estimator must be k1, k2 or k3")


# -- losses ------------------------------------------------------------------------------------
def aggregate(values: Tensor, mask: Tensor, how: str = "token_mean", norm_length: int | None = None) -> Tensor:
    """Reduce per-token values ``[N, T]`` to a scalar.

    token_mean: sum over every completion token / number of tokens (DAPO);
    seq_mean: mean over each sequence's tokens, then over sequences (GRPO);
    seq_sum: sum over tokens / (N * norm_length), a constant, so no length bias (Dr.GRPO)."""
    mask = mask.to(values.dtype)
    if how == "token_mean":
        return (values * mask).sum() / mask.sum().clamp(min=1)
    if how == "seq_mean":
        per_seq = (values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return per_seq.mean()
    if how == "seq_sum":
        length = norm_length or values.shape[1]
        return (values * mask).sum() / (values.shape[0] * length)
    raise ValueError("loss aggregation must be token_mean, seq_mean or seq_sum")


def clipped_policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    adv: Tensor,
    mask: Tensor,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    aggregation: str = "token_mean",
    norm_length: int | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """PPO/GRPO surrogate: -min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A) per token,
    with ratio = exp(logp - old_logp) and A the sequence's advantage broadcast over its tokens
    (``adv`` [N]), or each token's own advantage (``adv`` [N, T], token-level estimators).
    DAPO's asymmetric clipping is eps_high > eps_low. Returns the loss and the clip fraction."""
    ratio = torch.exp(logp - old_logp)
    adv = adv if adv.dim() == 2 else adv.view(-1, 1)
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - eps_low, 1 + eps_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    loss = aggregate(per_token, mask, aggregation, norm_length)
    with torch.no_grad():
        was_clipped = ((clipped < unclipped) & mask.bool()).float().sum() / mask.sum().clamp(min=1)
    return loss, {"clip_fraction": float(was_clipped)}


def w_reinforce_weights(adv: Tensor, positive_weight: float = 0.1) -> Tensor:
    """W-REINFORCE: loss = lambda * L_positive + L_negative; scales positive advantages by lambda."""
    return torch.where(adv > 0, adv * positive_weight, adv)


def sft_loss(logp: Tensor, mask: Tensor, aggregation: str = "token_mean") -> Tensor:
    """Negative log-likelihood of the kept samples (RAFT's fine-tuning step)."""
    return aggregate(-logp, mask, aggregation)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Per-position entropy of the categorical distribution given by ``logits``."""
    logz = torch.logsumexp(logits, dim=-1, keepdim=True)
    probs = torch.exp(logits - logz)
    return (logz.squeeze(-1) - (probs * logits).sum(dim=-1))
