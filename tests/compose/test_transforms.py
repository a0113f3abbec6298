"""Each transform against its formula, and the properties the papers state (hypothesis)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from payoff.compose.transforms import (
    CalibrationState,
    backward_correction,
    batch_normalize,
    clip_steps,
    delta_steps,
    ensemble_mean,
    ensemble_uncertainty,
    ensemble_worst,
    group_normalize,
    min_form,
    par,
    sigmoid,
)

finite = st.floats(-50, 50, allow_nan=False)
# PAR's bound is strict in exact arithmetic; in floats sigmoid(x) rounds to 1 beyond x ~ 37.
moderate = st.floats(-15, 15, allow_nan=False)
rewards = st.lists(moderate, min_size=1, max_size=20)


@given(moderate, rewards)
def test_par_is_bounded(r: float, refs: list[float]) -> None:
    value = par(r, refs)
    assert 0.0 < value < 1.0


@given(finite, finite, rewards)
def test_par_rises_with_r(r1: float, r2: float, refs: list[float]) -> None:
    assume(r1 < r2)
    assert par(r1, refs) <= par(r2, refs)


@given(finite, rewards, st.floats(-20, 20))
def test_par_is_shift_invariant(r: float, refs: list[float], c: float) -> None:
    assert par(r + c, [x + c for x in refs]) == pytest.approx(par(r, refs), abs=1e-9)


def test_par_matches_formula() -> None:
    assert par(1.0, [0.0, 2.0]) == pytest.approx((sigmoid(1.0) + sigmoid(-1.0)) / 2)
    assert par(0.0, [0.0]) == 0.5


@given(st.lists(finite, min_size=1, max_size=30))
def test_delta_returns_telescope(steps: list[float]) -> None:
    shaped = delta_steps(steps)
    for t in range(len(steps)):
        assert sum(shaped[t:]) == pytest.approx(steps[t], abs=1e-9)


@given(st.lists(finite, min_size=1, max_size=30), st.floats(0, 5))
def test_clip_never_rewards_a_step(steps: list[float], eta: float) -> None:
    shaped = clip_steps(steps, eta)
    assert all(s <= 0 for s in shaped)
    assert shaped == [min(r - eta, 0.0) for r in steps]
    assert sum(clip_steps(steps + steps, eta)) <= sum(shaped) + 1e-9  # repeating steps never helps


@given(st.lists(finite, min_size=1, max_size=30))
def test_min_form(steps: list[float]) -> None:
    values = min_form(steps)
    assert values == [min(steps[t:]) for t in range(len(steps))]
    assert all(values[t] <= values[t + 1] for t in range(len(values) - 1))


@given(st.lists(finite, min_size=1, max_size=10), st.floats(0, 5))
def test_ensembles(values: list[float], lam: float) -> None:
    mean = ensemble_mean(values)
    assert ensemble_worst(values) <= mean + 1e-9
    assert ensemble_uncertainty(values, lam) <= mean + 1e-9
    variance = sum((v - mean) ** 2 for v in values) / len(values)
    assert ensemble_uncertainty(values, lam) == pytest.approx(mean - lam * variance, abs=1e-6)


@given(st.lists(finite, min_size=2, max_size=40))
def test_batch_normalize(scores: list[float]) -> None:
    assume(max(scores) - min(scores) > 1e-3)
    z = batch_normalize(scores)
    assert sum(z) / len(z) == pytest.approx(0.0, abs=1e-6)
    assert math.sqrt(sum(v * v for v in z) / len(z)) == pytest.approx(1.0, rel=1e-3)


@given(st.lists(st.tuples(st.integers(0, 4), finite), min_size=1, max_size=40))
def test_group_normalize_centres_each_group(pairs: list[tuple[int, float]]) -> None:
    groups = [g for g, _ in pairs]
    z = group_normalize([s for _, s in pairs], groups)
    for group in set(groups):
        members = [z[i] for i, g in enumerate(groups) if g == group]
        assert sum(members) == pytest.approx(0.0, abs=1e-6)


def test_backward_correction_is_unbiased_under_simulated_noise() -> None:
    rng = random.Random(1234)
    rho_fp, rho_fn, n = 0.2, 0.1, 200_000
    clean = [1.0 if rng.random() < 0.3 else 0.0 for _ in range(n)]
    noisy = [(1.0 - c if rng.random() < (rho_fn if c else rho_fp) else c) for c in clean]
    corrected = [backward_correction(r, rho_fp, rho_fn) for r in noisy]
    clean_mean = sum(clean) / n
    assert abs(sum(noisy) / n - clean_mean) > 0.05  # the noise biases the raw reward...
    assert abs(sum(corrected) / n - clean_mean) < 0.01  # ...and the correction removes the bias
    with pytest.raises(ValueError):
        backward_correction(1.0, 0.6, 0.5)


def test_ppo_c_calibration_formula() -> None:
    state = CalibrationState(alpha=0.5, weight=1.0, initial=0.0)
    out = state.apply([1.0, 0.0], [0.9, 0.9])
    assert state.rbar == pytest.approx(0.25)
    assert out == pytest.approx([1.0 + 0.75 * 0.4, 0.0 - 0.25 * 0.4])
