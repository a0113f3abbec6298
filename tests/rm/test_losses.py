"""The Bradley-Terry losses against their formulas (hypothesis) and hand-computed values."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.rm.losses import bradley_terry, centering, reward_model_loss, tie_loss

finite = st.floats(-30, 30, allow_nan=False)


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


@settings(max_examples=200, deadline=None)
@given(finite, finite, st.floats(-5, 5), st.floats(0, 0.49))
def test_bradley_terry_is_its_formula(chosen: float, rejected: float, margin: float, eps: float) -> None:
    d = chosen - rejected - margin
    expected = -(1 - eps) * log_sigmoid(d) - eps * log_sigmoid(-d)
    got = bradley_terry(torch.tensor([chosen], dtype=torch.float64), torch.tensor([rejected], dtype=torch.float64), margin, eps)
    assert math.isclose(got.item(), expected, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(finite, finite)
def test_loss_falls_as_the_chosen_reward_rises(chosen: float, rejected: float) -> None:
    r = torch.tensor([rejected], dtype=torch.float64)
    low, high = bradley_terry(torch.tensor([chosen], dtype=torch.float64), r), bradley_terry(torch.tensor([chosen + 1.0], dtype=torch.float64), r)
    assert high.item() <= low.item() + 1e-12


def test_hand_computed_values() -> None:
    # d = 0: -log(1/2) = ln 2; with margin 1 and r_c - r_r = 1, d = 0 again.
    assert math.isclose(bradley_terry(torch.tensor([0.0]), torch.tensor([0.0])).item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(bradley_terry(torch.tensor([2.0]), torch.tensor([1.0]), 1.0).item(), math.log(2), rel_tol=1e-6)
    # centering: (1 + 3)^2 = 16; lambda 0.5 adds 8 to the pair's loss.
    assert centering(torch.tensor([1.0]), torch.tensor([3.0])).item() == 16.0
    plain = bradley_terry(torch.tensor([1.0]), torch.tensor([3.0])).item()
    assert math.isclose(reward_model_loss(torch.tensor([1.0]), torch.tensor([3.0]), center_coef=0.5).item(), plain + 8.0, rel_tol=1e-6)


@settings(max_examples=100, deadline=None)
@given(finite, finite)
def test_a_tie_is_smallest_at_equal_rewards(a: float, b: float) -> None:
    x = torch.tensor([a], dtype=torch.float64)
    assert tie_loss(x, torch.tensor([b], dtype=torch.float64)).item() >= tie_loss(x, x).item() - 1e-12
    assert math.isclose(tie_loss(x, x).item(), math.log(2), rel_tol=1e-9)


def test_weights_and_ties_in_the_batch_loss() -> None:
    chosen, rejected = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 1.0, 2.0])
    weight = torch.tensor([1.0, 0.0, 1.0])
    tie = torch.tensor([False, False, True])
    got = reward_model_loss(chosen, rejected, tie=tie, weight=weight).item()
    expected = (bradley_terry(chosen[:1], rejected[:1]).item() + math.log(2)) / 2  # the zero-weight pair is out
    assert math.isclose(got, expected, rel_tol=1e-6)
    assert reward_model_loss(chosen, rejected, weight=torch.zeros(3)).item() == 0.0
