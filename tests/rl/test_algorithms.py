"""Every estimator and loss against its formula; hypothesis properties over random reward grids."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from payoff.rl import algorithms as alg

grids = st.integers(1, 6).flatmap(lambda p: st.integers(1, 8).flatmap(lambda g: st.tuples(
    st.lists(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, -1.0, 2.0]), min_size=g, max_size=g), min_size=p, max_size=p),
    st.lists(st.lists(st.booleans(), min_size=g, max_size=g), min_size=p, max_size=p))))


def tensors(grid):
    rewards, valid = grid
    return torch.tensor(rewards, dtype=torch.float64), torch.tensor(valid)


@settings(max_examples=200, deadline=None)
@given(grids)
def test_rloo_advantages_sum_to_zero_per_group_and_match_leave_one_out(grid) -> None:
    rewards, valid = tensors(grid)
    adv = alg.rloo_advantages(rewards, valid)
    assert torch.allclose(adv.sum(dim=1), torch.zeros(rewards.shape[0], dtype=rewards.dtype), atol=1e-9)
    for p in range(rewards.shape[0]):
        members = [j for j in range(rewards.shape[1]) if valid[p, j]]
        for j in range(rewards.shape[1]):
            if not valid[p, j] or len(members) < 2:
                assert adv[p, j] == 0
            else:
                others = [float(rewards[p, k]) for k in members if k != j]
                assert math.isclose(float(adv[p, j]), float(rewards[p, j]) - sum(others) / len(others), abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(grids)
def test_grpo_is_zero_on_uniform_groups_and_standardises_mixed_ones(grid) -> None:
    rewards, valid = tensors(grid)
    adv = alg.grpo_advantages(rewards, valid)
    mixed = alg.mixed_groups(rewards, valid)
    assert (adv[~valid] == 0).all()
    for p in range(rewards.shape[0]):
        values = adv[p][valid[p]]
        if not mixed[p]:
            assert (adv[p] == 0).all()
        else:
            assert abs(float(values.mean())) < 1e-6
            assert abs(float(values.std(unbiased=False)) - 1.0) < 1e-4


@settings(max_examples=200, deadline=None)
@given(grids, st.floats(0.1, 10))
# Found by CI: 0.025 * 3 / 3 != 0.025 in float64, so a std of one ulp standardised to -1.
@example(([[0.0] * 5, [0.25, 0.0, 0.25, 0.25, 0.0]], [[False] * 5, [True, False, True, True, False]]), 0.1)
def test_dr_grpo_has_no_std_it_scales_linearly_with_the_reward(grid, scale) -> None:
    rewards, valid = tensors(grid)
    plain = alg.dr_grpo_advantages(rewards, valid)
    assert torch.allclose(alg.dr_grpo_advantages(rewards * scale, valid), plain * scale, atol=1e-9)
    # GRPO, by contrast, is scale-invariant: the std divides the scale out.
    grpo = alg.grpo_advantages(rewards, valid, eps=0)
    assert torch.allclose(alg.grpo_advantages(rewards * scale, valid, eps=0), grpo, atol=1e-6)
    means = (rewards * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp(min=1)
    assert torch.allclose(plain, (rewards - means) * valid, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(grids)
def test_reinforce_rej_drops_exactly_the_uniform_groups(grid) -> None:
    rewards, valid = tensors(grid)
    keep = alg.mixed_groups(rewards, valid)
    for p in range(rewards.shape[0]):
        values = {float(v) for v, ok in zip(rewards[p], valid[p]) if ok}
        assert bool(keep[p]) == (len(values) > 1)


@settings(max_examples=100, deadline=None)
@given(grids)
def test_reinforce_pp_normalises_over_the_batch(grid) -> None:
    rewards, valid = tensors(grid)
    adv = alg.reinforce_pp_advantages(rewards, valid)
    values = adv[valid]
    if values.numel() and len(set(rewards[valid].tolist())) > 1:
        assert abs(float(values.mean())) < 1e-6
        assert abs(float(values.std(unbiased=False)) - 1) < 1e-4
    else:
        assert (adv == 0).all()


def test_remax_subtracts_the_greedy_reward() -> None:
    rewards = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    adv = alg.remax_advantages(rewards, torch.ones_like(rewards, dtype=torch.bool), torch.tensor([1.0, 0.0]))
    assert adv.tolist() == [[0.0, -1.0], [0.5, 0.5]]


@settings(max_examples=100, deadline=None)
@given(grids)
def test_bnpo_special_cases_reinforce_with_baseline_and_grpo(grid) -> None:
    rewards, valid = tensors(grid)
    rewards = (rewards > 0.4).double()  # BNPO's theory is for binary rewards
    # a = b = 0 gives alpha = beta = 1: the Beta density is 1, so A = r - p (REINFORCE with a baseline).
    assert torch.allclose(alg.bnpo_advantages(rewards, valid, 0.0, 0.0, eps=0), alg.dr_grpo_advantages(rewards, valid), atol=1e-9)
    # a = b = 1.5 gives alpha = beta = 1.5: density = sqrt(p(1-p)) / B(1.5, 1.5), GRPO up to that constant.
    constant = math.exp(math.lgamma(1.5) * 2 - math.lgamma(3.0))
    bnpo = alg.bnpo_advantages(rewards, valid, 1.5, 1.5, eps=0) / constant
    grpo = alg.grpo_advantages(rewards, valid, eps=0)
    assert torch.allclose(bnpo, grpo, atol=1e-4)


def test_beta_fit_recovers_moments() -> None:
    torch.manual_seed(0)
    draws = torch.distributions.Beta(2.0, 5.0).sample((200_000,))
    a, b = alg.beta_fit(draws)
    assert abs(a - 2) < 0.1 and abs(b - 5) < 0.25
    assert alg.beta_fit(torch.tensor([1.0, 1.0])) == (1.0, 1.0)


def test_raft_keeps_the_best_correct_sample_or_all_correct_ones() -> None:
    rewards = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.5], [1.0, 0.0, 1.0]])
    valid = torch.tensor([[True, True, True], [True, True, True], [False, True, True]])
    assert alg.raft_keep(rewards, valid, "best").tolist() == [[False, True, False], [False, False, False], [False, False, True]]
    assert alg.raft_keep(rewards, valid, "correct").tolist() == [[False, True, True], [False, False, False], [False, False, True]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-8, 0), st.floats(-8, 0)), min_size=1, max_size=30))
def test_kl_estimators_signs(pairs) -> None:
    logp = torch.tensor([p for p, _ in pairs], dtype=torch.float64)
    ref = torch.tensor([r for _, r in pairs], dtype=torch.float64)
    assert (alg.kl_estimate(logp, ref, "k2") >= 0).all()
    assert (alg.kl_estimate(logp, ref, "k3") >= -1e-12).all()
    assert torch.allclose(alg.kl_estimate(logp, logp, "k3"), torch.zeros_like(logp))
    assert torch.allclose(alg.kl_estimate(logp, ref, "k1"), logp - ref)


def test_k1_and_k3_are_unbiased_estimates_of_the_kl() -> None:
    torch.manual_seed(0)
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.3, 0.3, 0.4])
    exact = float((p * (p / q).log()).sum())
    tokens = torch.multinomial(p, 400_000, replacement=True)
    logp, ref = p.log()[tokens], q.log()[tokens]
    for kind in ("k1", "k3"):
        assert abs(float(alg.kl_estimate(logp, ref, kind).mean()) - exact) < 0.01


def test_clipped_loss_formula_and_asymmetric_clip() -> None:
    logp = torch.tensor([[0.0, 0.0]]).log1p()  # log 1 = 0
    old = torch.log(torch.tensor([[1 / 1.5, 1 / 0.5]]))  # ratios 1.5 and 0.5
    mask = torch.ones(1, 2)
    pos, info = alg.clipped_policy_loss(logp, old, torch.tensor([1.0]), mask, eps_low=0.2, eps_high=0.28)
    # A > 0: min(1.5, 1.28) = 1.28 for the first token; min(0.5, 0.8) = 0.5 for the second.
    assert math.isclose(float(pos), -(1.28 + 0.5) / 2, rel_tol=1e-6)
    assert info["clip_fraction"] == 0.5
    neg, _ = alg.clipped_policy_loss(logp, old, torch.tensor([-1.0]), mask, eps_low=0.2, eps_high=0.28)
    # A < 0: -min(-1.5, -1.28) = 1.5 and -min(-0.5, -0.8) = 0.8.
    assert math.isclose(float(neg), (1.5 + 0.8) / 2, rel_tol=1e-6)


def test_aggregations() -> None:
    values = torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    assert float(alg.aggregate(values, mask, "token_mean")) == pytest.approx(7 / 5)
    assert float(alg.aggregate(values, mask, "seq_mean")) == pytest.approx((1 + 3) / 2)
    assert float(alg.aggregate(values, mask, "seq_sum", norm_length=8)) == pytest.approx(7 / (2 * 8))
    with pytest.raises(ValueError):
        alg.aggregate(values, mask, "nope")


def test_w_reinforce_scales_only_positive_advantages() -> None:
    adv = torch.tensor([1.0, -1.0, 0.0, 2.0])
    assert alg.w_reinforce_weights(adv, 0.1).tolist() == pytest.approx([0.1, -1.0, 0.0, 0.2])


def test_unknown_estimator_is_named() -> None:
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo2'"):
        alg.advantages("ppo2", torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool))


@settings(max_examples=100, deadline=None)
@given(grids, st.floats(-2, 2))
def test_reinforce_subtracts_a_constant_baseline_from_valid_samples_only(grid, baseline) -> None:
    rewards, valid = tensors(grid)
    adv = alg.advantages("reinforce", rewards, valid, baseline=baseline)
    assert (adv[~valid] == 0).all()
    assert torch.allclose(adv[valid], rewards[valid] - baseline)
    # On a 0/1 reward, b = 0.5 is the Minimalist paper's +1 / -1 reward, halved.
    binary = (rewards > 0).to(rewards.dtype)
    signs = alg.reinforce_advantages(binary, valid, 0.5)[valid] * 2
    assert set(signs.tolist()) <= {-1.0, 1.0}


def test_bnpo_fitted_to_per_prompt_rates_keeps_advantages_bounded() -> None:
    """A realistic batch (32 prompts x 8 binary samples, difficulty spread over [0, 1]) after 8
    such steps. Fitting the Beta to one batch-mean accuracy per step (the old behaviour) gives a
    Beta so narrow that its density at an easy or hard prompt's rate is ~0, and |A| ~ 10^5."""
    g = torch.Generator().manual_seed(0)
    batch_means, per_prompt = [], []
    for _ in range(8):
        difficulty = torch.rand(32, 1, generator=g)
        correct = torch.rand(32, 8, generator=g) < difficulty
        valid = torch.ones(32, 8, dtype=torch.bool)
        batch_means.append(float(correct.float().mean()))
        per_prompt.extend(alg.group_success_rates(correct, valid).tolist())
    rewards = correct.float()
    narrow = alg.bnpo_advantages(rewards, valid, *alg.beta_fit(torch.tensor(batch_means)))
    fitted = alg.bnpo_advantages(rewards, valid, *alg.beta_fit(torch.tensor(per_prompt)))
    assert float(narrow.abs().max()) > 1e3  # the failure this guards against
    assert float(fitted.abs().max()) < 3.0
    assert torch.equal(torch.sign(fitted), torch.sign(rewards - rewards.mean(dim=1, keepdim=True)))


def test_group_success_rates_skip_groups_without_valid_samples() -> None:
    correct = torch.tensor([[True, False], [True, True], [False, False]])
    valid = torch.tensor([[True, True], [True, False], [False, False]])
    assert alg.group_success_rates(correct, valid).tolist() == [0.5, 1.0]


def test_a_new_estimator_is_one_function_and_one_registration() -> None:
    from payoff.rl.config import TrainConfig

    @alg.estimator("median_baseline")
    def median_baseline(rewards, valid, baseline: float = 0.0):
        """A_i = r_i - median(group) - b (a toy estimator for this test)."""
        return (rewards - rewards.median(dim=1, keepdim=True).values - baseline) * valid

    try:
        rewards = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
        valid = torch.ones(2, 3, dtype=torch.bool)
        out = alg.advantages("median_baseline", rewards, valid, baseline=0.5, greedy_rewards=None)
        assert out.tolist() == [[0.5, -0.5, -0.5], [-0.5, -0.5, -1.5]]
        assert alg.estimator_context("median_baseline") == {"baseline"}
        config = TrainConfig.model_validate({"algorithm": {"advantage": "median_baseline"}})
        assert config.algorithm.advantage == "median_baseline"
    finally:
        del alg.ESTIMATORS["median_baseline"]
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        TrainConfig.model_validate({"algorithm": {"advantage": "median_baseline"}})
