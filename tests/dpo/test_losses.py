"""The DPO family's losses against their formulas (hypothesis) and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.dpo.losses import preference_loss

logp = st.floats(-60, 0, allow_nan=False)
lengths = st.integers(1, 40)


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def t(x: float) -> torch.Tensor:
    return torch.tensor([x], dtype=torch.float64)


@settings(max_examples=150, deadline=None)
@given(logp, logp, logp, logp, lengths, lengths, st.floats(0.01, 2.0), st.floats(0.0, 0.45))
def test_every_loss_is_its_formula(pw: float, pl: float, rw: float, rl: float, nw: int, nl: int, beta: float, eps: float) -> None:
    h = (pw - rw) - (pl - rl)
    args = (t(pw), t(pl), t(rw), t(rl), t(nw), t(nl))
    expected = {
        "sigmoid": -log_sigmoid(beta * h),
        "conservative": -(1 - eps) * log_sigmoid(beta * h) - eps * log_sigmoid(-beta * h),
        "robust": (-(1 - eps) * log_sigmoid(beta * h) + eps * log_sigmoid(-beta * h)) / (1 - 2 * eps),
        "ipo": (((pw - rw) / nw - (pl - rl) / nl) - 1 / (2 * beta)) ** 2,
        "simpo": -log_sigmoid(beta * (pw / nw - pl / nl) - 0.5),
        "rpo": -log_sigmoid(beta * h) + 1.0 * (-pw / nw),
    }
    for kind, value in expected.items():
        smoothing = 0.0 if kind in ("sigmoid", "rpo") else eps  # sigmoid with label smoothing is the conservative loss
        got = preference_loss(kind, *args, beta=beta, label_smoothing=smoothing, gamma=0.5, alpha=1.0).item()
        assert math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-9), kind


def test_hand_values_and_properties() -> None:
    zero = (t(-5.0), t(-5.0), t(-5.0), t(-5.0), t(5.0), t(5.0))
    assert preference_loss("sigmoid", *zero, beta=0.1).item() == pytest.approx(math.log(2))  # policy == reference
    # IPO's target: the length-averaged margin 1 / (2 beta) = 5 at beta 0.1 gives 0 loss
    assert preference_loss("ipo", t(5.0), t(0.0), t(0.0), t(0.0), t(1.0), t(4.0), beta=0.1).item() == pytest.approx(0.0)
    assert preference_loss("sigmoid", t(1.0), t(0.0), t(0.0), t(0.0), t(1.0), t(1.0), beta=1.0, label_smoothing=0.2).item() == \
        pytest.approx(preference_loss("conservative", t(1.0), t(0.0), t(0.0), t(0.0), t(1.0), t(1.0), beta=1.0, label_smoothing=0.2).item())
    # robust DPO is unbiased: its expectation over a flip with probability eps is the clean loss
    h, beta, eps = t(2.0), 1.0, 0.2
    clean = preference_loss("sigmoid", h, t(0.0), t(0.0), t(0.0), t(1.0), t(1.0), beta=beta).item()
    flipped = preference_loss("robust", t(0.0), h, t(0.0), t(0.0), t(1.0), t(1.0), beta=beta, label_smoothing=eps).item()
    kept = preference_loss("robust", h, t(0.0), t(0.0), t(0.0), t(1.0), t(1.0), beta=beta, label_smoothing=eps).item()
    assert (1 - eps) * kept + eps * flipped == pytest.approx(clean)
    with pytest.raises(ValueError, match="unknown loss"):
        preference_loss("kto", *zero, beta=0.1)
